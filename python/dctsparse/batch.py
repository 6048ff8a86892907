"""Many images at once, on all cores.

A batch goes to the C++ core in chunks of up to 64 images or 64 megapixels:
each chunk is one call, whose images run in parallel on native threads
without the GIL (largest first, each thread taking the next image when it
is done); the arguments of every image are checked with the GIL held first.
Per-image Python work in the parallel part would serialise on the GIL: a
thread pool calling :func:`encode` per image reached 1.2-1.7x on two cores
where this reaches ~1.8-1.9x. Between chunks Ctrl-C is seen (a chunk takes
well under a second on one core), and a chunk's outputs share one allocation
(see docs/codec.md): a chunk's memory is freed when all its outputs are.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from . import _core, inputs
from .codec import _decode_args, _header
from .sparse import SparseDCT

#: A chunk ends after this many images or this many pixels, whichever first.
CHUNK_IMAGES = 64
CHUNK_PIXELS = 64 << 20


def _threads(threads: int | None, n: int) -> int:
    if threads is None:
        threads = os.cpu_count() or 1
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    return min(threads, max(n, 1))


def _item_error(i: int, e: Exception) -> Exception:
    return type(e)(f"image {i}: {e}")


def _chunks(pixels: Sequence[int]) -> Iterator[tuple[int, int]]:
    """[start, stop) index ranges of consecutive items, each within the limits."""
    start = 0
    while start < len(pixels):
        stop, total = start, 0
        while (
            stop < len(pixels)
            and stop - start < CHUNK_IMAGES
            and (stop == start or total + pixels[stop] <= CHUNK_PIXELS)
        ):
            total += pixels[stop]
            stop += 1
        yield start, stop
        start = stop


def _image_list(images: Iterable) -> list:
    """The images of a batch as a list. One image passed alone is refused: a list of
    its rows would encode as that many greyscale images."""
    from PIL import Image

    if isinstance(images, Image.Image):
        raise TypeError("encode_batch takes a list of images, got one PIL image: pass [image]")
    if isinstance(images, np.ndarray) and (images.ndim < 3 or (images.ndim == 3 and images.shape[2] in (3, 4))):
        raise TypeError(
            f"encode_batch takes a list of images or an (N, H, W) / (N, H, W, 3) stack, got one "
            f"array of shape {images.shape}, which reads as a single image: pass [image] (a "
            f"stack of greyscale images 3 or 4 pixels wide must be passed as a list)"
        )
    return list(images)


def encode_batch(images: Iterable, *, threads: int | None = None, **settings: Any) -> list[SparseDCT]:
    """``[encode(im, **settings) for im in images]``, in parallel over ``threads``
    native threads (default: all cores; ``threads=1`` runs on the calling thread).

    The results equal those of :func:`encode`. An error names the first
    failing image in list order (``"image 3: ..."``), as the loop would.
    """
    images = _image_list(images)
    t = _threads(threads, len(images))
    drop_alpha = settings.pop("drop_alpha", False)
    prepared = []
    like: dict[int, SparseDCT] = {}  # image rank (mode) -> a validated header: the others differ only in size
    for i, im in enumerate(images):
        try:
            img = inputs.image(im, drop_alpha=drop_alpha)
            if img.ndim in like:
                s = like[img.ndim]._resized(img.shape[0], img.shape[1])
            else:
                s = like[img.ndim] = _header(img, **settings)
            prepared.append((np.ascontiguousarray(img), s))  # after the size checks
        except (TypeError, ValueError) as e:
            raise _item_error(i, e) from e
    out = []
    for a, b in _chunks([s.height * s.width for _, s in prepared]):
        part = prepared[a:b]
        s0 = part[0][1]  # the settings are the same for every image
        lists = _core.encode_many(
            [img for img, _ in part],
            s0.block_size,
            s0.quality,
            s0.subsampling == "4:2:0",
            s0.clip or 0,
            [s._seq for _, s in part],
            min(t, b - a),
            a,
        )
        out += [SparseDCT._trusted(c, p, v, s) for (c, p, v), (_, s) in zip(lists, part, strict=True)]
    return out


def decode_batch(items: Sequence[SparseDCT], *, threads: int | None = None) -> list[np.ndarray]:
    """``[decode(s) for s in items]``, in parallel like :func:`encode_batch`."""
    items = list(items)
    for i, s in enumerate(items):
        if not isinstance(s, SparseDCT):
            raise TypeError(f"image {i}: decode expects a SparseDCT, got {type(s).__name__}")
    t = _threads(threads, len(items))
    out = []
    for a, b in _chunks([s.height * s.width for s in items]):
        out += _core.decode_many([_decode_args(s) for s in items[a:b]], min(t, b - a), a)
    return out
