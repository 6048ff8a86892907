"""Train HR-VQVAE or a baseline (VQ-VAE, VQ-VAE-2) on generated scenes or image patches.

    python -m dctmodel.hrvqvae_train --model hrvqvae --layers 2 --m 8 --steps 300 --workdir runs/hrvq
    python -m dctmodel.hrvqvae_train --preset gpu --model hrvqvae --layers 3 --m 8 --workdir runs/hrvq3

Prints progress, appends JSON lines to ``workdir/log.jsonl`` (train loss and
MSE, eval MSE/PSNR, code usage per layer), and saves ``workdir/ckpt.npz``
(model + optimiser state + step) every ``ckpt_every`` steps and on Ctrl-C;
running the same command again resumes from it and ends bit for bit where an
uninterrupted run would (flags that change the model or data are refused).
``--prior-steps N`` then fits the PixelCNN prior on the training codes
(checkpointed the same way, in ``workdir/prior.npz``) and writes
``workdir/samples.png``.

Presets (``--preset``):

* ``cpu`` (default): 32x32 scenes, latent 8x8, D=16, 32 channels, batch 32:
  about 10-20 steps/s on 2 CPU cores after compilation.
* ``gpu``: 64x64 scenes, latent 16x16, D=64, 128 channels, 2 res blocks,
  batch 128, 20k steps, 20k training images: the paper's scale for 16x16
  latents (its MNIST/CIFAR settings), one H100 in well under an hour.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from .hrvqvae import VQConfig, VQModel, psnr, usage_summary
from .loop import JsonLog, check_resume_config, stop_on_sigint


@dataclass
class TrainConfig:
    vq: VQConfig = field(default_factory=VQConfig)
    data: str = "scenes"          # "scenes" (dctmodel.scenes) | "patches" (skimage.data images cut into patches)
    image_size: int = 32
    train_images: int = 1024
    test_images: int = 128
    seed: int = 0
    batch_size: int = 32
    steps: int = 300
    lr: float = 2e-3
    log_every: int = 25
    eval_every: int = 100
    ckpt_every: int = 100
    prior_steps: int = 0


PRESETS = {
    "cpu": TrainConfig(),
    "gpu": TrainConfig(vq=VQConfig(dim=64, channels=128, res_blocks=2, downsample=2), image_size=64,
                       train_images=20000, test_images=1000, batch_size=128, steps=20000, lr=5e-4,
                       log_every=100, eval_every=1000, ckpt_every=1000, prior_steps=5000),
}


def check_config(cfg: TrainConfig) -> None:
    """Raise ValueError naming the first setting out of range (they otherwise
    fail inside a jitted step, or train a degenerate model without a word)."""
    v = cfg.vq

    def need(ok, name, rule, value):
        if not ok:
            raise ValueError(f"{name} must be {rule}, got {value!r}")

    need(v.model in ("hrvqvae", "vqvae", "vqvae2"), "model", "'hrvqvae', 'vqvae' or 'vqvae2'", v.model)
    need(v.layers >= 1, "layers", ">= 1", v.layers)
    need(v.m >= 2, "m", ">= 2 (a codebook of one word carries no information)", v.m)
    need(v.codebook_size == 0 or v.codebook_size >= 2, "codebook_size", "0 (m**layers) or >= 2",
         v.codebook_size)
    for name in ("dim", "channels", "restart_after"):
        need(getattr(v, name) >= 1, name, ">= 1", getattr(v, name))
    need(v.downsample >= 0 and v.res_blocks >= 0, "downsample and res_blocks", ">= 0", (v.downsample, v.res_blocks))
    need(v.update in ("ema", "grad"), "update", "'ema' or 'grad'", v.update)
    need(0.0 < v.decay < 1.0, "decay", "in (0, 1)", v.decay)
    need(len(v.betas) >= 1 and min(v.betas) >= 0 and v.beta0 >= 0, "beta0 and betas", ">= 0", (v.beta0, v.betas))
    need(cfg.data in ("scenes", "patches"), "data", "'scenes' or 'patches'", cfg.data)
    mult = 2 ** (v.downsample + (v.model == "vqvae2"))
    need(cfg.image_size >= mult and cfg.image_size % mult == 0, "size (image side)",
         f"a multiple of {mult} (2**downsample{', x2 for vqvae2' if v.model == 'vqvae2' else ''})",
         cfg.image_size)
    need(cfg.data != "patches" or cfg.image_size <= PATCH_MAX, "size (image side)",
         f"<= {PATCH_MAX} with data='patches' (the shortest side of the bundled photos)", cfg.image_size)
    for name in ("train_images", "test_images", "batch_size", "steps", "log_every", "eval_every", "ckpt_every"):
        need(getattr(cfg, name) >= 1, name, ">= 1", getattr(cfg, name))
    need(cfg.lr > 0, "lr", "> 0", cfg.lr)
    need(cfg.prior_steps >= 0, "prior_steps", ">= 0", cfg.prior_steps)


# --------------------------------------------------------------------------- data


def scene_images(n: int, size: int, seed: int) -> np.ndarray:
    """float32 (n, size, size, 3) in [0, 1]: scenes ``seed`` 0..n-1."""
    from .scenes import render_scene

    return np.stack([render_scene(seed, i, size) for i in range(n)]).astype(np.float32) / 255.0


PATCH_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
PATCH_MAX = 300  # chelsea is 300 px tall: no larger crop fits every photo


def patch_images(n: int, size: int, seed: int) -> np.ndarray:
    """float32 (n, size, size, 3): random crops of skimage's bundled RGB images."""
    import skimage.data

    srcs = [getattr(skimage.data, k)() for k in PATCH_PHOTOS]
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.float32)
    for i in range(n):
        img = srcs[rng.integers(len(srcs))]
        y = rng.integers(0, img.shape[0] - size + 1)
        x = rng.integers(0, img.shape[1] - size + 1)
        out[i] = img[y:y + size, x:x + size, :3] / 255.0
    return out


def load_images(cfg: TrainConfig, split: str) -> np.ndarray:
    """Train and test sets are disjoint: different scene seeds / crop seeds."""
    n = cfg.train_images if split == "train" else cfg.test_images
    seed = cfg.seed * 2 + (0 if split == "train" else 1) + 1000
    fn = scene_images if cfg.data == "scenes" else patch_images
    return fn(n, cfg.image_size, seed)


# --------------------------------------------------------------------------- steps


def make_model(cfg: TrainConfig):
    model = VQModel(cfg.vq, rngs=nnx.Rngs(cfg.seed))
    opt = nnx.Optimizer(model, optax.adam(cfg.lr), wrt=nnx.Param)
    return model, opt


@nnx.jit
def train_step(model: VQModel, opt: nnx.Optimizer, x, key):
    """One optimiser step then the EMA / usage / restart update.
    Returns (loss, recon MSE, words restarted)."""

    def loss_fn(model):
        _, aux = model(x)
        return aux["loss"], aux

    (loss, aux), grads = nnx.value_and_grad(loss_fn, argnums=nnx.DiffState(0, nnx.Param), has_aux=True)(model)
    opt.update(model, grads)
    restarted = model.update_stats(aux, key)
    return loss, aux["recon"], restarted


@nnx.jit
def _eval_batch(model: VQModel, x):
    x_hat, aux = model(x)
    return jnp.mean((x - jnp.clip(x_hat, 0.0, 1.0)) ** 2, axis=(1, 2, 3)), aux["codes"]


def evaluate(model: VQModel, images: np.ndarray, batch_size: int = 64) -> dict:
    """MSE (on [0, 1], reconstructions clipped), PSNR of the mean MSE, and code usage."""
    errs, codes = [], []
    for i in range(0, len(images), batch_size):
        e, c = _eval_batch(model, jnp.asarray(images[i:i + batch_size]))
        errs.append(np.asarray(e))
        codes.append(jax.tree.map(np.asarray, c))
    mse = float(np.concatenate(errs).mean())
    if isinstance(codes[0], tuple):
        all_codes = tuple(np.concatenate([c[j] for c in codes]) for j in range(len(codes[0])))
    else:
        all_codes = np.concatenate(codes)
    return dict(mse=mse, psnr=psnr(mse), usage=usage_summary(model, all_codes), codes=all_codes)


# --------------------------------------------------------------------------- checkpoints


def _leaves(tree):
    return jax.tree_util.tree_flatten_with_path(tree)[0]


def save_checkpoint(path: str, model, opt, step: int, cfg: TrainConfig) -> None:
    """npz of every state leaf of (model, optimiser), keyed by position, with
    the key paths and config for a sanity check on load.  Written atomically."""
    leaves = _leaves(nnx.state((model, opt)))
    arrays = {f"a{i}": np.asarray(v) for i, (_, v) in enumerate(leaves)}
    meta = dict(step=step, paths=[jax.tree_util.keystr(p) for p, _ in leaves], config=config_to_dict(cfg))
    tmp = path + ".tmp.npz"
    np.savez(tmp, meta=np.asarray(json.dumps(meta)), **arrays)
    os.replace(tmp, path)


def load_checkpoint(path: str, model, opt) -> int:
    """Restores (model, opt) in place; returns the step to continue from."""
    with np.load(path) as f:
        meta = json.loads(str(f["meta"]))
        state = nnx.state((model, opt))
        flat, treedef = jax.tree_util.tree_flatten(state)
        paths = [jax.tree_util.keystr(p) for p, _ in _leaves(state)]
        if paths != meta["paths"]:
            raise ValueError(f"{path}: checkpoint does not match this model's configuration")
        new = [jnp.asarray(f[f"a{i}"], dtype=jnp.asarray(v).dtype) if not _is_key(v) else v
               for i, v in enumerate(flat)]
    nnx.update((model, opt), jax.tree_util.tree_unflatten(treedef, new))
    return int(meta["step"])


def _is_key(v) -> bool:
    return hasattr(v, "dtype") and jax.dtypes.issubdtype(v.dtype, jax.dtypes.prng_key)


def config_to_dict(cfg: TrainConfig) -> dict:
    d = dataclasses.asdict(cfg)
    d["vq"]["betas"] = list(d["vq"]["betas"])
    return d


def config_from_dict(d: dict) -> TrainConfig:
    d = dict(d)
    vq = dict(d.pop("vq"))
    vq["betas"] = tuple(vq["betas"])
    return TrainConfig(vq=VQConfig(**vq), **d)


# --------------------------------------------------------------------------- loop


# Fields a resume may change: how long to train and how to report it.  The rest
# define the model and its data, and changing them mid-run trains something else.
_RESUMABLE = {"steps", "lr", "log_every", "eval_every", "ckpt_every", "prior_steps"}


def _check_resume_config(cfg: TrainConfig, config_path: str) -> None:
    check_resume_config(config_path, config_to_dict(cfg), lambda name: name in _RESUMABLE)


def train(cfg: TrainConfig, workdir: str | None = None, *, verbose: bool = True, train_images=None,
          test_images=None, stop_after: int | None = None):
    """Trains (resuming from ``workdir/ckpt.npz`` if present); returns (model, last eval dict).

    Batches and restart keys are functions of ``(seed, step)``, so a resumed run
    ends bit for bit where an uninterrupted one does.  ``stop_after``: stop with
    a checkpoint once that many steps are done (as Ctrl-C does after the running
    step; a second Ctrl-C aborts without it).  The prior is fitted only once
    all ``cfg.steps`` are done, checkpointed in ``workdir/prior.npz``; Ctrl-C
    during its fit raises KeyboardInterrupt after that checkpoint, and a rerun
    continues it.  The returned eval dict also holds ``step``, the steps done.
    """
    check_config(cfg)
    ckpt = os.path.join(workdir, "ckpt.npz") if workdir else None
    resuming = bool(ckpt and os.path.exists(ckpt))
    log_f = None
    if workdir:
        os.makedirs(workdir, exist_ok=True)
        config_path = os.path.join(workdir, "config.json")
        if resuming:
            _check_resume_config(cfg, config_path)  # before config.json is rewritten
        with open(config_path, "w") as f:
            json.dump(config_to_dict(cfg), f, indent=1)

    train_x = load_images(cfg, "train") if train_images is None else train_images
    test_x = load_images(cfg, "test") if test_images is None else test_images
    model, opt = make_model(cfg)
    start = load_checkpoint(ckpt, model, opt) if resuming else 0
    if workdir:
        log_f = JsonLog(os.path.join(workdir, "log.jsonl"), start if resuming else None)

    def log(rec):
        if log_f:
            log_f.write(rec)
        if verbose:
            print(" ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()
                           if k != "usage"), flush=True)

    if resuming:
        log(dict(event="resume", step=start))
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    key = jax.random.key(cfg.seed)
    t0, res, done = time.time(), None, start
    with stop_on_sigint() as stop:
        for step in range(start, end):
            idx = np.random.default_rng([cfg.seed, step]).integers(0, len(train_x), cfg.batch_size)
            loss, recon, restarted = train_step(model, opt, jnp.asarray(train_x[idx]), jax.random.fold_in(key, step))
            done = step + 1
            if done % cfg.log_every == 0 or done == end or stop.requested:
                log(dict(step=done, loss=float(loss), train_mse=float(recon), restarted=int(restarted),
                         steps_per_s=round((done - start) / (time.time() - t0), 2)))
            if done % cfg.eval_every == 0 or done == cfg.steps:
                res = evaluate(model, test_x)
                log(dict(step=done, eval_mse=res["mse"], eval_psnr=res["psnr"],
                         dead=[u["dead"] for u in res["usage"]], perplexity=[round(u["perplexity"], 2)
                                                                              for u in res["usage"]],
                         usage=res["usage"]))
            if ckpt and (done % cfg.ckpt_every == 0 or done == end or stop.requested):
                save_checkpoint(ckpt, model, opt, done, cfg)
            if stop.requested:
                break
    if res is None:
        res = evaluate(model, test_x)
    if done >= cfg.steps and cfg.prior_steps and cfg.vq.model != "vqvae2":
        _prior_and_samples(cfg, model, train_x, workdir, log)
    return model, dict(res, step=done)


def _prior_and_samples(cfg: TrainConfig, model, train_x, workdir, log) -> None:
    """Fits the prior (checkpointed in ``workdir/prior.npz``: a rerun continues it) and
    writes ``workdir/samples.png``.  Ctrl-C stops after the running step with a checkpoint."""
    from .hrvqvae_prior import PixelCNN, PriorConfig, fit_prior, prior_optimizer, sample_images

    codes = evaluate(model, train_x)["codes"]
    leaves = model.leaves(codes)
    prior = PixelCNN(PriorConfig(vocab=model.vocab), rngs=nnx.Rngs(cfg.seed))
    opt = prior_optimizer(prior)
    path = os.path.join(workdir, "prior.npz") if workdir else None
    start = load_checkpoint(path, prior, opt) if path and os.path.exists(path) else 0
    if start:
        log(dict(event="prior resume", prior_step=start))
    with stop_on_sigint("this prior step with a checkpoint") as stop:
        def on_step(step):
            if path and (step % cfg.ckpt_every == 0 or step == cfg.prior_steps or stop.requested):
                save_checkpoint(path, prior, opt, step, cfg)
            return stop.requested

        losses = fit_prior(prior, leaves, steps=cfg.prior_steps, batch_size=cfg.batch_size, seed=cfg.seed,
                           log=log, opt=opt, start=start, on_step=on_step)
    if start + len(losses) < cfg.prior_steps:
        raise KeyboardInterrupt  # stopped by Ctrl-C with its checkpoint written: a rerun continues it
    imgs = sample_images(model, prior, 16, jax.random.key(cfg.seed), latent_hw=leaves.shape[1:])
    if workdir:
        from PIL import Image

        grid = (imgs.reshape(2, 8, *imgs.shape[1:]).transpose(0, 2, 1, 3, 4)
                .reshape(2 * imgs.shape[1], 8 * imgs.shape[2], 3))
        Image.fromarray((grid * 255).round().astype(np.uint8)).save(os.path.join(workdir, "samples.png"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m dctmodel.hrvqvae_train", description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    p.add_argument("--model", choices=["hrvqvae", "vqvae", "vqvae2"])
    p.add_argument("--layers", type=int)
    p.add_argument("--m", type=int)
    p.add_argument("--codebook-size", type=int, help="flat baselines; default m**layers")
    p.add_argument("--update", choices=["ema", "grad"])
    p.add_argument("--no-restart", action="store_true")
    p.add_argument("--data", choices=["scenes", "patches"])
    p.add_argument("--size", type=int, help="image side (pixels)")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--prior-steps", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--workdir", required=True)
    a = p.parse_args(argv)
    cfg = PRESETS[a.preset]
    ckpt_cfg = os.path.join(a.workdir, "config.json")
    if os.path.exists(os.path.join(a.workdir, "ckpt.npz")) and os.path.exists(ckpt_cfg):
        with open(ckpt_cfg) as f:
            cfg = config_from_dict(json.load(f))   # resume with the run's own config
    vq = {k: v for k, v in dict(model=a.model, layers=a.layers, m=a.m, codebook_size=a.codebook_size,
                                update=a.update).items() if v is not None}
    if a.no_restart:
        vq["restart"] = False
    top = {k: v for k, v in dict(data=a.data, image_size=a.size, steps=a.steps, batch_size=a.batch_size,
                                 lr=a.lr, prior_steps=a.prior_steps, seed=a.seed).items() if v is not None}
    cfg = dataclasses.replace(cfg, vq=dataclasses.replace(cfg.vq, **vq), **top)
    try:
        check_config(cfg)
        if os.path.exists(os.path.join(a.workdir, "ckpt.npz")):
            _check_resume_config(cfg, ckpt_cfg)
    except ValueError as e:
        p.error(str(e))
    print(f"{cfg.vq.model}: layers={cfg.vq.layers} m={cfg.vq.m} update={cfg.vq.update} "
          f"bits/image={cfg.vq.bits_per_image(cfg.image_size, cfg.image_size):.0f} devices={jax.devices()}",
          flush=True)
    try:
        _, res = train(cfg, a.workdir)
    except KeyboardInterrupt:
        print(f"interrupted: the checkpoints in {a.workdir} are written; the same command continues",
              file=sys.stderr)
        return 130
    if res["step"] < cfg.steps:
        print(f"stopped at step {res['step']} of {cfg.steps} with a checkpoint; the same command continues",
              file=sys.stderr)
        return 130
    print(f"final eval: mse={res['mse']:.6f} psnr={res['psnr']:.2f} dB "
          f"dead per layer={[u['dead'] for u in res['usage']]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
