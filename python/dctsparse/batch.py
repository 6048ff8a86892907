"""Many images at once, on all cores: the C++ core releases the GIL, so a
thread pool runs one image per thread in parallel."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Sequence

import numpy as np

from .codec import decode, encode
from .sparse import SparseDCT

_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0


def _pool(threads: int) -> ThreadPoolExecutor:
    # One pool per process, grown on demand: repeated calls pay no thread start-up.
    global _POOL, _POOL_SIZE
    if _POOL is None or _POOL_SIZE < threads:
        if _POOL is not None:
            _POOL.shutdown(wait=True)
        _POOL = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dctsparse")
        _POOL_SIZE = threads
    return _POOL


def _threads(threads: int | None, n: int) -> int:
    if threads is None:
        threads = os.cpu_count() or 1
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    return min(threads, n)


def encode_batch(images: Iterable, *, threads: int | None = None, **settings: Any) -> list[SparseDCT]:
    """``[encode(im, **settings) for im in images]``, in parallel over ``threads``
    (default: all cores). A single image, or ``threads=1``, runs on the calling thread."""
    images = list(images)
    t = _threads(threads, max(len(images), 1))
    if t == 1:
        return [encode(im, **settings) for im in images]
    return list(_pool(t).map(lambda im: encode(im, **settings), images))


def decode_batch(items: Sequence[SparseDCT], *, threads: int | None = None) -> list[np.ndarray]:
    """``[decode(s) for s in items]``, in parallel like :func:`encode_batch`."""
    items = list(items)
    t = _threads(threads, max(len(items), 1))
    if t == 1:
        return [decode(s) for s in items]
    return list(_pool(t).map(decode, items))
