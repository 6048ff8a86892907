"""Encode images to sparse DCT lists and decode them back (SPEC sections 2-7)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core, inputs
from .sparse import SparseDCT


def encode(
    image,
    block_size: int = 8,
    quality: int = 75,
    subsampling: str = "4:2:0",
    order: Any = "frequency",
    clip: int | None = None,
    *,
    drop_alpha: bool = False,
) -> SparseDCT:
    """Image -> :class:`SparseDCT`.

    Args:
        image: uint8 array ``(H, W, 3)`` RGB or ``(H, W)`` greyscale, or a PIL image
            (converted to RGB/L; an alpha channel is refused unless ``drop_alpha``).
        block_size: B in [2, 64].
        quality: IJG quality in [1, 100].
        subsampling: ``"4:2:0"`` (chroma averaged over 2x2; the image is padded to a
            multiple of 2B, also for greyscale) or ``"4:4:4"`` (padded to B).
        order: ``"frequency"``, ``"luma_first"`` or a permutation of the P*B*B channel ids.
        clip: clip quantised values to [-clip, clip]; None for no clipping.
    """
    img = inputs.image(image, drop_alpha=drop_alpha)
    s = _header(img, block_size, quality, subsampling, order, clip)
    img = np.ascontiguousarray(img)  # only now: the header checked the size
    c, p, v = _core.encode(img, s.block_size, s.quality, s.subsampling == "4:2:0", s.clip or 0, s._seq)
    return SparseDCT._trusted(c, p, v, s)


def _header(img: np.ndarray, block_size=8, quality=75, subsampling="4:2:0", order="frequency", clip=None) -> SparseDCT:
    """The validated header of `img`'s encoding (a uint8 array from
    inputs.image; the other arguments and defaults are :func:`encode`'s),
    including the core's geometry (the padded size it can address)."""
    return SparseDCT._header_only(
        height=img.shape[0],
        width=img.shape[1],
        block_size=block_size,
        quality=quality,
        subsampling=subsampling,
        order=order,
        clip=clip,
        mode="RGB" if img.ndim == 3 else "L",
    )


def decode(s: SparseDCT) -> np.ndarray:
    """:class:`SparseDCT` -> uint8 ``(H, W, 3)`` (RGB) or ``(H, W)`` (L).

    Missing coefficients are zero, so a prefix decodes to a progressive preview.
    Chroma is upsampled by 2x2 replication under 4:2:0.
    """
    if not isinstance(s, SparseDCT):
        raise TypeError(f"decode expects a SparseDCT, got {type(s).__name__}")
    return _core.decode(*_decode_args(s))


def _decode_args(s: SparseDCT) -> tuple:
    """The core decoder's arguments for ``s`` (``_core.decode`` and each item of ``decode_many``)."""
    return (
        s.channel,
        s.position,
        s.value,
        s.height,
        s.width,
        s.planes,
        s.block_size,
        s.quality,
        s.subsampling == "4:2:0",
        s.clip or 0,
    )


def quant_matrix(quality: int, block_size: int = 8, component: str = "luma") -> np.ndarray:
    """int32 (B, B): the IJG table for ``quality``, resized to B by nearest neighbour."""
    if component not in ("luma", "chroma"):
        raise ValueError(f"component must be 'luma' or 'chroma', got {component!r}")
    return _core.quant_matrix(inputs.quality(quality), inputs.block_size(block_size), component == "chroma")


def zigzag(block_size: int) -> np.ndarray:
    """int32 (B*B,): ``zigzag(B)[k]`` is the row-major index of the k-th coefficient."""
    return _core.zigzag(inputs.block_size(block_size))
