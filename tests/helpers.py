"""Helpers the tests share: natural images, the reference's planes and tie
distances, JPEG's zigzag, random images for hypothesis, a SIMD-level switch,
and the ways an orbax checkpoint is found damaged.

Tests import them with ``from helpers import ...`` (pytest puts ``tests/`` on
``sys.path``, as for ``conftest``); fixtures stay in ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import shutil

import numpy as np
from hypothesis import strategies as st

from dctsparse import reference as R

NATURAL_RGB = ["astronaut", "chelsea", "coffee", "rocket"]
NATURAL_GREY = ["camera", "moon"]


def natural_image(name: str) -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(getattr(skimage.data, name)())


def ref_planes(img, b, sub):
    """The reference's float64 planes of ``img`` before the DCT: [Y] for greyscale,
    [Y, Cb, Cr] for RGB, each ``(Hp, Wp)`` (chroma ``(Hp/2, Wp/2)`` under 4:2:0)."""
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
        out[::step, ::step, i * b * b : (i + 1) * b * b] = np.abs(np.abs(r) % 1 - 0.5)
    return out


# ITU T.81 figure A.6: the JPEG zigzag sequence, as row-major indices.
JPEG_ZIGZAG = [
    0,
    1,
    8,
    16,
    9,
    2,
    3,
    10,
    17,
    24,
    32,
    25,
    18,
    11,
    4,
    5,
    12,
    19,
    26,
    33,
    40,
    48,
    41,
    34,
    27,
    20,
    13,
    6,
    7,
    14,
    21,
    28,
    35,
    42,
    49,
    56,
    57,
    50,
    43,
    36,
    29,
    22,
    15,
    23,
    30,
    37,
    44,
    51,
    58,
    59,
    52,
    45,
    38,
    31,
    39,
    46,
    53,
    60,
    61,
    54,
    47,
    55,
    62,
    63,
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
    f = sum(rng.normal() * np.cos(rng.uniform(0, 3) * y + rng.uniform(0, 3) * x + rng.uniform(0, 6)) for _ in range(4))
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


# Damaged orbax checkpoints, as found after crashes and full disks.  Each takes one step folder
# (checkpoints/N) and asserts it found what it damages, so a change of orbax's layout fails instead
# of testing nothing.


def _array_files(step_dir):
    found = sorted(glob.glob(os.path.join(step_dir, "default", "ocdbt.process_*", "d", "*")))
    assert found, f"no array files in {step_dir}"
    return found


def damage_arrays_deleted(step_dir):
    for p in _array_files(step_dir):
        os.remove(p)


def damage_arrays_truncated(step_dir):
    for p in _array_files(step_dir):
        os.truncate(p, os.path.getsize(p) // 2)


def damage_default_deleted(step_dir):
    shutil.rmtree(os.path.join(step_dir, "default"))


def damage_metadata_garbled(step_dir):
    with open(os.path.join(step_dir, "default", "_METADATA"), "r+b") as f:
        f.seek(100)
        f.write(b"\x00\xff garbled {{{")


def damage_manifest_deleted(step_dir):
    os.remove(os.path.join(step_dir, "default", "manifest.ocdbt"))


def damage_emptied(step_dir):
    shutil.rmtree(step_dir)
    os.mkdir(step_dir)


# name -> (damage, what the one-line report of the damaged step says about it)
CHECKPOINT_DAMAGE = {
    "array files deleted": (damage_arrays_deleted, "Error reading"),
    "array files truncated": (damage_arrays_truncated, "Error reading"),
    "default/ deleted": (damage_default_deleted, "default/ is missing"),
    "_METADATA garbled": (damage_metadata_garbled, "default/_METADATA is not readable JSON"),
    "OCDBT manifest deleted": (damage_manifest_deleted, "default/manifest.ocdbt (the OCDBT index) is missing"),
    "empty step folder": (damage_emptied, "the folder is empty"),
}


def snapshot(folder):
    """``{relative path: sha256}`` of every file (and empty folder) under ``folder``."""
    out = {}
    for root, dirs, files in os.walk(folder):
        rel = os.path.relpath(root, folder)
        if not dirs and not files:
            out[rel + "/"] = ""
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                out[os.path.join(rel, name)] = hashlib.sha256(f.read()).hexdigest()
    return out
