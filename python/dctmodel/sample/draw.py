"""Drawing one variable (channel, position or value) from its logits: settings, filters, the draw."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp

PerVariable = float | int | Sequence


def _three(x, kind) -> tuple:
    t = tuple(x) if isinstance(x, (tuple, list)) else (x, x, x)
    if len(t) != 3:
        raise ValueError("give one value or three (channel, position, value)")
    return tuple(kind(v) for v in t)


@dataclass(frozen=True)
class SampleSettings:
    """Per variable (channel, position, value): temperature (0 = greedy), top-k (0 = off),
    nucleus top-p (1 = off)."""

    temperature: tuple = (1.0, 1.0, 1.0)
    top_k: tuple = (0, 0, 0)
    top_p: tuple = (1.0, 1.0, 1.0)

    @classmethod
    def make(cls, temperature: PerVariable = 1.0, top_k: PerVariable = 0, top_p: PerVariable = 1.0):
        return cls(_three(temperature, float), _three(top_k, int), _three(top_p, float))


def filter_logits(logits, temperature: float, top_k: int, top_p: float):
    """Tempered logits with everything outside top-k / the top-p nucleus set to -inf.

    ``logits`` float32 ``(B, V)``.  The most likely class always survives.
    """
    logits = logits.astype(jnp.float32) / max(temperature, 1e-6)
    if top_k and top_k < logits.shape[-1]:
        kth = jax.lax.top_k(logits, top_k)[0][:, -1:]
        logits = jnp.where(logits >= kth, logits, -jnp.inf)
    if top_p < 1.0:
        srt = -jnp.sort(-logits, axis=-1)
        pr = jax.nn.softmax(srt, axis=-1)
        before = jnp.cumsum(pr, axis=-1) - pr  # mass of the strictly more likely classes
        thr = jnp.min(jnp.where(before < top_p, srt, jnp.inf), axis=-1, keepdims=True)
        logits = jnp.where(logits >= thr, logits, -jnp.inf)
    return logits


def draw(key, logits, temperature: float, top_k: int, top_p: float):
    """One class per row: int32 ``(B,)`` from float32 logits ``(B, V)`` (already masked)."""
    if temperature == 0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return jax.random.categorical(key, filter_logits(logits, temperature, top_k, top_p)).astype(jnp.int32)
