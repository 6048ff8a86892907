"""Validation and normalisation of everything a user hands to the codec.

Every public entry point goes through these functions, so a bad argument
gets a ``TypeError``/``ValueError`` that names the problem before any array
reaches the C++ core (which validates sizes and indices again).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _core

SUBSAMPLINGS = ("4:2:0", "4:4:4")
NAMED_ORDERS = {"frequency": 0, "luma_first": 1}
MODES = {"RGB": 3, "L": 1}

Order = str | Sequence[int] | np.ndarray


def as_int(name: str, value: Any, lo: int, hi: int) -> int:
    """An integer (not a bool, not a float) in [lo, hi]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


def block_size(value: Any) -> int:
    return as_int("block_size", value, 2, 64)


def quality(value: Any) -> int:
    return as_int("quality", value, 1, 100)


def subsampling(value: Any) -> str:
    if value not in SUBSAMPLINGS:
        raise ValueError(f"subsampling must be one of {SUBSAMPLINGS}, got {value!r}")
    return value


def clip(value: Any) -> int | None:
    """None (no clipping) or a positive integer."""
    if value is None:
        return None
    return as_int("clip", value, 1, 2**31 - 1)


def mode(value: Any) -> str:
    if value not in MODES:
        raise ValueError(f"mode must be 'RGB' or 'L', got {value!r}")
    return value


def dimensions(height: Any, width: Any) -> tuple[int, int]:
    h = as_int("height", height, 1, 2**31 - 1)
    w = as_int("width", width, 1, 2**31 - 1)
    check_pixel_limit(h, w)
    return h, w


def check_pixel_limit(height: int, width: int) -> None:
    """Refuses an image over :data:`dctsparse.MAX_IMAGE_PIXELS` or the core's own
    limit: the core's check (cpp/common.hpp), the one every entry point uses."""
    _core.check_image_size(height, width, pixel_limit())


def pixel_limit() -> int:
    """:data:`dctsparse.MAX_IMAGE_PIXELS` as the core takes it: -1 for no limit."""
    import dctsparse

    limit = dctsparse.MAX_IMAGE_PIXELS
    return -1 if limit is None else int(limit)


def byte_buffer(data: Any) -> bytes | bytearray | memoryview:
    """A bytes-like object as a flat byte buffer the core can read without a copy
    (a non-contiguous one is copied)."""
    if isinstance(data, (bytes, bytearray)):
        return data
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"expected bytes-like data, got {type(data).__name__}") from None
    return view.cast("B") if view.c_contiguous else view.tobytes()


def order(value: Any, planes: int, block: int) -> tuple[str | tuple[int, ...], np.ndarray]:
    """-> (the order as stored on a SparseDCT, its channel sequence int32 (P*B*B,)).

    Named orders are kept as their name; an explicit permutation is kept as a
    tuple of ints so that SparseDCT stays hashable and comparable.
    """
    if isinstance(value, str):
        if value not in NAMED_ORDERS:
            raise ValueError(
                f"unknown order {value!r}: use 'frequency', 'luma_first' or a permutation "
                f"of the {planes * block * block} channel ids"
            )
        return value, _core.channel_sequence(NAMED_ORDERS[value], planes, block)
    try:
        arr = np.asarray(value)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise TypeError(f"order must be a name or a sequence of ints: {exc}") from None
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise TypeError("order must be 'frequency', 'luma_first' or a 1-D sequence of ints")
    n = planes * block * block
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise ValueError(f"order entries must be channel ids in [0, {n}), got {arr.min()}..{arr.max()}")
    seq = np.ascontiguousarray(arr, dtype=np.int32)
    _core.check_permutation(seq, n)
    return tuple(int(x) for x in seq), seq


def image(value: Any, drop_alpha: bool = False) -> np.ndarray:
    """A Pillow image or array -> uint8 (H, W) or (H, W, 3), not copied: a view of
    the caller's array where it is one. The caller makes it contiguous once the
    header's checks have passed (a copy before them could be the 2 GB that a
    zero-stride view of a too-large image expands to)."""
    from PIL import Image

    if isinstance(value, Image.Image):
        value = pil_to_array(value, drop_alpha)
    if not isinstance(value, np.ndarray):
        raise TypeError(f"image must be a numpy array or a PIL image, got {type(value).__name__}")
    if value.dtype != np.uint8:
        raise TypeError(f"image must have dtype uint8, got {value.dtype}")
    if value.ndim == 3 and value.shape[2] == 4 and drop_alpha:
        value = value[..., :3]
    if value.ndim == 3 and value.shape[2] == 1:
        value = value[..., 0]
    if value.ndim not in (2, 3):
        raise ValueError(f"image must have shape (H, W) or (H, W, 3), got {value.shape}")
    if value.ndim == 3 and value.shape[2] != 3:
        hint = " (pass drop_alpha=True to drop an alpha channel)" if value.shape[2] == 4 else ""
        raise ValueError(f"image must have 1 or 3 channels, got {value.shape[2]}{hint}")
    if value.shape[0] == 0 or value.shape[1] == 0:
        raise ValueError(f"image is empty: shape {value.shape}")
    check_pixel_limit(value.shape[0], value.shape[1])
    return value


def pil_to_array(img, drop_alpha: bool) -> np.ndarray:
    check_pixel_limit(img.height, img.width)  # before any conversion copies it
    if img.mode in ("RGB", "L"):
        return np.asarray(img)
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info)
    if has_alpha and not drop_alpha:
        raise ValueError(f"image mode {img.mode} has an alpha channel: pass drop_alpha=True to drop it")
    if img.mode in ("I", "F") or img.mode.startswith("I;"):
        # 16-bit, 32-bit and float images: Pillow's convert clips to 0..255,
        # which would silently whiten a 16-bit photograph. Exact only when the
        # values are 8-bit already; otherwise the caller must choose a scaling.
        arr = np.asarray(img)
        exact = arr.dtype.kind != "f" or np.all(arr == np.floor(arr))  # NaN fails here, inf the range
        if arr.size and not (exact and arr.min() >= 0 and arr.max() <= 255):
            raise ValueError(
                f"image mode {img.mode} holds values outside the integers 0..255 (range "
                f"{arr.min()}..{arr.max()}): the codec takes 8-bit images; scale to uint8 first"
            )
        return arr.astype(np.uint8)
    if img.mode in ("RGBa", "La"):
        # Premultiplied alpha: back to straight alpha, then as RGBA/LA (Pillow
        # cannot convert La to L directly).
        img = img.convert(img.mode.upper())
    if img.mode in ("LA", "1"):
        return np.asarray(img.convert("L"))
    return np.asarray(img.convert("RGB"))


def int32_vector(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < -(2**31) or arr.max() >= 2**31):
        raise ValueError(f"{name} has entries outside the int32 range")
    return np.ascontiguousarray(arr, dtype=np.int32)
