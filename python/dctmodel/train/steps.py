"""The jitted pure steps over the train state ``{"params", "opt", "step"}``: init, loss, train and eval.

Loss: mean over target tokens of channel + position + value cross-entropy
(nats).  The stop token contributes its channel term only.  The dropout key
of step ``k`` is ``fold_in(seed, k)``, so a resumed run repeats an
uninterrupted one bit for bit.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx
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
    eval: Any   # (params, batch) -> ChunkBits


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
        return ChunkBits(self.token_nats(raw, batch).sum(axis=1) / LN2,
                         self.token_nats(masked, batch).sum(axis=1) / LN2)

    # -- sharded entry points ---------------------------------------------------
    def shard_state(self, state, mesh):
        return jax.device_put(state, state_shardings(state, mesh))

    def _for_mesh(self, mesh) -> Compiled:
        """Jitted steps with explicit in/out shardings, so FSDP shards stay put step after step."""
        if mesh not in self._jitted:
            abstract = jax.eval_shape(lambda: self.init(0))
            st = state_shardings(abstract, mesh)
            rep = NamedSharding(mesh, P())
            train = jax.jit(self._train_step, in_shardings=(st, batch_sharding(mesh)),
                            out_shardings=(st, rep), donate_argnums=(0,))
            ev = jax.jit(self._eval_step, in_shardings=(st["params"], batch_sharding(mesh)), out_shardings=rep)
            self._jitted[mesh] = Compiled(train, ev)
        return self._jitted[mesh]

    def train_step(self, state, batch, mesh):
        """One optimiser step on a host batch; returns ``(new state, metrics)`` (state donated)."""
        return self._for_mesh(mesh).train(state, put_batch(batch, mesh))

    def eval_step(self, params, batch, mesh) -> ChunkBits:
        """Bits of each chunk of a host batch without and with the structure masks."""
        return self._for_mesh(mesh).eval(params, put_batch(batch, mesh))


_FUNCTIONS: dict = {}


def functions(cfg: Config) -> Functions:
    """Cached per config, so tests and repeated runs in one process compile once."""
    if cfg not in _FUNCTIONS:
        _FUNCTIONS[cfg] = Functions(cfg)
    return _FUNCTIONS[cfg]
