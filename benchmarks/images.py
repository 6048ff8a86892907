"""Benchmark images: natural ones that ship with scikit-image, and a
~2048x2048 one tiled from them (no download)."""

from __future__ import annotations

import numpy as np

from dctsparse.viz import image_grid

NATURAL = ("astronaut", "chelsea", "coffee", "rocket")


def natural(name: str) -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(getattr(skimage.data, name)())


def tiled(size: int = 2048) -> np.ndarray:
    """(size, size, 3) uint8: 512x512 crops of the natural images, tiled."""
    crops = []
    for name in NATURAL:
        im = natural(name)
        h, w = im.shape[:2]
        t = min(h, w, 512)
        crops.append(im[(h - t) // 2 : (h - t) // 2 + t, (w - t) // 2 : (w - t) // 2 + t])
    t = min(c.shape[0] for c in crops)
    n = -(-size // t)
    # crop (i + j) % 4 at row i, column j: no two neighbours, across or down, are the same crop
    tiles = [crops[(i + j) % len(crops)][:t, :t] for i in range(n) for j in range(n)]
    return np.ascontiguousarray(image_grid(tiles, cols=n, pad=0)[:size, :size])
