"""Training, evaluation and checkpointing of the DCTransformer.

    python -m dctmodel.train --config tiny --workdir runs/tiny            # train
    python -m dctmodel.train --config tiny --workdir runs/tiny --resume   # continue after Ctrl-C
    python -m dctmodel.train --config small --workdir runs/s --set train.bf16=True model.dropout=0.0

Design:

* The whole train state is a pytree ``{"params", "opt", "step"}`` of plain
  dicts/optax states (``nnx.to_pure_dict``), so sharding it, checkpointing it
  with orbax and restoring it are all one-liners.  The model is rebuilt from
  its graphdef inside the jitted step.
* Batches are a pure function of ``(seed, step)`` (``data.sample_batch``) and the
  dropout key is ``fold_in(seed, step)``, so ``--resume`` from a checkpoint at
  step ``k`` reproduces an uninterrupted run bit for bit.
* A ``Mesh(("data", "model"))`` shards the batch over every device and, when
  ``train.model_axis > 1``, each large parameter's first axis over "model"
  (FSDP; XLA inserts the all-gathers).  One device, N fake CPU devices
  (``XLA_FLAGS=--xla_force_host_platform_device_count=N``), a GPU or a TPU
  slice run the same code; pass ``--distributed`` for multi-host.
* Loss: mean over target tokens of channel + position + value cross-entropy
  (nats).  The stop token contributes its channel term only.  Bits per image
  subpixel (bpd) = bits / (H*W*P), P = 3 planes (1 for greyscale).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import math
import os
import sys
import time
from collections import defaultdict
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

from . import masks as M
from .config import Config, check_config, get_config, override
from .data import Prefetcher, Source, eval_batches, make_source
from .loop import JsonLog, check_resume_config, stop_on_sigint
from . import checkpoint as ckpt
from .model import DCTransformer, model_from_params

LN2 = math.log(2.0)
BATCH_KEYS = ("dct", "inp", "tgt", "weight", "hw", "label")


# ---------------------------------------------------------------------------
# Mesh and shardings
# ---------------------------------------------------------------------------

def make_mesh(model_axis: int = 1, devices=None) -> jax.sharding.Mesh:
    """``Mesh(("data", "model"))`` over ``devices`` (default: all); the model axis
    is the largest divisor of the device count not above ``model_axis``."""
    devices = list(devices if devices is not None else jax.devices())
    n = len(devices)
    m = max(d for d in range(1, max(1, min(model_axis, n)) + 1) if n % d == 0)
    auto = jax.sharding.AxisType.Auto
    return jax.make_mesh((n // m, m), ("data", "model"), axis_types=(auto, auto), devices=devices)


def param_spec(x, mesh) -> P:
    """FSDP: shard axis 0 of big matrices over "model"; everything else is replicated."""
    m = mesh.shape["model"]
    if m > 1 and getattr(x, "ndim", 0) >= 2 and x.shape[0] % m == 0 and x.size >= 1024:
        return P("model")
    return P()


def state_shardings(state, mesh):
    return jax.tree.map(lambda x: NamedSharding(mesh, param_spec(x, mesh)), state)


def batch_sharding(mesh) -> NamedSharding:
    return NamedSharding(mesh, P(("data", "model")))


def put_batch(batch: dict, mesh) -> dict:
    """Host numpy batch (identical on every host) -> global arrays sharded over the batch axis."""
    sh = batch_sharding(mesh)
    out = {}
    for k in BATCH_KEYS + ("chunk_index", "subpixels", "image"):
        if k in batch:
            v = np.asarray(batch[k])
            out[k] = jax.make_array_from_callback(v.shape, sh, lambda idx, v=v: v[idx])
    return out


# ---------------------------------------------------------------------------
# Model state, optimiser, loss
# ---------------------------------------------------------------------------

def lr_schedule(cfg: Config):
    """Linear warm-up to the peak over ``warmup_steps`` (step 0 already has peak/warmup),
    then cosine decay to ``min_lr_ratio * peak`` at the last step."""
    t = cfg.train
    peak, warm, total = t.learning_rate, max(1, t.warmup_steps), cfg.steps

    def sched(step):
        step = jnp.asarray(step, jnp.float32)
        warmup = peak * jnp.minimum((step + 1.0) / warm, 1.0)
        frac = jnp.clip((step - warm) / max(1, total - warm), 0.0, 1.0)
        cos = 0.5 * (1.0 + jnp.cos(math.pi * frac))
        return jnp.where(step < warm, warmup, peak * (t.min_lr_ratio + (1 - t.min_lr_ratio) * cos))

    return sched


def make_optimizer(cfg: Config) -> optax.GradientTransformation:
    t = cfg.train
    adam = (optax.adamw(lr_schedule(cfg), b1=t.adam_b1, b2=t.adam_b2, weight_decay=t.weight_decay)
            if t.weight_decay else optax.adam(lr_schedule(cfg), b1=t.adam_b1, b2=t.adam_b2))
    return optax.chain(optax.clip_by_global_norm(t.grad_clip), adam) if t.grad_clip else adam


class Functions:
    """The model's graphdef plus jitted pure functions over ``{"params", "opt", "step"}``."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.tx = make_optimizer(cfg)
        self._jitted: dict = {}

    # -- state ----------------------------------------------------------------
    def init(self, seed: int) -> dict:
        model = DCTransformer(self.cfg, rngs=nnx.Rngs(seed))
        params = nnx.to_pure_dict(nnx.state(model))
        return {"params": params, "opt": self.tx.init(params), "step": jnp.zeros((), jnp.int32)}

    def model(self, params) -> DCTransformer:
        return model_from_params(self.cfg, params)

    # -- loss -----------------------------------------------------------------
    @staticmethod
    def token_nats(logits, batch):
        """Per-token cross-entropy in nats, float32 ``(B, S, 3)`` (channel, position, value),
        already multiplied by the loss weights (stop: channel only)."""
        ch_l, pos_l, val_l = logits
        tgt, w = batch["tgt"], batch["weight"]
        real = (tgt[..., 0] < ch_l.shape[-1] - 1).astype(jnp.float32) * w

        def ce(lg, y, weight):
            y = jnp.where(weight > 0, y, 0)  # PAD/"none" classes lie outside the vocabulary
            return optax.softmax_cross_entropy_with_integer_labels(lg, y) * weight

        return jnp.stack([ce(ch_l, tgt[..., 0], w), ce(pos_l, tgt[..., 1], real), ce(val_l, tgt[..., 2], real)],
                         axis=-1)

    def _train_step(self, state, batch):
        key = jax.random.fold_in(jax.random.key(self.cfg.train.seed), state["step"])

        def loss_fn(params):
            model = self.model(params)
            logits = model(batch, deterministic=False, rngs=nnx.Rngs(dropout=key))
            nats = self.token_nats(logits, batch)
            ntok = jnp.maximum(batch["weight"].sum(), 1.0)
            return nats.sum() / ntok, nats

        (loss, nats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
        updates, opt = self.tx.update(grads, state["opt"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        metrics = {
            "loss": loss,
            "nats": nats.sum(axis=(0, 1)),                 # (3,) summed over tokens
            "tokens": batch["weight"].sum(),
            "example_bits": nats.sum(axis=1) / LN2,        # (B, 3) bits of each chunk
            "grad_norm": optax.tree.norm(grads),
        }
        return {"params": params, "opt": opt, "step": state["step"] + 1}, metrics

    def _eval_step(self, params, batch):
        """Bits of each chunk ``(B, 3)`` without and with the structure masks."""
        model = self.model(params)
        raw = model(batch, deterministic=True, structure_masks=False)
        masked = M.mask_logits(model.mask_tables, raw, batch["inp"], batch["tgt"], batch["hw"])
        return (self.token_nats(raw, batch).sum(axis=1) / LN2,
                self.token_nats(masked, batch).sum(axis=1) / LN2)

    # -- sharded entry points ---------------------------------------------------
    def shard_state(self, state, mesh):
        return jax.device_put(state, state_shardings(state, mesh))

    def _for_mesh(self, mesh):
        """Jitted steps with explicit in/out shardings, so FSDP shards stay put step after step."""
        if mesh not in self._jitted:
            abstract = jax.eval_shape(lambda: self.init(0))
            st = state_shardings(abstract, mesh)
            rep = NamedSharding(mesh, P())
            train = jax.jit(self._train_step, in_shardings=(st, batch_sharding(mesh)),
                            out_shardings=(st, rep), donate_argnums=(0,))
            ev = jax.jit(self._eval_step, in_shardings=(st["params"], batch_sharding(mesh)), out_shardings=rep)
            self._jitted[mesh] = (train, ev)
        return self._jitted[mesh]

    def train_step(self, state, batch, mesh):
        """One optimiser step on a host batch; returns ``(new state, metrics)`` (state donated)."""
        return self._for_mesh(mesh)[0](state, put_batch(batch, mesh))

    def eval_step(self, params, batch, mesh):
        return self._for_mesh(mesh)[1](params, put_batch(batch, mesh))


_FUNCTIONS: dict = {}


def functions(cfg: Config) -> Functions:
    """Cached per config, so tests and repeated runs in one process compile once."""
    if cfg not in _FUNCTIONS:
        _FUNCTIONS[cfg] = Functions(cfg)
    return _FUNCTIONS[cfg]


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------

def evaluate(cfg: Config, params, source: Source, mesh, num_images: Optional[int] = None,
             batch_size: Optional[int] = None) -> dict:
    """Held-out bits per image subpixel over every chunk of ``num_images`` images.

    Returns ``bpd``, ``bpd_channel``, ``bpd_position``, ``bpd_value`` (model as
    configured, i.e. with masks iff ``model.structure_masks``), the same with
    suffix ``_masked``/``_unmasked`` for both ways, and ``bpd_per_chunk``: mean
    over images of each chunk index's bits / subpixels.
    """
    fns = functions(cfg)
    n = min(num_images or cfg.train.eval_images, len(source))
    bs = batch_size or cfg.train.batch_size
    per_image = {"unmasked": np.zeros((n, 3)), "masked": np.zeros((n, 3))}
    chunk_bits = defaultdict(list)
    subpix = np.array([source.tokens(i)[2] for i in range(n)], np.float64)
    for batch in eval_batches(cfg, source, range(n), bs):
        raw, masked = (np.asarray(a, np.float64) for a in fns.eval_step(params, batch, mesh))
        for row, img in enumerate(batch["image"]):
            if img < 0:
                continue
            per_image["unmasked"][img] += raw[row]
            per_image["masked"][img] += masked[row]
            way = masked if cfg.model.structure_masks else raw
            chunk_bits[int(batch["chunk_index"][row])].append(way[row].sum() / subpix[img])
    out = {"images": n}
    for way, bits in per_image.items():
        bpd = bits / subpix[:, None]
        out[f"bpd_{way}"] = float(bpd.sum(1).mean())
        for j, name in enumerate(("channel", "position", "value")):
            out[f"bpd_{name}_{way}"] = float(bpd[:, j].mean())
    way = "masked" if cfg.model.structure_masks else "unmasked"
    for k in ("", "_channel", "_position", "_value"):
        out[f"bpd{k}"] = out[f"bpd{k}_{way}"]
    out["bpd_per_chunk"] = [float(np.mean(chunk_bits[k])) for k in sorted(chunk_bits)]
    return out


# ---------------------------------------------------------------------------
# Checkpoints and logs
# ---------------------------------------------------------------------------

def save_checkpoint(mngr, state):
    ckpt.save(mngr, int(jax.device_get(state["step"])), state)


class Progress:
    """One-line progress display on stderr (no dependency)."""

    def __init__(self, total: int, enabled: bool = True, start: int = 0):
        self.total, self.enabled, self.t0 = total, enabled and sys.stderr.isatty(), time.time()
        self.start = start  # steps restored from a checkpoint: not timed by this run
        self.plain = enabled and not sys.stderr.isatty()

    def eta(self, step: int) -> float:
        """Seconds left, from this run's own rate (steps since `start`)."""
        done = step - self.start
        return (time.time() - self.t0) * (self.total - step) / done if done > 0 else 0.0

    def update(self, step: int, text: str):
        if self.enabled:
            frac = step / max(1, self.total)
            bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
            eta = self.eta(step)
            sys.stderr.write(f"\r[{bar}] {step}/{self.total} {text} eta {eta:5.0f}s ")
            sys.stderr.flush()
        elif self.plain:
            print(f"step {step}/{self.total} {text}", file=sys.stderr, flush=True)

    def close(self):
        if self.enabled:
            sys.stderr.write("\n")


# ---------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------

def _check_resume_config(cfg: Config, config_path: str) -> None:
    # The train section (schedule, logging) may change; data and model may not.
    check_resume_config(config_path, dataclasses.asdict(cfg), lambda name: name.split(".")[0] not in ("data", "model"))


def train(cfg: Config, workdir: str, *, resume: bool = False, stop_after: Optional[int] = None,
          devices=None, source: Optional[Source] = None, eval_source: Optional[Source] = None,
          progress: bool = True, do_eval: bool = True) -> tuple[dict, list[dict]]:
    """Train ``cfg`` in ``workdir``; returns ``(final state, log records of this call)``.

    ``stop_after``: stop (with a checkpoint) once that many total steps are done,
    as if interrupted; the LR schedule still targets ``cfg.steps``.
    Ctrl-C (SIGINT, when called from the main thread) also stops after the
    running step with a checkpoint; rerun with ``resume=True``.  A second
    Ctrl-C raises KeyboardInterrupt without that checkpoint.  Any other error
    during the loop (an unreadable image, a failing evaluation) is raised
    after a checkpoint of the last finished step is written.
    """
    check_config(cfg)
    os.makedirs(workdir, exist_ok=True)
    config_path = ckpt.config_path(workdir)
    if resume:
        _check_resume_config(cfg, config_path)  # before config.json is rewritten
    ckpt.write_config(workdir, cfg)
    mesh = make_mesh(cfg.train.model_axis, devices)
    fns = functions(cfg)
    source = source or make_source(cfg.data, "train")
    eval_source = eval_source or make_source(cfg.data, "eval")

    state = fns.shard_state(fns.init(cfg.train.seed), mesh)
    mngr = ckpt.open_manager(workdir, cfg.train.keep_checkpoints)
    start = 0
    if resume:
        restored = ckpt.restore(mngr, state)
        if restored is not None:
            state = restored
            start = int(jax.device_get(state["step"]))
        else:
            print(f"resume: no checkpoint in {os.path.join(workdir, 'checkpoints')}; starting at step 0",
                  file=sys.stderr, flush=True)
    log = JsonLog(os.path.join(workdir, "log.jsonl"), start if resume else None)
    records: list[dict] = []

    def emit(rec):
        log.write(rec)
        records.append(rec)

    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    bar = Progress(cfg.steps, progress, start)
    # The caller's SIGINT handler is back before the final checkpoint.
    with stop_on_sigint() as stop:
        feed = Prefetcher(cfg, source, cfg.train.seed, start, end, depth=cfg.train.prefetch)
        acc = _Accumulator()
        t_last = time.time()
        step = start
        try:
            t_wait = time.time()
            for step_i, batch in feed:
                wait = time.time() - t_wait
                state, met = fns.train_step(state, batch, mesh)
                acc.add(met, batch, wait)
                step = step_i + 1
                # A stop request logs the steps since the last record, which would otherwise be lost.
                if step % cfg.train.log_every == 0 or step == end or stop.requested:
                    rec = acc.record(step, time.time() - t_last, float(lr_schedule(cfg)(step - 1)))
                    t_last = time.time()
                    emit(rec)
                    bar.update(step, f"loss {rec['loss']:.3f} tok/s {rec['tokens_per_s']:.0f}")
                if cfg.train.checkpoint_every and step % cfg.train.checkpoint_every == 0:
                    save_checkpoint(mngr, state)
                if do_eval and cfg.train.eval_every and step % cfg.train.eval_every == 0 and step < cfg.steps:
                    emit({"step": step, "eval": evaluate(cfg, state["params"], eval_source, mesh)})
                if stop.requested:
                    break
                t_wait = time.time()
        except Exception:
            # An unreadable image or a failing evaluation hours into a run: keep the steps
            # done (the state is that of the last finished step), then report the error.
            if step > start:
                _save_before_raising(mngr, state, workdir)
            raise
        finally:
            feed.close()
            bar.close()
    _save_if_new(mngr, state)
    if do_eval and step >= cfg.steps and not stop.requested:
        emit({"step": step, "eval": evaluate(cfg, state["params"], eval_source, mesh)})
    mngr.close()
    return state, records


def _save_if_new(mngr, state) -> int:
    """Checkpoints ``state`` unless its step is saved already; returns the step."""
    step = int(jax.device_get(state["step"]))
    if step not in ckpt.saved_steps(mngr):
        save_checkpoint(mngr, state)
    return step


def _save_before_raising(mngr, state, workdir: str) -> None:
    try:
        step = _save_if_new(mngr, state)
        print(f"\ntraining stopped by an error at step {step}; a checkpoint of it is in "
              f"{os.path.join(workdir, 'checkpoints')}: fix the cause and --resume", file=sys.stderr, flush=True)
    except Exception:  # the original error matters more than this one
        pass


class _Accumulator:
    """Sums step metrics between two log records (host side, after the step finished)."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.steps, self.loss, self.nats, self.tokens, self.wait, self.gnorm = 0, 0.0, np.zeros(3), 0.0, 0.0, 0.0
        self.chunk = defaultdict(list)

    def add(self, met, batch, wait):
        met = jax.device_get(met)
        self.steps += 1
        self.loss += float(met["loss"])
        self.nats += met["nats"]
        self.tokens += float(met["tokens"])
        self.wait += wait
        self.gnorm += float(met["grad_norm"])
        bpd = met["example_bits"].sum(-1) / batch["subpixels"]
        for k, b in zip(batch["chunk_index"], bpd):
            self.chunk[int(k)].append(float(b))

    def record(self, step, seconds, lr):
        n = max(self.tokens, 1.0)
        rec = {
            "step": step, "loss": self.loss / self.steps,
            "nats_channel": self.nats[0] / n, "nats_position": self.nats[1] / n, "nats_value": self.nats[2] / n,
            # Mean bits/subpixel contributed by chunk k (an unbiased estimate of its share of the image bpd).
            "bpd_per_chunk": {str(k): float(np.mean(v)) for k, v in sorted(self.chunk.items())},
            "tokens_per_s": self.tokens / max(seconds, 1e-9),
            "step_time": seconds / self.steps, "input_wait": self.wait / self.steps,
            "grad_norm": self.gnorm / self.steps, "lr": lr,
        }
        self.reset()
        return rec


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

def _parse_sets(items) -> dict:
    out = {}
    for it in items or []:
        k, eq, v = it.partition("=")
        if not eq:
            raise ValueError(f"--set {it!r}: expected SECTION.FIELD=VALUE")
        try:
            out[k] = _tuples(ast.literal_eval(v))
        except (ValueError, SyntaxError):
            out[k] = v  # a bare word is a string: data.source=folder
    return out


def _tuples(v):
    """Lists from the command line as tuples: configs are hashable (they key compiled steps)."""
    return tuple(_tuples(x) for x in v) if isinstance(v, (list, tuple)) else v


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m dctmodel.train", description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="tiny", help="preset name (dctmodel.config.PRESETS)")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in workdir")
    ap.add_argument("--set", nargs="*", metavar="SECTION.FIELD=VALUE", help="override config fields")
    ap.add_argument("--stop-after", type=int, default=None, help="stop after this many total steps")
    ap.add_argument("--no-eval", action="store_true")
    ap.add_argument("--distributed", action="store_true", help="jax.distributed.initialize() (multi-host)")
    args = ap.parse_args(argv)
    if args.distributed:
        jax.distributed.initialize()
    # Mistakes in the command are reported in one line before anything compiles.
    try:
        cfg = override(get_config(args.config), **_parse_sets(args.set))
        check_config(cfg)
        source, eval_source = make_source(cfg.data, "train"), make_source(cfg.data, "eval")
        if args.resume:
            _check_resume_config(cfg, ckpt.config_path(args.workdir))
        os.makedirs(args.workdir, exist_ok=True)
    except (ValueError, OSError) as e:
        ap.error(str(e))
    print(f"config {cfg.name}: {cfg.steps} steps of {cfg.train.batch_size}x{cfg.model.chunk_size} tokens; "
          f"{len(jax.devices())} device(s) ({jax.devices()[0].platform})", file=sys.stderr)
    _, records = train(cfg, args.workdir, resume=args.resume, stop_after=args.stop_after,
                       source=source, eval_source=eval_source, do_eval=not args.no_eval)
    evals = [r for r in records if "eval" in r]
    if evals:
        e = evals[-1]["eval"]
        print(json.dumps({"step": evals[-1]["step"], "bpd": e["bpd"], "bpd_channel": e["bpd_channel"],
                          "bpd_position": e["bpd_position"], "bpd_value": e["bpd_value"]}))


if __name__ == "__main__":
    main()
