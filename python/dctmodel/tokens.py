"""Token conventions shared by the data pipeline, the model and the masks.

A token sequence is the ``(N + 1, 3)`` int32 array of ``SparseDCT.tokens()``
(SPEC section 6): rows ``(channel, position, value)`` ending with the stop
token ``(P*B*B, 0, 0)``.

Model vocabularies:

* channel: ``P*B*B + 1`` classes; class ``P*B*B`` is the stop token.  Two more
  *input-only* ids exist for the decoders' inputs: ``BOS = P*B*B + 1`` (the
  "previous token" of the first token) and ``PAD = P*B*B + 2`` (outside the
  sequence).  They are never predicted.
* position: ``Hb*Wb`` of the config's largest image, ``position = row*Wb + col``
  with the image's own ``Wb`` (SPEC); 2-D embeddings use ``(row, col)`` so
  images of other aspect ratios share them.
* value: ``2*clip`` classes for the non-zero values ``[-clip, -1] U [1, clip]``:
  ``v -> v + clip`` for ``v < 0`` and ``v -> v + clip - 1`` for ``v > 0``, so
  ``-clip -> 0``, ``-1 -> clip-1``, ``1 -> clip``, ``clip -> 2*clip-1``.
  Input-only id ``2*clip`` stands for "no value" (stop, BOS, PAD).

The stop token's position and value are conventions (0, 0), not information:
the model is trained and scored on the stop token's *channel* only; its
position and value terms are masked out of the loss and out of the bits.
"""

from __future__ import annotations

import numpy as np


def value_to_class(v: np.ndarray, clip: int) -> np.ndarray:
    """Non-zero integer values in ``[-clip, clip]`` -> classes ``[0, 2*clip)``.  Zero -> ``2*clip``."""
    v = np.asarray(v)
    out = np.where(v < 0, v + clip, v + clip - 1)
    return np.where(v == 0, 2 * clip, out).astype(np.int32)


def class_to_value(k: np.ndarray, clip: int) -> np.ndarray:
    """Inverse of :func:`value_to_class` on ``[0, 2*clip)``."""
    k = np.asarray(k)
    return np.where(k < clip, k - clip, k - clip + 1).astype(np.int32)


def class_to_value_device(k, clip: int):
    """:func:`class_to_value` in JAX, for the jitted model and sampler (the "none" class
    ``2*clip`` maps to ``clip + 1``: callers mask it out)."""
    import jax.numpy as jnp

    return jnp.where(k < clip, k - clip, k - clip + 1)


def channel_sequence(order: str, planes: int, block_size: int) -> np.ndarray:
    """Channel ids in list order (SPEC section 6), int32 ``(P*B*B,)``."""
    bb = block_size * block_size
    if planes == 1:
        return np.arange(bb, dtype=np.int32)
    if isinstance(order, str) and order == "frequency":
        k, p = np.meshgrid(np.arange(bb), np.arange(planes), indexing="ij")
        return (p * bb + k).reshape(-1).astype(np.int32)
    if isinstance(order, str) and order == "luma_first":
        chroma = channel_sequence("frequency", planes - 1, block_size) + bb
        return np.concatenate([np.arange(bb), chroma]).astype(np.int32)
    perm = np.asarray(order, dtype=np.int32)
    if sorted(perm.tolist()) != list(range(planes * bb)):
        raise ValueError(f"order must be 'frequency', 'luma_first' or a permutation of {planes * bb} channel ids")
    return perm


def channel_rank(order: str, planes: int, block_size: int) -> np.ndarray:
    """``rank[channel]`` = place of the channel in the order, int32 ``(P*B*B,)``."""
    seq = channel_sequence(order, planes, block_size)
    rank = np.empty_like(seq)
    rank[seq] = np.arange(seq.size, dtype=np.int32)
    return rank


def grid_of(height: int, width: int, block_size: int, subsampling: str, planes: int = 3) -> tuple[int, int]:
    """Luma block grid ``(Hb, Wb)`` of an image (SPEC section 2 padding).

    4:2:0 pads to a multiple of ``2B`` even for greyscale images, as the codec does.
    """
    del planes  # the padding rule does not depend on the plane count
    mult = 2 * block_size if subsampling == "4:2:0" else block_size
    return (-(-height // mult) * mult // block_size, -(-width // mult) * mult // block_size)


def dense_dct(tokens: np.ndarray, n: int, hb: int, wb: int, grid: int, num_channels: int) -> np.ndarray:
    """Scatter the first ``n`` tokens into a DCT image int32 ``(grid, grid, P*B*B)``.

    The image's own ``(hb, wb)`` grid sits in the top-left corner of the
    config's ``grid x grid`` canvas; the rest stays zero.
    """
    out = np.zeros((grid, grid, num_channels), np.int32)
    t = tokens[:n]
    t = t[t[:, 0] < num_channels]
    out[t[:, 1] // wb, t[:, 1] % wb, t[:, 0]] = t[:, 2]
    return out


def dense_dct_device(prefix, hw, grid: int, num_channels: int):
    """:func:`dense_dct` in JAX, batched, for the jitted steps: prefixes int16/int32 ``(B, Lp, 3)``
    (rows with channel ``>= num_channels`` are padding and dropped) and each image's grid
    ``hw`` int32 ``(B, 2)`` -> int32 ``(B, grid, grid, num_channels)``.

    Why on the device: the dense image is ``grid^2 * P*B*B`` int32 per example, mostly zeros
    (1.8 MB for ``lsun``), against 12 bytes per prefix token; the host ships the tokens.
    ``vmap`` keeps the scatter per example, so a batch-sharded input stays sharded."""
    import jax
    import jax.numpy as jnp

    def one(p, wb):
        p = p.astype(jnp.int32)  # the host ships int16 where it fits (data.prefix_dtype)
        ch, pos, val = p[:, 0], p[:, 1], p[:, 2]
        ch = jnp.where((ch >= 0) & (ch < num_channels), ch, num_channels)  # padding -> out of range
        out = jnp.zeros((grid, grid, num_channels), jnp.int32)
        return out.at[pos // wb, pos % wb, ch].set(val, mode="drop")

    return jax.vmap(one)(prefix, hw[:, 1])
