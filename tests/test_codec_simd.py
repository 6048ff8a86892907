"""Every SIMD level this machine has gives output bit-identical to the scalar path."""

import os
import subprocess
import sys

import numpy as np
import pytest

import dctsparse
from dctsparse import _core
from helpers import natural_image

LEVELS = _core.simd_levels()


@pytest.fixture
def restore_level():
    before = _core.simd_level()
    yield
    _core.set_simd_level(before)


def decode_in_tiles(s):
    """s decoded in column tiles of 2 blocks, the path of very wide images."""
    _core.set_decode_tile_blocks(2)
    try:
        return dctsparse.decode(s)
    finally:
        _core.set_decode_tile_blocks(0)


def run_all(level):
    _core.set_simd_level(level)
    out = []
    rng = np.random.default_rng(0)
    # flat 8x8 blocks of random levels: D = k Q / 2 ties, the quantisers' lane-by-lane division
    flat = np.kron(rng.integers(0, 256, (9, 13, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    imgs = [
        natural_image("astronaut")[:203, :317],
        natural_image("camera")[:77, :130],
        rng.integers(0, 256, (37, 61, 3), dtype=np.uint8),
        flat,
    ]
    for img in imgs:
        for b in (2, 3, 4, 8, 11, 16, 32, 64):
            for sub in ("4:2:0", "4:4:4"):
                s = dctsparse.encode(img, block_size=b, quality=83, subsampling=sub, clip=None if b != 8 else 40)
                out += [s.channel, s.position, s.value, dctsparse.decode(s), dctsparse.decode(s[: len(s) // 3])]
                out.append(decode_in_tiles(s))
            if b == 8:  # B = 8 unclipped too (the encoder's kernel is templated on clipping)
                s = dctsparse.encode(img, block_size=8, quality=83)
                out += [s.channel, s.position, s.value]
    for b in (4, 8, 16, 32):  # the stages alone (fixed-size paths at these B)
        blocks = rng.normal(0, 50, (64, b, b)).astype(np.float32)
        out += [_core.fdct(blocks), _core.idct(blocks), _core.quantize(blocks, 40, True, 0)]
    out += [_core.image_to_planes(imgs[0], 8, True)[1]]
    return out


def assert_level_matches_scalar(level, outputs):
    """outputs(level) -> arrays; they must equal the scalar path's byte for byte."""
    if level not in LEVELS:
        pytest.skip("this machine has no SIMD level beyond scalar")
    want, got = outputs("scalar"), outputs(level)
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()


def test_scalar_is_always_available():
    assert LEVELS[0] == "scalar"
    info = dctsparse.simd_info()
    assert info["level"] in LEVELS


@pytest.mark.parametrize("level", LEVELS)
def test_stages_name_the_code_that_runs(level, restore_level):
    """simd_info()['stages'] names, per stage, the level whose code runs it:
    the level itself, except where the avx512 level runs AVX2 code (its
    colour bodies, its quantiser at B != 8, its transforms above B = 16) and
    the test levels avx2-w4/-w16, which differ from avx2 in their transforms."""
    _core.set_simd_level(level)
    stages = dctsparse.simd_info()["stages"]
    assert (
        tuple(stages)
        == dctsparse.simd.STAGES
        == ("color", "downsample", "dct", "quantize", "sparsify", "dequantize+idct", "upsample+color")
    )
    for stage, kernel in stages.items():
        first = kernel.split()[0].rstrip(";")
        if level.startswith("avx2-w"):  # test levels: the avx2 code, transforms chunked otherwise
            assert kernel == (level if stage in ("dct", "dequantize+idct") else "avx2"), (stage, kernel)
        elif level != "avx512":
            assert kernel == level, (stage, kernel)
        elif stage in ("color", "downsample", "upsample+color"):
            assert kernel == "avx2"
        else:
            assert first == "avx512" and "avx2" in kernel, (stage, kernel)


@pytest.mark.parametrize("level", LEVELS[1:] or ["(only scalar here)"])
def test_levels_bit_identical_to_scalar(level, restore_level):
    assert_level_matches_scalar(level, run_all)


def colour_stages(level):
    """The colour kernels alone on narrow and odd sizes: every vector-width
    remainder, width 1, and random planes that hit the clamping and ties."""
    _core.set_simd_level(level)
    rng = np.random.default_rng(7)
    out = []
    for w in list(range(1, 41)) + [63, 64, 65, 97]:
        for h in (1, 2, 3):
            img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            for b in (2, 3):
                for sub in (True, False):
                    planes = _core.image_to_planes(img, b, sub)
                    noisy = [rng.normal(0, 160, p.shape).astype(np.float32) for p in planes]
                    noisy[0].flat[:2] = [-127.5, 127.5]  # ties at both ends of the clamp
                    grey = _core.image_to_planes(img[..., 1].copy(), b, sub)
                    out += (
                        planes
                        + grey
                        + [_core.planes_to_image(p, h, w, b, sub) for p in (planes, noisy, grey, noisy[:1])]
                    )
    return out


@pytest.mark.parametrize("level", LEVELS[1:] or ["(only scalar here)"])
def test_colour_stages_bit_identical_on_narrow_images(level, restore_level):
    assert_level_matches_scalar(level, colour_stages)


def quantiser_ties(level):
    """Encodes images whose coefficients fall on or next to the quantiser's
    rounding ties: flat blocks of every grey level (DC = B (v - 128), so
    D / Q is a half-integer for odd v when Q = 2B), their neighbours one
    level apart in a block's corner, and high quality (Q = 1, every D / Q an
    exact quotient)."""
    _core.set_simd_level(level)
    levels = np.arange(256, dtype=np.uint8)
    out = []
    for b in (4, 8, 16):
        flat = np.repeat(np.repeat(levels.reshape(16, 16), b, 0), b, 1)
        corner = flat.copy()
        corner[::b, ::b] += 1  # one pixel per block one level up: D shifts by tiny amounts
        for img in (flat, corner):
            for q in (1, 25, 50, 75, 100):
                for sub in ("4:2:0", "4:4:4"):
                    s = dctsparse.encode(
                        np.dstack([img, img[::-1], img[:, ::-1]]), block_size=b, quality=q, subsampling=sub
                    )
                    out += [s.channel, s.position, s.value]
    return out


@pytest.mark.parametrize("level", LEVELS[1:] or ["(only scalar here)"])
def test_quantiser_ties_bit_identical(level, restore_level):
    assert_level_matches_scalar(level, quantiser_ties)


def test_unknown_level_is_refused(restore_level):
    with pytest.raises(ValueError, match="not available"):
        dctsparse.set_simd_level("sse9")


def test_env_var_forces_level():
    for level in LEVELS:
        r = subprocess.run(
            [sys.executable, "-c", "import dctsparse; print(dctsparse.simd_info()['level'])"],
            env={**os.environ, "DCTSPARSE_SIMD": level},
            capture_output=True,
            text=True,
        )
        assert r.stdout.strip() == level, r.stderr
    r = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import dctsparse"],
        env={**os.environ, "DCTSPARSE_SIMD": "bogus"},
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and "DCTSPARSE_SIMD" in r.stderr


def test_stage_profiles_name_every_stage():
    img = natural_image("coffee")
    s = dctsparse.encode(img)
    enc = dict(_core.profile_encode(img, 8, 75, True, 0, s.channel_sequence))
    dec = dict(_core.profile_decode(s.channel, s.position, s.value, s.height, s.width, 3, 8, 75, True, 0))
    assert len(enc) == 3 and len(dec) == 3
    assert all(t > 0 for t in list(enc.values()) + list(dec.values()))
