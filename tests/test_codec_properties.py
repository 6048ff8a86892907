"""Property-based tests over random images and settings (SPEC sections 2-7)."""

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

import dctsparse
from dctsparse import reference as R
from helpers import images, tie_distance


@st.composite
def settings_for(draw, img):
    b = draw(st.integers(2, 32))
    q = draw(st.integers(1, 100))
    sub = draw(st.sampled_from(["4:2:0", "4:4:4"]))
    planes = 1 if img.ndim == 2 else 3
    kind = draw(st.sampled_from(["frequency", "luma_first", "permutation"]))
    if kind == "permutation":
        perm = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).permutation(planes * b * b)
        order = perm.tolist()
    else:
        order = kind
    clip = draw(st.one_of(st.none(), st.integers(1, 50)))
    return dict(block_size=b, quality=q, subsampling=sub, order=order, clip=clip)


cases = st.data()


def draw_case(data):
    img = data.draw(images())
    return img, data.draw(settings_for(img))


@given(cases)
def test_deterministic_and_round_trips(data):
    img, kw = draw_case(data)
    s = dctsparse.encode(img, **kw)
    assert s == dctsparse.encode(img.copy(), **kw)
    # tokens and the DCT image carry the whole list
    t = s.tokens()
    assert t.shape == (len(s) + 1, 3) and t.dtype == np.int32
    assert t[-1].tolist() == [s.num_channels, 0, 0]
    assert dctsparse.SparseDCT.from_tokens(t, **s.header()) == s
    assert dctsparse.SparseDCT.from_dct_image(s.dct_image(), **s.header()) == s
    # rows after the stop token are ignored
    junk = np.vstack([t, [[1, 2, 3]]])
    assert dctsparse.SparseDCT.from_tokens(junk, **s.header()) == s


@given(cases)
def test_list_structure(data):
    img, kw = draw_case(data)
    s = dctsparse.encode(img, **kw)
    d = s.dct_image()
    hb, wb = s.grid
    assert d.shape == (hb, wb, s.num_channels)
    assert np.count_nonzero(d) == len(s)
    assert np.all(s.value != 0)
    # channels follow the order's sequence; positions ascend within a channel
    rank = np.empty(s.num_channels, int)
    rank[s.channel_sequence] = np.arange(s.num_channels)
    r = rank[s.channel]
    assert np.all(np.diff(r) >= 0)
    same = np.diff(r) == 0
    assert np.all(np.diff(s.position)[same] > 0)
    # every triple is the DCT image's entry
    np.testing.assert_array_equal(d.reshape(hb * wb, -1)[s.position, s.channel], s.value)
    # 4:2:0: odd rows/columns of the chroma channels are zero
    if s.subsampling == "4:2:0" and s.planes == 3:
        bb = s.block_size**2
        chroma = d[..., bb:]
        assert not chroma[1::2].any() and not chroma[:, 1::2].any()
    if s.clip is not None:
        assert np.abs(s.value).max(initial=0) <= s.clip


@given(cases)
def test_dct_image_matches_reference(data):
    img, kw = draw_case(data)
    s = dctsparse.encode(img, **kw)
    want = R.encode_dct_image(img, kw["block_size"], kw["quality"], kw["subsampling"], kw["clip"])
    bad = s.dct_image() != want
    # float32 may differ by 1, only where D/Q sits on a tie (SPEC section 4)
    assert np.all(np.abs(s.dct_image() - want)[bad] == 1)
    ties = tie_distance(img, kw["block_size"], kw["quality"], kw["subsampling"])
    assert np.all(ties[bad] < 1e-3)


@given(cases, st.floats(0, 1))
def test_prefix_decodes_to_zeroed_dct_image(data, frac):
    img, kw = draw_case(data)
    s = dctsparse.encode(img, **kw)
    n = int(round(frac * len(s)))
    prefix = s[:n]
    assert len(prefix) == n and prefix.header() == s.header()
    zeroed = s.dct_image()
    hb, wb = s.grid
    flat = zeroed.reshape(hb * wb, -1)
    flat[s.position[n:], s.channel[n:]] = 0
    np.testing.assert_array_equal(prefix.dct_image(), zeroed)
    got = dctsparse.decode(prefix)
    assert got.shape == img.shape and got.dtype == np.uint8
    want = R.decode_dct_image(zeroed, s.height, s.width, s.block_size, s.quality, s.subsampling)
    assert np.abs(got.astype(int) - want).max() <= 1
    np.testing.assert_array_equal(got, dctsparse.decode(dctsparse.SparseDCT.from_dct_image(zeroed, **s.header())))


def error_bound(img, b, q, sub):
    """Upper bound on the RMS error of decode(encode(img)), in 8-bit units.

    Quantisation moves each coefficient by at most Q/2 and the DCT is
    orthonormal, so the squared error of a padded plane is at most
    mean(Q^2)/4 per sample; YCbCr -> RGB scales it by at most the spectral
    norm of the inverse colour matrix; cropping the padding can only
    concentrate it by Hp*Wp/(H*W); clipping to [0, 255] only helps; the final
    rounding adds at most 0.5; 0.01 covers float32.
    """
    h, w = img.shape[:2]
    hp, wp = R.padded_size(h, w, b, sub)
    ql = np.mean(R.quant_matrix(q, b, "luma").astype(float) ** 2) / 4
    if img.ndim == 2:
        per_px = ql
    else:
        qc = np.mean(R.quant_matrix(q, b, "chroma").astype(float) ** 2) / 4
        m = np.array([[1, 0, 1.402], [1, -0.344136, -0.714136], [1, 1.772, 0]])
        per_px = np.linalg.norm(m, 2) ** 2 * (ql + 2 * qc) / 3
    return np.sqrt(per_px * hp * wp / (h * w)) + 0.51


@given(cases)
def test_reconstruction_error_bounded_by_quality(data):
    img, kw = draw_case(data)
    kw["subsampling"] = "4:4:4"  # 4:2:0 loses chroma detail q cannot bound
    kw["clip"] = None  # clipping values loses what q cannot bound
    out = dctsparse.decode(dctsparse.encode(img, **kw))
    rmse = np.sqrt(np.mean((out.astype(float) - img) ** 2))
    assert rmse <= error_bound(img, kw["block_size"], kw["quality"], "4:4:4")


@given(cases)
def test_grey_420_error_bounded_by_quality(data):
    img, kw = draw_case(data)
    assume(img.ndim == 2)
    kw.update(subsampling="4:2:0", clip=None)
    out = dctsparse.decode(dctsparse.encode(img, **kw))
    rmse = np.sqrt(np.mean((out.astype(float) - img) ** 2))
    assert rmse <= error_bound(img, kw["block_size"], kw["quality"], "4:2:0")


@given(images(), st.integers(2, 32))
def test_quality_100_444_is_nearly_lossless(img, b):
    out = dctsparse.decode(dctsparse.encode(img, block_size=b, quality=100, subsampling="4:4:4"))
    err = np.abs(out.astype(int) - img)
    # Q = 1: coefficient error <= 1/2, so the RMS error is error_bound's at
    # its smallest. (The mean error this test also asserted, < 1, is typical,
    # not guaranteed: Hypothesis found a 2x2 image at B = 22 whose float64
    # reference round trip errs by 1.08 on average, as the core does.)
    assert np.sqrt(np.mean(err.astype(float) ** 2)) <= error_bound(img, b, 100, "4:4:4")


@given(images(), st.integers(2, 16))
def test_orders_hold_the_same_coefficients(img, b):
    a = dctsparse.encode(img, block_size=b, order="frequency")
    c = dctsparse.encode(img, block_size=b, order="luma_first")
    np.testing.assert_array_equal(a.dct_image(), c.dct_image())
    np.testing.assert_array_equal(dctsparse.decode(a), dctsparse.decode(c))
