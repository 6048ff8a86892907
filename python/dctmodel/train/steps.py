"""The jitted pure steps over the train state ``{"params", "opt", "step"}``: init, loss, train and eval.

Loss: mean over target tokens of channel + position + value cross-entropy
(nats).  The stop token contributes its channel term only.  The dropout key
of step ``k`` is ``fold_in(seed, k)``, so a resumed run repeats an
uninterrupted one bit for bit.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.flatten_util import ravel_pytree
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from .. import masks as M
from ..config import Config
from ..model import DCTransformer, model_from_params
from .optim import make_optimizer
from .sharding import batch_sharding, put_batch, state_shardings

LN2 = math.log(2.0)


class ChunkBits(NamedTuple):
    """What the eval step returns: bits of each chunk, float32 ``(B, 3)`` (channel, position, value)."""

    unmasked: Any
    masked: Any


class Compiled(NamedTuple):
    """The steps jitted for one mesh."""

    train: Any  # (state, batch) -> (state, metrics); the state is donated
    eval: Any  # (params, batch) -> ChunkBits


class Functions:
    """The optimiser plus jitted pure functions over ``{"params", "opt", "step"}``."""

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

        return jnp.stack(
            [ce(ch_l, tgt[..., 0], w), ce(pos_l, tgt[..., 1], real), ce(val_l, tgt[..., 2], real)], axis=-1
        )

    def grads(self, params, batch, step, mesh=None):
        """Loss, ``(B, 3)`` nats of each chunk and the gradients of the loss (mean nats per target
        token), for the dropout key of ``step``; in ``train.micro_batch`` slices if set.
        ``mesh``: the mesh ``batch`` is sharded over, where :func:`flat_reduce` picks the
        one-buffer reduction (None: XLA's partitioning, whatever the shardings)."""
        if mesh is not None and flat_reduce(self.cfg, mesh):
            return _grads_flat_reduce(self._local_grads, params, batch, step, mesh)
        return self._local_grads(params, batch, step, batch["weight"].sum())

    def _local_grads(self, params, batch, step, weight_total):
        """``grads`` of the rows of ``batch`` with the loss divided by ``weight_total`` (all
        rows' target tokens, which may lie on other devices)."""
        key = jax.random.fold_in(jax.random.key(self.cfg.train.seed), step)
        ntok = jnp.maximum(weight_total, 1.0)

        def loss_fn(params, part, key):
            logits = self.model(params)(part, deterministic=False, rngs=nnx.Rngs(dropout=key))
            nats = self.token_nats(logits, part)
            return nats.sum() / ntok, nats.sum(axis=1)  # (loss share, (b, 3) nats of each chunk)

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        slices = _slices(self.cfg)
        if slices == 1:
            (loss, chunk_nats), grads = grad_fn(params, batch, key)
            return loss, chunk_nats, grads
        return _accumulate(grad_fn, params, batch, key, slices)

    def _train_step(self, state, batch, mesh=None):
        loss, chunk_nats, grads = self.grads(state["params"], batch, state["step"], mesh)
        updates, opt = self.tx.update(grads, state["opt"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        metrics = {
            "loss": loss,
            "nats": chunk_nats.sum(axis=0),  # (3,) summed over tokens
            "tokens": batch["weight"].sum(),
            "example_bits": chunk_nats / LN2,  # (B, 3) bits of each chunk
            "grad_norm": optax.tree.norm(grads),
        }
        return {"params": params, "opt": opt, "step": state["step"] + 1}, metrics

    def _eval_step(self, params, batch):
        """Bits of each chunk ``(B, 3)`` without and with the structure masks."""
        model = self.model(params)
        raw = model(batch, deterministic=True, structure_masks=False)
        masked = M.mask_logits(model.mask_tables, raw, batch["inp"], batch["tgt"], batch["hw"])
        return ChunkBits(
            self.token_nats(raw, batch).sum(axis=1) / LN2, self.token_nats(masked, batch).sum(axis=1) / LN2
        )

    # -- sharded entry points ---------------------------------------------------
    def shard_state(self, state, mesh):
        return jax.device_put(state, state_shardings(state, mesh))

    def _for_mesh(self, mesh) -> Compiled:
        """Jitted steps with explicit in/out shardings, so FSDP shards stay put step after step."""
        if mesh not in self._jitted:
            abstract = jax.eval_shape(lambda: self.init(0))
            st = state_shardings(abstract, mesh)
            rep = NamedSharding(mesh, P())
            train = jax.jit(
                functools.partial(self._train_step, mesh=mesh),
                in_shardings=(st, batch_sharding(mesh)),
                out_shardings=(st, rep),
                donate_argnums=(0,),
            )
            ev = jax.jit(self._eval_step, in_shardings=(st["params"], batch_sharding(mesh)), out_shardings=rep)
            self._jitted[mesh] = Compiled(train, ev)
        return self._jitted[mesh]

    def train_step(self, state, batch, mesh, rows=None):
        """One optimiser step on a host batch; returns ``(new state, metrics)`` (state donated).
        ``rows``: the global rows ``batch`` holds (:func:`sharding.host_rows`), None: all."""
        size = None if rows is None else self.cfg.train.batch_size
        return self._for_mesh(mesh).train(state, put_batch(batch, mesh, rows, size))

    def eval_step(self, params, batch, mesh) -> ChunkBits:
        """Bits of each chunk of a host batch without and with the structure masks."""
        return self._for_mesh(mesh).eval(params, put_batch(batch, mesh))


def flat_reduce(cfg: Config, mesh) -> bool:
    """Whether the gradient step reduces the devices' gradients as one flat buffer
    (:func:`_grads_flat_reduce`) instead of through XLA's partitioned program.

    Why: on CPU devices XLA sums the per-device gradients in one all-reduce of a tuple of
    every parameter's gradient, and its in-process collectives meet the other devices once
    per tuple element: for ``tiny`` on two devices 156 rendezvous per call, and a gradient
    step of 23-24 ms.  One psum of one raveled vector meets them once: 16-17 ms, the same
    gradients to float rounding (docs/dctmodel.md, "Measured figures").  Only where that is
    the same program: several devices, parameters replicated (no FSDP axis), on the CPU
    (accelerators' collectives batch the tuple), and no dropout (each device would draw the
    masks of its own rows from the step's key, not those the whole batch draws).
    """
    return (
        mesh.size > 1
        and mesh.shape["model"] == 1
        and cfg.model.dropout == 0.0
        and all(d.platform == "cpu" for d in mesh.devices.flat)
        # micro-batch slice j holds rows j, j + slices, ...: each device's rows split alike
        and (cfg.train.batch_size // mesh.size) % _slices(cfg) == 0
    )


def _slices(cfg: Config) -> int:
    """How many ``train.micro_batch`` slices a step runs the batch in (1: the whole batch)."""
    return cfg.train.batch_size // (cfg.train.micro_batch or cfg.train.batch_size)


def _grads_flat_reduce(local_grads, params, batch, step, mesh):
    """``local_grads`` on each device's rows (``jax.shard_map``), then one ``psum`` of the
    gradients raveled into one vector, and of the loss; the rows' nats stay sharded."""
    (axes,) = batch_sharding(mesh).spec  # the mesh axes the batch's rows are split over

    def local(params, part):
        total = jax.lax.psum(part["weight"].sum(), axes)
        loss, chunk_nats, grads = local_grads(params, part, step, total)
        flat, unravel = ravel_pytree(grads)
        return jax.lax.psum(loss, axes), chunk_nats, unravel(jax.lax.psum(flat, axes))

    rep = jax.tree.map(lambda _: P(), params)
    return jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(rep, jax.tree.map(lambda _: P(axes), batch)),
        out_specs=(P(), P(axes), rep),
        check_vma=False,
    )(params, batch)


def _accumulate(grad_fn, params, batch, key, slices: int):
    """``grad_fn`` over ``slices`` slices of ``batch``, one after another (``lax.scan``), with the
    gradients summed: the same update as the whole batch at once, to float rounding.

    Why: XLA:CPU keeps every activation of the step in one block (126 MB for ``tiny`` at
    batch 16) and the backward pass then streams it from memory; a quarter of the batch
    stays in cache, so four slices run faster than one pass.  Slice ``j`` holds examples
    ``j, j + slices, ...``: each device's contiguous share of the batch contributes to every
    slice, so data parallelism is unchanged.  Its dropout key is ``fold_in(key, j)``.

    Returns ``(loss, (B, 3) nats of each chunk in batch order, grads)``.
    """

    def split(x):  # (B, ...) -> (slices, B // slices, ...), slice j = examples j, j + slices, ...
        return jnp.moveaxis(x.reshape(x.shape[0] // slices, slices, *x.shape[1:]), 1, 0)

    def body(acc, part):
        j, part = part
        (loss, chunk_nats), grads = grad_fn(params, part, jax.random.fold_in(key, j))
        return jax.tree.map(jnp.add, acc, (loss, grads)), chunk_nats

    zero = (jnp.zeros((), jnp.float32), jax.tree.map(jnp.zeros_like, params))
    (loss, grads), chunk_nats = jax.lax.scan(body, zero, (jnp.arange(slices), jax.tree.map(split, batch)))
    # (slices, B // slices, 3) back to batch order
    return loss, jnp.moveaxis(chunk_nats, 0, 1).reshape(-1, chunk_nats.shape[-1]), grads


_FUNCTIONS: dict = {}


def functions(cfg: Config) -> Functions:
    """Cached per config, so tests and repeated runs in one process compile once."""
    if cfg not in _FUNCTIONS:
        _FUNCTIONS[cfg] = Functions(cfg)
    return _FUNCTIONS[cfg]
