"""The optimiser: learning-rate schedule, Adam(W) and gradient clipping, from ``cfg.train``."""

from __future__ import annotations

import math

import jax.numpy as jnp
import optax

from ..config import Config


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
    adam = (
        optax.adamw(lr_schedule(cfg), b1=t.adam_b1, b2=t.adam_b2, weight_decay=t.weight_decay)
        if t.weight_decay
        else optax.adam(lr_schedule(cfg), b1=t.adam_b1, b2=t.adam_b2)
    )
    return optax.chain(optax.clip_by_global_norm(t.grad_clip), adam) if t.grad_clip else adam
