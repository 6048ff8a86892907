"""Pure-NumPy reference of every stage of the codec, in float64.

This module is the executable form of ``docs/spec.md``: it is slow and obvious on
purpose. The tests use it as the oracle for the C++ core, and a reader can
use it to understand what the C++ computes. Each function is one stage of the
data flow, in the order an image travels through the encoder:

    rgb_to_ycbcr -> pad_edge -> downsample_420 -> block_dct -> quantize
    -> zigzag -> dct_image -> to_list

and back again through ``from_list``, ``dequantize``, ``block_idct``,
``upsample_420`` and ``ycbcr_to_rgb``. Nothing here calls the C++ core.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

# Paper appendix A (= ITU T.81 Annex K): the 8x8 base tables, row-major.
T_LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.int64,
)
T_CHROMA = np.array(
    [
        [17, 18, 24, 47, 99, 99, 99, 99],
        [18, 21, 26, 66, 99, 99, 99, 99],
        [24, 26, 56, 99, 99, 99, 99, 99],
        [47, 66, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
    ],
    dtype=np.int64,
)


# --- section 2: colour and padding -------------------------------------------------


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W, 3) float64 Y, Cb, Cr (JFIF full range)."""
    x = rgb.astype(np.float64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return np.stack([y, cb, cr], axis=-1)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """(H, W, 3) float Y, Cb, Cr -> (H, W, 3) uint8, rounded half away from zero."""
    y, cb, cr = ycc[..., 0], ycc[..., 1] - 128.0, ycc[..., 2] - 128.0
    r = y + 1.402 * cr
    g = y - 0.344136 * cb - 0.714136 * cr
    b = y + 1.772 * cb
    return to_uint8(np.stack([r, g, b], axis=-1))


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Round half away from zero, clip to [0, 255], as uint8."""
    return np.clip(round_half_away(x), 0, 255).astype(np.uint8)


def round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def padded_size(height: int, width: int, block_size: int, subsampling: str) -> tuple[int, int]:
    """(Hp, Wp): the size rounded up to a multiple of 2B (4:2:0) or B (4:4:4)."""
    m = 2 * block_size if subsampling == "4:2:0" else block_size
    return -(-height // m) * m, -(-width // m) * m


def pad_edge(planes: np.ndarray, hp: int, wp: int) -> np.ndarray:
    """(H, W, ...) -> (hp, wp, ...) by repeating the last row and column."""
    h, w = planes.shape[:2]
    pad = [(0, hp - h), (0, wp - w)] + [(0, 0)] * (planes.ndim - 2)
    return np.pad(planes, pad, mode="edge")


def downsample_420(plane: np.ndarray) -> np.ndarray:
    """(2h, 2w) float -> (h, w): mean over each 2x2 box."""
    h, w = plane.shape[0] // 2, plane.shape[1] // 2
    return plane.reshape(h, 2, w, 2).mean(axis=(1, 3))


def upsample_420(plane: np.ndarray) -> np.ndarray:
    """(h, w) -> (2h, 2w) by replicating each sample over 2x2 pixels."""
    return np.repeat(np.repeat(plane, 2, axis=0), 2, axis=1)


# --- section 3: block DCT ------------------------------------------------------------


def dct_matrix(block_size: int) -> np.ndarray:
    """(B, B) float64 orthonormal DCT-II matrix C[u, x]."""
    b = block_size
    u = np.arange(b)[:, None]
    x = np.arange(b)[None, :]
    c = np.sqrt(2.0 / b) * np.cos((2 * x + 1) * u * np.pi / (2 * b))
    c[0, :] *= 1.0 / np.sqrt(2.0)
    return c


def to_blocks(plane: np.ndarray, block_size: int) -> np.ndarray:
    """(Hp, Wp) -> (Hp/B, Wp/B, B, B)."""
    b = block_size
    hp, wp = plane.shape
    return plane.reshape(hp // b, b, wp // b, b).transpose(0, 2, 1, 3)


def from_blocks(blocks: np.ndarray) -> np.ndarray:
    """(Hb, Wb, B, B) -> (Hb*B, Wb*B)."""
    hb, wb, b, _ = blocks.shape
    return blocks.transpose(0, 2, 1, 3).reshape(hb * b, wb * b)


def block_dct(plane: np.ndarray, block_size: int) -> np.ndarray:
    """(Hp, Wp) level-shifted plane -> (Hb, Wb, B, B) coefficients, D = C P C^T."""
    c = dct_matrix(block_size)
    return np.einsum("ux,ijxy,vy->ijuv", c, to_blocks(plane, block_size), c)


def block_idct(coeffs: np.ndarray) -> np.ndarray:
    """(Hb, Wb, B, B) coefficients -> (Hb*B, Wb*B) plane, P = C^T D C."""
    c = dct_matrix(coeffs.shape[-1])
    return from_blocks(np.einsum("ux,ijuv,vy->ijxy", c, coeffs, c))


# --- section 4: quantisation ---------------------------------------------------------


def quant_matrix(quality: int, block_size: int = 8, component: str = "luma") -> np.ndarray:
    """(B, B) int32 IJG quantisation matrix, base table resized by nearest neighbour."""
    base = T_LUMA if component == "luma" else T_CHROMA
    s = ((2 * np.arange(block_size) + 1) * 4) // block_size
    t = base[np.ix_(s, s)]
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((scale * t + 50) // 100, 1, 255).astype(np.int32)


def quantize(coeffs: np.ndarray, q: np.ndarray, clip: int | None = None) -> np.ndarray:
    """round(D / Q), half away from zero, optionally clipped; int64."""
    v = round_half_away(coeffs / q).astype(np.int64)
    if clip is not None:
        v = np.clip(v, -clip, clip)
    return v


def dequantize(values: np.ndarray, q: np.ndarray) -> np.ndarray:
    return values.astype(np.float64) * q


# --- section 5: zigzag and the DCT image ---------------------------------------------


def zigzag(block_size: int) -> np.ndarray:
    """(B*B,) int32: zigzag(B)[k] is the row-major index of the k-th coefficient."""
    b = block_size
    out: list[int] = []
    for s in range(2 * b - 1):
        rows: Iterable[int] = range(min(s, b - 1), max(0, s - b + 1) - 1, -1)  # largest row first
        if s % 2 == 1:
            rows = reversed(list(rows))
        out.extend(r * b + (s - r) for r in rows)
    return np.array(out, dtype=np.int32)


def plane_dct_image(values: np.ndarray) -> np.ndarray:
    """(Hb, Wb, B, B) -> (Hb, Wb, B*B) in zigzag order."""
    hb, wb, b, _ = values.shape
    return values.reshape(hb, wb, b * b)[..., zigzag(b)]


def plane_from_dct_image(img: np.ndarray, block_size: int) -> np.ndarray:
    """(Hb, Wb, B*B) zigzag -> (Hb, Wb, B, B) natural order."""
    hb, wb, _ = img.shape
    out = np.zeros((hb, wb, block_size * block_size), dtype=img.dtype)
    out[..., zigzag(block_size)] = img
    return out.reshape(hb, wb, block_size, block_size)


def channel_sequence(order, planes: int, block_size: int) -> np.ndarray:
    """The order's sequence of channel ids (section 6), int32 (P*B*B,)."""
    n = block_size * block_size
    if isinstance(order, str):
        if planes == 1:
            return np.arange(n, dtype=np.int32)
        if order == "frequency":
            return np.array([p * n + k for k in range(n) for p in range(planes)], np.int32)
        if order == "luma_first":
            chroma = [p * n + k for k in range(n) for p in range(1, planes)]
            return np.array(list(range(n)) + chroma, np.int32)
        raise ValueError(f"unknown order {order!r}")
    return np.asarray(order, dtype=np.int32)


# --- the whole encoder and decoder ---------------------------------------------------


def encode_dct_image(
    image: np.ndarray,
    block_size: int = 8,
    quality: int = 75,
    subsampling: str = "4:2:0",
    clip: int | None = None,
) -> np.ndarray:
    """uint8 (H, W, 3) or (H, W) -> int64 DCT image (Hb, Wb, P*B*B) (sections 2-5)."""
    b = block_size
    h, w = image.shape[:2]
    hp, wp = padded_size(h, w, b, subsampling)
    if image.ndim == 2:
        planes = [pad_edge(image.astype(np.float64), hp, wp)]
    else:
        ycc = pad_edge(rgb_to_ycbcr(image), hp, wp)
        planes = [ycc[..., i] for i in range(3)]
        if subsampling == "4:2:0":
            planes = [planes[0]] + [downsample_420(p) for p in planes[1:]]
    hb, wb = hp // b, wp // b
    out = np.zeros((hb, wb, len(planes) * b * b), dtype=np.int64)
    for i, plane in enumerate(planes):
        q = quant_matrix(quality, b, "luma" if i == 0 else "chroma")
        img = plane_dct_image(quantize(block_dct(plane - 128.0, b), q, clip))
        step = 2 if (i > 0 and subsampling == "4:2:0") else 1
        out[::step, ::step, i * b * b : (i + 1) * b * b] = img
    return out


def to_list(dct_img: np.ndarray, order) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DCT image -> (channel, position, value) int32 arrays in list order (section 6)."""
    hb, wb, nch = dct_img.shape
    bb = next((b for b in range(2, 65) if nch in (b * b, 3 * b * b)), None)
    if bb is None:
        raise ValueError(f"a DCT image has B*B or 3*B*B channels (B in 2..64), got {nch}")
    planes = nch // (bb * bb)
    seq = channel_sequence(order, planes, bb)
    flat = dct_img.reshape(hb * wb, nch)
    chans, poss, vals = [], [], []
    for ch in seq:
        pos = np.nonzero(flat[:, ch])[0]
        chans.append(np.full(len(pos), ch))
        poss.append(pos)
        vals.append(flat[pos, ch])
    cat = lambda xs: np.concatenate(xs).astype(np.int32)  # noqa: E731
    return cat(chans), cat(poss), cat(vals)


def from_list(channel, position, value, hb: int, wb: int, nch: int) -> np.ndarray:
    """(channel, position, value) -> int64 DCT image (Hb, Wb, nch); missing entries are 0."""
    out = np.zeros((hb * wb, nch), dtype=np.int64)
    out[np.asarray(position), np.asarray(channel)] = value
    return out.reshape(hb, wb, nch)


def decode_dct_image(
    dct_img: np.ndarray,
    height: int,
    width: int,
    block_size: int = 8,
    quality: int = 75,
    subsampling: str = "4:2:0",
) -> np.ndarray:
    """int DCT image (Hb, Wb, P*B*B) -> uint8 (H, W, 3) or (H, W) (section 7)."""
    b = block_size
    nplanes = dct_img.shape[-1] // (b * b)
    planes = []
    for i in range(nplanes):
        step = 2 if (i > 0 and subsampling == "4:2:0") else 1
        img = dct_img[::step, ::step, i * b * b : (i + 1) * b * b]
        q = quant_matrix(quality, b, "luma" if i == 0 else "chroma")
        plane = block_idct(dequantize(plane_from_dct_image(img, b), q)) + 128.0
        planes.append(upsample_420(plane) if step == 2 else plane)
    if nplanes == 1:
        return to_uint8(planes[0])[:height, :width]
    return ycbcr_to_rgb(np.stack(planes, axis=-1))[:height, :width]
