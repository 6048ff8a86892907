"""Shared fixtures: natural images that ship with scikit-image (no download)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from dctsparse import reference as R
from hypothesis import HealthCheck, settings

# "ci" keeps the property tests to a few minutes on 2 cores; "asan" is for the
# sanitizer pass, where every call is ~10x slower; "dev" digs deeper.
settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("asan", max_examples=15, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

NATURAL_RGB = ["astronaut", "chelsea", "coffee", "rocket"]
NATURAL_GREY = ["camera", "moon"]


def natural_image(name: str) -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(getattr(skimage.data, name)())


@pytest.fixture(params=NATURAL_RGB)
def rgb_image(request) -> np.ndarray:
    return natural_image(request.param)


@pytest.fixture(params=NATURAL_GREY)
def grey_image(request) -> np.ndarray:
    return natural_image(request.param)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def ref_planes(img, b, sub):
    h, w = img.shape[:2]
    hp, wp = R.padded_size(h, w, b, sub)
    if img.ndim == 2:
        return [R.pad_edge(img.astype(np.float64), hp, wp)]
    ycc = R.pad_edge(R.rgb_to_ycbcr(img), hp, wp)
    planes = [ycc[..., i] for i in range(3)]
    if sub == "4:2:0":
        planes = [planes[0]] + [R.downsample_420(p) for p in planes[1:]]
    return planes


def tie_distance(img, b, q, sub):
    """|frac(|D/Q|) - 0.5| of every entry of the reference's DCT image, before rounding."""
    planes = ref_planes(img, b, sub)
    hb, wb = planes[0].shape[0] // b, planes[0].shape[1] // b
    out = np.full((hb, wb, len(planes) * b * b), 0.5)
    for i, p in enumerate(planes):
        qm = R.quant_matrix(q, b, "luma" if i == 0 else "chroma")
        r = R.plane_dct_image(R.block_dct(p - 128.0, b) / qm)
        step = 2 if (i > 0 and sub == "4:2:0") else 1
        out[::step, ::step, i * b * b:(i + 1) * b * b] = np.abs(np.abs(r) % 1 - 0.5)
    return out


