"""Structure-aware logit masks (beyond the paper; switch with ``ModelConfig.structure_masks``).

With a known channel order the coordinate list has hard structure
(SPEC section 6) that an unmasked model must learn and pays bits for:

* channels never go back in the order: ``rank(c_next) >= rank(c_prev)``;
  staying in the same channel is only possible if a later valid position of
  that channel exists; the stop token is always possible;
* within a channel positions strictly increase: ``c_next == c_prev`` implies
  ``p_next > p_prev``;
* positions lie in the image's own grid, ``p < Hb*Wb``, and with 4:2:0 chroma
  channels only use even rows and even columns (SPEC section 5).

Every rule reads only the previous token and the teacher-forced next
channel, which the decoders already see, so masking keeps the model
causal.  Masked logits are set to ``NEG`` (finite, so a fully masked row
cannot produce NaNs); rows whose target is stop/PAD are left unmasked.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .tokens import channel_rank

NEG = -1e9


class MaskTables:
    """Static per-config tables, numpy; build once per config."""

    def __init__(self, *, order, planes: int, block_size: int, subsampling: str, grid: int):
        self.num_channels = planes * block_size * block_size
        self.grid = grid
        self.rank = channel_rank(order, planes, block_size)
        ch = np.arange(self.num_channels)
        self.even_only = (planes == 3) & (subsampling == "4:2:0") & (ch >= block_size * block_size)

    @classmethod
    def from_config(cls, cfg) -> MaskTables:
        d = cfg.data
        return cls(order=d.order, planes=d.planes, block_size=d.block_size, subsampling=d.subsampling, grid=d.grid)


def _last_position(hw: jnp.ndarray, even_only: jnp.ndarray) -> jnp.ndarray:
    """Largest valid position per (example, channel): int32 ``(B, P*B*B)``."""
    hb, wb = hw[:, 0:1], hw[:, 1:2]
    last_any = hb * wb - 1
    last_even = (hb - 1 - (hb - 1) % 2) * wb + (wb - 1 - (wb - 1) % 2)
    return jnp.where(even_only[None, :], last_even, last_any)


def channel_mask(t: MaskTables, prev: jnp.ndarray, hw: jnp.ndarray) -> jnp.ndarray:
    """Allowed next channels, bool ``(B, S, P*B*B + 1)``.

    Args: ``prev`` int32 ``(B, S, 3)`` decoder inputs (previous tokens);
    ``hw`` int32 ``(B, 2)`` the images' ``(Hb, Wb)``.
    """
    n = t.num_channels
    rank = jnp.asarray(t.rank)
    c_prev, p_prev = prev[..., 0], prev[..., 1]
    real_prev = c_prev < n
    r_prev = rank[jnp.minimum(c_prev, n - 1)]
    later = rank[None, None, :] > r_prev[..., None]
    same = jnp.arange(n)[None, None, :] == c_prev[..., None]
    room = p_prev[..., None] < _last_position(hw, jnp.asarray(t.even_only))[:, None, :]
    ok = later | (same & room) | ~real_prev[..., None]
    return jnp.concatenate([ok, jnp.ones(ok.shape[:-1] + (1,), bool)], axis=-1)


def position_mask(t: MaskTables, prev: jnp.ndarray, c_next: jnp.ndarray, hw: jnp.ndarray) -> jnp.ndarray:
    """Allowed next positions, bool ``(B, S, grid*grid)``; ``c_next`` int32 ``(B, S)``."""
    n = t.num_channels
    p = jnp.arange(t.grid * t.grid)
    hb, wb = hw[:, 0, None, None], hw[:, 1, None, None]
    row, col = p[None, None, :] // wb, p[None, None, :] % wb
    real_next = c_next < n
    even = jnp.asarray(t.even_only)[jnp.minimum(c_next, n - 1)] & real_next
    ok = p[None, None, :] < hb * wb
    ok &= ~even[..., None] | ((row % 2 == 0) & (col % 2 == 0))
    same = (c_next == prev[..., 0])[..., None]
    ok &= ~same | (p[None, None, :] > prev[..., 1, None])
    return ok | ~real_next[..., None]


def apply(logits: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
    return jnp.where(mask, logits, jnp.asarray(NEG, logits.dtype))


# The three users (the forward pass, evaluation both ways, the sampler) mask through these.


def mask_channel(t: MaskTables, logits, prev, hw, also=None):
    """Channel logits ``(B, S, P*B*B + 1)`` with the channels that cannot follow ``prev``
    int32 ``(B, S, 3)`` set to ``NEG``; ``also`` bool ``(B, S, P*B*B + 1)`` forbids more."""
    mask = channel_mask(t, prev, hw)
    return apply(logits, mask if also is None else mask & also)


def mask_position(t: MaskTables, logits, prev, c_next, hw):
    """Position logits ``(B, S, grid*grid)`` with the positions that cannot hold channel
    ``c_next`` int32 ``(B, S)`` after ``prev`` int32 ``(B, S, 3)`` set to ``NEG``."""
    return apply(logits, position_mask(t, prev, c_next, hw))


def mask_logits(t: MaskTables, logits: tuple, inp, tgt, hw) -> tuple:
    """Teacher-forced ``(channel, position, value)`` logits of a window (``inp``/``tgt`` int32
    ``(B, S, 3)``) with both structure masks applied; values are never masked."""
    channel, position, value = logits
    return (mask_channel(t, channel, inp, hw), mask_position(t, position, inp, tgt[..., 0], hw), value)
