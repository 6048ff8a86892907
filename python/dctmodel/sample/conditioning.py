"""Conditioning prefixes (section 4.3): super-resolution keeps the DC channels, colorisation the luma."""

from __future__ import annotations

import numpy as np

from ..config import Config
from ..tokens import channel_rank, grid_of


def _encode(cfg: Config, img: np.ndarray):
    import dctsparse

    d = cfg.data
    return dctsparse.encode(
        img, block_size=d.block_size, quality=d.quality, subsampling=d.subsampling, order=d.order, clip=d.clip
    )


def _fit(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    if img.shape[:2] == (size[1], size[0]):
        return img
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BOX))


def upsample_prefix(cfg: Config, low: np.ndarray) -> tuple[np.ndarray, tuple[int, int], int, np.ndarray]:
    """Super-resolution context: the DC channel of every plane from a low-resolution image.

    ``low`` uint8 ``(h, w[, 3])``, one pixel per ``B x B`` block of the output
    (a bigger image is box-downsampled to ``ceil(image_size / B)`` on its long
    side).  Each pixel is repeated into a ``B x B`` block (so each block's DC
    coefficient is that pixel) and encoded; the tokens of the DC channels
    (the first ``planes`` channels of the order) are kept.
    Returns ``(prefix int32 (n, 3), (Hb, Wb), min_rank, output-size image of the blocks)``.
    """
    d = cfg.data
    B = d.block_size
    rank = channel_rank(d.order, d.planes, B)
    # The kept DC tokens must be a prefix of the list: the planes' DC channels (ids p*B*B) must come
    # first in the order (frequency order does; luma_first lists the luma AC before the chroma DC).
    if not (rank[:: B * B] < d.planes).all():
        raise ValueError(
            f"super-resolution needs a model whose data.order starts with the DC channels of every plane; "
            f"data.order={d.order!r} does not"
        )
    h, w = low.shape[:2]
    side = -(-d.image_size // B)
    if max(h, w) > side:
        s = side / max(h, w)
        low = _fit(low, (max(1, round(w * s)), max(1, round(h * s))))
        h, w = low.shape[:2]
    if d.grey and low.ndim == 3:
        low = np.round(low @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    if not d.grey and low.ndim == 2:
        low = np.repeat(low[..., None], 3, axis=2)
    big = np.repeat(np.repeat(low, B, axis=0), B, axis=1)
    toks = np.asarray(_encode(cfg, big).tokens(), np.int32)[:-1]
    dc = rank[toks[:, 0]] < d.planes
    return toks[dc], grid_of(big.shape[0], big.shape[1], B, d.subsampling), d.planes, big


def colorize_prefix(cfg: Config, grey: np.ndarray) -> tuple[np.ndarray, tuple[int, int], int, np.ndarray]:
    """Colorisation context (``order="luma_first"``): the luma tokens of a greyscale image.

    ``grey`` uint8 ``(h, w)`` (or RGB, converted with the JPEG luma weights),
    resized so its long side is ``image_size``.  It is encoded as RGB with
    R = G = B (luma = the grey image, chroma = 0); the luma part of the list
    (channels ``< B*B``) is the prefix.  Returns ``(prefix, (Hb, Wb), min_rank = B*B, grey RGB)``.
    """
    d = cfg.data
    if d.order != "luma_first" or d.grey:
        raise ValueError("colorisation needs a colour model with data.order='luma_first'")
    if grey.ndim == 3:
        grey = np.round(grey[..., :3] @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    h, w = grey.shape
    s = d.image_size / max(h, w)
    grey = _fit(grey, (max(1, round(w * s)), max(1, round(h * s))))
    rgb = np.repeat(grey[..., None], 3, axis=2)
    toks = np.asarray(_encode(cfg, rgb).tokens(), np.int32)[:-1]
    bb = d.block_size**2
    luma = toks[:, 0] < bb
    assert luma[: luma.sum()].all(), "luma_first order must list luma first"
    return toks[luma], grid_of(rgb.shape[0], rgb.shape[1], d.block_size, d.subsampling), bb, rgb
