"""Each stage of the C++ core against dctsparse.reference, on natural images."""

import numpy as np
import pytest

import dctsparse
from dctsparse import _core
from dctsparse import reference as R
from helpers import natural_image, ref_planes, simd_level, tie_distance


@pytest.mark.parametrize("sub", ["4:2:0", "4:4:4"])
@pytest.mark.parametrize("b", [8, 13])
def test_color_and_subsampling(rgb_image, sub, b):
    img = rgb_image[:301, :299]  # odd sizes exercise the edge padding
    got = _core.image_to_planes(img, b, sub == "4:2:0")  # centred: value - 128
    want = [p - 128.0 for p in ref_planes(img, b, sub)]
    assert [g.shape for g in got] == [w.shape for w in want]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=2e-4)


@pytest.mark.parametrize("w", [1, 2, 3, 17, 34, 47])
def test_color_and_subsampling_narrow(rgb_image, w):
    img = rgb_image[:5, :w]  # edge replication in the row tails of the vector kernels
    for sub in ("4:2:0", "4:4:4"):
        got = _core.image_to_planes(img, 2, sub == "4:2:0")
        want = [p - 128.0 for p in ref_planes(img, 2, sub)]
        assert [g.shape for g in got] == [w_.shape for w_ in want]
        for g, w_ in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w_, atol=2e-4)


def test_grey_planes(grey_image):
    got = _core.image_to_planes(grey_image[:100, :77], 8, True)
    np.testing.assert_array_equal(got[0], ref_planes(grey_image[:100, :77], 8, "4:2:0")[0] - 128)


@pytest.mark.parametrize("b", [2, 3, 4, 7, 8, 16, 31, 32, 64])
def test_fdct_idct(b):
    img = natural_image("camera").astype(np.float32) - 128
    plane = img[: (512 // b) * b, : (512 // b) * b]
    blocks = R.to_blocks(plane, b).reshape(-1, b, b)
    got = _core.fdct(np.ascontiguousarray(blocks))
    want = R.block_dct(plane.astype(np.float64), b).reshape(-1, b, b)
    np.testing.assert_allclose(got, want, atol=2e-3 * b, rtol=1e-5)
    back = _core.idct(got)
    np.testing.assert_allclose(back, blocks, atol=2e-3 * b)


@pytest.mark.parametrize("b", [2, 5, 8, 16, 32, 64])
@pytest.mark.parametrize("q", [1, 10, 50, 75, 90, 100])
def test_quant_matrix_matches_reference(b, q):
    for comp in ("luma", "chroma"):
        np.testing.assert_array_equal(dctsparse.quant_matrix(q, b, comp), R.quant_matrix(q, b, comp))


def test_quant_matrix_all_qualities_all_blocks():
    for b in range(2, 65):
        for q in range(1, 101, 7):
            np.testing.assert_array_equal(dctsparse.quant_matrix(q, b), R.quant_matrix(q, b))


def test_zigzag_matches_reference():
    for b in range(2, 65):
        np.testing.assert_array_equal(dctsparse.zigzag(b), R.zigzag(b))


@pytest.mark.parametrize("clip", [0, 5])
@pytest.mark.parametrize("b", [4, 8, 16])
def test_quantize(b, clip):
    rng = np.random.default_rng(b)
    coeffs = rng.normal(0, 200, (500, b, b)).astype(np.float32)
    # exact ties must round away from zero
    qm = R.quant_matrix(50, b)
    coeffs[0] = (np.arange(b * b).reshape(b, b) % 7 - 3 + 0.5) * qm
    got = _core.quantize(coeffs, 50, False, clip)  # natural order
    want = R.quantize(coeffs.astype(np.float64), qm, clip or None)
    ratio = coeffs.astype(np.float64) / qm
    bad = got != want
    # float32 may only differ on near-ties (SPEC section 4), by 1
    assert np.all(np.abs(got - want)[bad] == 1)
    assert np.all(np.abs(np.abs(ratio[bad]) % 1 - 0.5) < 1e-4)
    np.testing.assert_array_equal(got[0], want[0])


@pytest.mark.parametrize("b", [3, 8, 16, 32])
def test_dequant_idct(b):
    vals = np.random.default_rng(b).integers(-50, 50, (10, b, b)).astype(np.int32)
    got = _core.dequant_idct(vals, 30, True)
    want = R.block_idct(R.dequantize(vals, R.quant_matrix(30, b, "chroma"))[:, None])
    np.testing.assert_allclose(got, want.reshape(1, 10, b, b).transpose(1, 0, 2, 3)[:, 0], atol=1e-3 * b)


@pytest.mark.parametrize("b,q,sub", [(8, 75, "4:2:0"), (16, 50, "4:4:4"), (32, 90, "4:2:0"), (5, 30, "4:2:0")])
def test_encode_matches_reference(rgb_image, b, q, sub):
    img = rgb_image[:333, :257]
    s = dctsparse.encode(img, block_size=b, quality=q, subsampling=sub)
    got = s.dct_image()
    want = R.encode_dct_image(img, b, q, sub)
    bad = got != want
    assert np.all(np.abs(got - want)[bad] <= 1)
    # SPEC section 4: float32 may differ by 1 only where D/Q sits on a tie
    assert np.all(tie_distance(img, b, q, sub)[bad] < 1e-3)
    assert bad.mean() < 1e-4


def test_encode_grey_matches_reference(grey_image):
    s = dctsparse.encode(grey_image, block_size=8, quality=60)
    want = R.encode_dct_image(grey_image, 8, 60, "4:2:0")
    bad = s.dct_image() != want
    assert np.all(np.abs(s.dct_image() - want)[bad] == 1)
    assert np.all(tie_distance(grey_image, 8, 60, "4:2:0")[bad] < 1e-3)
    assert bad.mean() < 1e-3


@pytest.mark.parametrize("order", ["frequency", "luma_first"])
def test_list_order_matches_reference(order):
    img = natural_image("coffee")
    s = dctsparse.encode(img, block_size=8, quality=75, order=order)
    c, p, v = R.to_list(s.dct_image(), order)
    np.testing.assert_array_equal(s.channel, c)
    np.testing.assert_array_equal(s.position, p)
    np.testing.assert_array_equal(s.value, v)


@pytest.mark.parametrize("b,q,sub", [(8, 75, "4:2:0"), (16, 30, "4:4:4"), (4, 95, "4:2:0")])
def test_decode_matches_reference(rgb_image, b, q, sub):
    img = rgb_image[:250, :301]
    s = dctsparse.encode(img, block_size=b, quality=q, subsampling=sub)
    got = dctsparse.decode(s)
    want = R.decode_dct_image(s.dct_image(), *img.shape[:2], block_size=b, quality=q, subsampling=sub)
    diff = np.abs(got.astype(int) - want)
    assert diff.max() <= 1  # float32 vs float64 rounding on ties only
    assert (diff > 0).mean() < 1e-3


def test_decode_grey_matches_reference(grey_image):
    s = dctsparse.encode(grey_image, block_size=16, quality=40, subsampling="4:4:4")
    want = R.decode_dct_image(s.dct_image(), *grey_image.shape, 16, 40, "4:4:4")
    diff = np.abs(dctsparse.decode(s).astype(int) - want)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_planes_to_image_matches_reference(rgb_image):
    img = rgb_image[:64, :80]
    planes = _core.image_to_planes(img, 8, True)
    got = _core.planes_to_image(planes, 64, 80, 8, True)
    ycc = np.stack([planes[0], R.upsample_420(planes[1]), R.upsample_420(planes[2])], -1) + 128.0
    want = R.ycbcr_to_rgb(ycc.astype(np.float64))
    assert np.abs(got.astype(int) - want).max() <= 1


def _pixel_edges() -> np.ndarray:
    """Float32 pixel values on and next to every rounding tie k + 1/2 of
    [0, 255], the float just below 1/2, and values far outside [0, 255]."""
    ties = np.arange(-2, 258, dtype=np.float32) + np.float32(0.5)
    return np.concatenate(
        [
            ties,
            np.nextafter(ties, np.float32(-np.inf)),
            np.nextafter(ties, np.float32(np.inf)),
            np.arange(-2, 258, dtype=np.float32),
            np.array([1e-30, 0.25, 0.99999994, 1e6, 1e9, 3e9, 1e30, -1e9, -3e9, -1e30, np.inf, -np.inf], np.float32),
        ]
    )


def _channel_values(y, cb, cr):
    """SPEC 7's R, G, B in float32, operation by operation in the core's order."""
    f = np.float32
    with np.errstate(over="ignore", invalid="ignore"):
        lum = y + f(128)
        return [lum + f(1.402) * cr, lum + (f(-0.344136) * cb - f(0.714136) * cr), lum + f(1.772) * cb]


def _rounded(x):
    """Round half away from zero, clamp to [0, 255] (exact, in float64)."""
    x = x.astype(np.float64)
    with np.errstate(invalid="ignore"):
        r = np.where(np.isfinite(x), np.sign(x) * np.floor(np.abs(x) + 0.5), x)
    return np.clip(r, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("level", _core.simd_levels())
def test_pixel_rounding_is_half_away_from_zero_at_the_edges(level):
    """planes -> pixels rounds each float32 channel value half away from zero
    and clamps it to [0, 255] (SPEC 7), at every level, in the vector body and
    the tail (the width is not a multiple of any vector width). For RGB each
    2x2 box gets a luma l (a multiple of 1/2) and a Cb with 1.772 Cb = x - l,
    so that its B channel is the edge value x itself; grey takes the ties
    and their neighbours as luma."""
    x = _pixel_edges()
    h, w = 16, 265  # 265 = 8 * 32 + 9: a tail at every level
    hc, wc = 8, 136  # the chroma grid of 4:2:0, padded to 272 = 2 * 136
    x = np.resize(x, (hc, wc))
    finite = np.abs(x) < 1e5
    lum = np.where(finite, np.round(2 * x) / 2, 0).astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        cb = ((x.astype(np.float64) - lum) / 1.772).astype(np.float32)
    cr = np.resize(np.linspace(-3, 3, 101, dtype=np.float32), (hc, wc))
    up = lambda a: np.repeat(np.repeat(a, 2, 0), 2, 1)  # noqa: E731 (SPEC 7: replication)
    y, cbf, crf = up(lum - np.float32(128)), up(cb), up(cr)
    blue = _channel_values(y, cbf, crf)[2]
    assert np.array_equal(blue[::2, ::2][finite], x[finite])  # the edges are hit exactly
    grey_y = np.resize(x[np.abs(x) < 300] - np.float32(128), (h, 2 * wc))
    with simd_level(level):
        grey = _core.planes_to_image([grey_y], h, w, 8, False)
        rgb444 = _core.planes_to_image([y, cbf, crf], h, w, 8, False)
        rgb420 = _core.planes_to_image([y, cb, cr], h, w, 8, True)
    np.testing.assert_array_equal(grey, _rounded(grey_y + np.float32(128))[:, :w])
    want = np.stack([_rounded(c) for c in _channel_values(y, cbf, crf)], -1)[:, :w]
    np.testing.assert_array_equal(rgb444, want)
    np.testing.assert_array_equal(rgb420, want)


@pytest.mark.parametrize("level", _core.simd_levels())
@pytest.mark.parametrize("b", [8, 16, 32])
def test_decode_of_every_single_coefficient_matches_reference(level, b):
    """One block per coefficient position (u, v), holding that coefficient
    alone (and one more row of DC-only blocks): the decoder transforms each
    block over the box or bounding box of its non-zeros (B=8 files blocks by
    box, B=16/32 cut the transform to the bounding box), so a wrong box would
    drop a coefficient - an error the size of its basis image, not 1."""
    n = b * b
    hb, wb = n // b + 1, b  # block (u, v) at grid (u, v); last row DC only
    zz = R.zigzag(b)  # zz[k] = natural index of zigzag k
    channel_of = np.argsort(zz)  # natural index -> zigzag channel
    dct = np.zeros((hb, wb, n), np.int32)
    for k in range(n):
        dct[k // b, k % b, channel_of[k]] = 5 if k % 3 else -4
    dct[-1, :, 0] = np.arange(wb) - wb // 2
    h, w = hb * b, wb * b
    s = dctsparse.SparseDCT.from_dct_image(
        dct, height=h, width=w, block_size=b, quality=90, subsampling="4:4:4", mode="L"
    )
    with simd_level(level):
        got = dctsparse.decode(s).astype(int)
    want = R.decode_dct_image(dct, h, w, block_size=b, quality=90, subsampling="4:4:4")
    diff = np.abs(got - want)
    assert diff.max() <= 1, f"max error {diff.max()} in block {np.unravel_index(diff.argmax(), diff.shape)}"
    assert (diff > 0).mean() < 1e-3


@pytest.mark.parametrize("sub", ["4:2:0", "4:4:4"])
def test_list_positions_of_a_very_wide_sparse_image(sub):
    """records_to_list sorts windows of blocks with 16-bit position offsets and
    ends a window early where its blocks span 2^16 positions or more. On a
    70000-block-wide grey image (no non-zeros) with a few textured tiles, one
    window would span the whole row; the list must still equal the tiles'
    own lists, each encoded alone and shifted to its place (blocks are
    encoded independently, so the two agree bit for bit)."""
    wb, tile = 70_000, 16
    img = np.full((tile, wb * 8, 3), 128, np.uint8)
    rng = np.random.default_rng(3)
    cols = [0, 1, 4_000, 32_767, 32_768, 34_999]  # tile columns (two blocks each)
    want = []
    for t in cols:
        patch = rng.integers(0, 256, (tile, tile, 3), dtype=np.uint8)
        img[:, t * tile : (t + 1) * tile] = patch
        s = dctsparse.encode(patch, block_size=8, quality=90, subsampling=sub)
        row, col = np.divmod(s.position, 2)
        want.append(np.stack([s.channel, row * wb + 2 * t + col, s.value], axis=1))
    want = np.concatenate(want)
    s = dctsparse.encode(img, block_size=8, quality=90, subsampling=sub)
    rank = np.empty(3 * 64, np.int64)
    rank[[p * 64 + k for k in range(64) for p in range(3)]] = np.arange(3 * 64)  # frequency order
    want = want[np.lexsort((want[:, 1], rank[want[:, 0]]))]
    got = np.stack([s.channel, s.position, s.value], axis=1)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("level", _core.simd_levels())
def test_b8_decode_of_block_rows_longer_than_one_chunk(level):
    """The B=8 inverse DCT files a block row's blocks by box 256 at a time
    (dequant_idct_row8). A 4160-px-wide image (520 luma and 260 chroma blocks
    a row: chunks of 256, 256, 8 and 256, 4) must decode exactly as its four
    1040-px column tiles do, each within one chunk: with 2x2 replicated
    chroma every 16-px tile decodes on its own."""
    base = natural_image("astronaut")[100:132]
    img = np.tile(base, (1, 9, 1))[:, :4160].copy()
    img[:, 2000:2600] = np.random.default_rng(1).integers(0, 256, (32, 600, 3), dtype=np.uint8)
    s = dctsparse.encode(img, block_size=8, quality=75)
    dct = s.dct_image()
    tiles = [
        dctsparse.SparseDCT.from_dct_image(dct[:, 130 * t : 130 * (t + 1)], height=32, width=1040, quality=75)
        for t in range(4)
    ]
    with simd_level(level):
        got = dctsparse.decode(s)
        want = np.concatenate([dctsparse.decode(t) for t in tiles], axis=1)
    np.testing.assert_array_equal(got, want)
