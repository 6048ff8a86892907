"""Shared fixtures: natural images that ship with scikit-image (no download)."""

from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest

from dctsparse import reference as R
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

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




# ITU T.81 figure A.6: the JPEG zigzag sequence, as row-major indices.
JPEG_ZIGZAG = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
]


# Random images for the property tests: noise, flat, or a smooth random field.
@st.composite
def images(draw, max_side=70, scale=16.0):
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    grey = draw(st.booleans())
    shape = (h, w) if grey else (h, w, 3)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["noise", "smooth", "flat"]))
    if kind == "noise":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if kind == "flat":
        return np.full(shape, draw(st.integers(0, 255)), dtype=np.uint8)
    # smooth: a random low-frequency field, like natural image content
    y, x = np.mgrid[0:h, 0:w] / scale
    f = sum(rng.normal() * np.cos(rng.uniform(0, 3) * y + rng.uniform(0, 3) * x + rng.uniform(0, 6))
            for _ in range(4))
    f = (f - f.min()) / (np.ptp(f) + 1e-9) * 255
    if not grey:
        f = np.stack([f, np.roll(f, 3, 0), 255 - f], -1)
    return f.astype(np.uint8)


@contextlib.contextmanager
def simd_level(level: str):
    """Runs the block at one SIMD level of the core, then restores the one before."""
    from dctsparse import _core
    before = _core.simd_level()
    _core.set_simd_level(level)
    try:
        yield
    finally:
        _core.set_simd_level(before)


# The trained `micro` model of the model tests (training: overfitting, bpd; sampling: samples, CLI),
# trained once per test run.
@pytest.fixture(scope="session")
def micro_run(tmp_path_factory):
    """A ``micro`` model trained 250 steps on 4 scenes (seed 11): ``(cfg, source, final state,
    log records, workdir)``; the workdir holds its config.json, log.jsonl and the step-250 checkpoint."""
    pytest.importorskip("jax")
    from dctmodel.config import get_config, override
    from dctmodel.data import ArraySource
    from dctmodel.scenes import render_scene
    from dctmodel.train import train

    steps = 250
    cfg = override(get_config("micro"), **{
        "train.chunk_policy": "uniform", "train.total_tokens": 8 * 32 * steps, "train.learning_rate": 3e-3,
        "train.warmup_steps": 20, "train.log_every": 10, "train.checkpoint_every": 0,
    })
    src = ArraySource(cfg.data, [render_scene(11, i, 16, max_objects=2) for i in range(4)])
    wd = str(tmp_path_factory.mktemp("micro"))
    state, records = train(cfg, wd, source=src, eval_source=src, progress=False, do_eval=False)
    return cfg, src, state, records, wd
