"""The images an HR-VQVAE run trains and evaluates on: float32 (n, size, size, 3) in [0, 1].

``scenes``: the generated scenes of ``dctmodel.scenes`` (no download);
``patches``: random crops of scikit-image's bundled RGB photos.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .config import DataConfig

PATCH_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
PATCH_MAX = 300  # chelsea is 300 px tall: no larger crop fits every photo


def scene_images(n: int, size: int, seed: int) -> np.ndarray:
    """float32 (n, size, size, 3) in [0, 1]: scenes ``seed`` 0..n-1."""
    from ..scenes import render_scene

    return np.stack([render_scene(seed, i, size) for i in range(n)]).astype(np.float32) / 255.0


def patch_images(n: int, size: int, seed: int) -> np.ndarray:
    """float32 (n, size, size, 3): random crops of skimage's bundled RGB images."""
    import skimage.data

    srcs = [getattr(skimage.data, k)() for k in PATCH_PHOTOS]
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.float32)
    for i in range(n):
        img = srcs[rng.integers(len(srcs))]
        y = rng.integers(0, img.shape[0] - size + 1)
        x = rng.integers(0, img.shape[1] - size + 1)
        out[i] = img[y : y + size, x : x + size, :3] / 255.0
    return out


def load_images(data: DataConfig, split: str) -> np.ndarray:
    """``split`` "train" (``num_train`` images) or "eval" (``num_eval``).  The two
    are disjoint: different scene seeds / crop seeds."""
    if split not in ("train", "eval"):
        raise ValueError(f"split must be 'train' or 'eval', not {split!r}")
    n = data.num_train if split == "train" else data.num_eval
    seed = data.seed * 2 + (0 if split == "train" else 1) + 1000
    fn = scene_images if data.source == "scenes" else patch_images
    return fn(n, data.image_size, seed)
