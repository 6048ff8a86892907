"""Bad input gets a clear ValueError/TypeError naming the problem, never a crash."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

import dctsparse
from dctsparse import SparseDCT

IMG = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "image,exc,match",
    [
        (IMG.astype(np.float32), TypeError, "dtype uint8"),
        (IMG.astype(np.int32), TypeError, "dtype uint8"),
        (np.zeros((4, 4, 4), np.uint8), ValueError, "drop_alpha"),
        (np.zeros((4, 4, 2), np.uint8), ValueError, "1 or 3 channels"),
        (np.zeros((4,), np.uint8), ValueError, "shape"),
        (np.zeros((2, 4, 4, 3), np.uint8), ValueError, "shape"),
        (np.zeros((0, 5, 3), np.uint8), ValueError, "empty"),
        (np.zeros((5, 0), np.uint8), ValueError, "empty"),
        ([[1, 2], [3, 4]], TypeError, "numpy array"),
        (np.full((4, 4), np.nan), TypeError, "dtype uint8"),
    ],
)
def test_bad_images(image, exc, match):
    with pytest.raises(exc, match=match):
        dctsparse.encode(image)


def test_views_are_accepted_and_alpha_can_be_dropped():
    # a non-contiguous view of the right rank is fine: the codec copies it
    s = dctsparse.encode(IMG[::2, ::3])
    assert (s.height, s.width) == (10, 10)
    rgba = np.dstack([IMG, np.full(IMG.shape[:2], 255, np.uint8)])
    assert dctsparse.encode(rgba, drop_alpha=True) == dctsparse.encode(IMG)
    assert dctsparse.encode(IMG[..., :1]) == dctsparse.encode(np.ascontiguousarray(IMG[..., 0]))


def test_premultiplied_alpha_is_alpha():
    """Issue 19: RGBa lost its alpha silently, La failed with Pillow's error even
    with drop_alpha. Both are refused without drop_alpha, like RGBA/LA, and with
    it encode as their straight-alpha images do."""
    rgba = Image.fromarray(np.dstack([IMG, (IMG[..., 0] | 1)]), "RGBA")
    for straight in (rgba, rgba.convert("LA")):
        pre = straight.convert(straight.mode[:-1] + "a")
        assert pre.mode in ("RGBa", "La")
        with pytest.raises(ValueError, match=f"image mode {pre.mode} has an alpha channel: pass drop_alpha=True"):
            dctsparse.encode(pre)
        got = dctsparse.encode(pre, drop_alpha=True)
        assert got.mode == straight.mode[:-1]
        assert got == dctsparse.encode(pre.convert(straight.mode), drop_alpha=True)


def test_pil_images():
    assert dctsparse.encode(Image.fromarray(IMG)) == dctsparse.encode(IMG)
    assert dctsparse.encode(Image.fromarray(IMG[..., 0])).mode == "L"
    pal = Image.fromarray(IMG).convert("P")
    assert dctsparse.encode(pal).mode == "RGB"
    with pytest.raises(ValueError, match="alpha"):
        dctsparse.encode(Image.fromarray(IMG).convert("RGBA"))
    assert dctsparse.encode(Image.fromarray(IMG).convert("RGBA"), drop_alpha=True).mode == "RGB"


@pytest.mark.parametrize(
    "kw,exc,match",
    [
        (dict(block_size=1), ValueError, "block_size"),
        (dict(block_size=65), ValueError, "block_size"),
        (dict(block_size=8.0), TypeError, "block_size"),
        (dict(block_size=True), TypeError, "block_size"),
        (dict(quality=0), ValueError, "quality"),
        (dict(quality=101), ValueError, "quality"),
        (dict(quality="75"), TypeError, "quality"),
        (dict(subsampling="4:2:2"), ValueError, "subsampling"),
        (dict(order="zigzag"), ValueError, "unknown order"),
        (dict(order=[0, 1, 2]), ValueError, "all 192 channels"),
        (dict(order=list(range(191)) + [0]), ValueError, "permutation"),
        (dict(order=list(range(1, 193))), ValueError, "channel ids"),
        (dict(order=np.arange(192.0)), TypeError, "order"),
        (dict(clip=0), ValueError, "clip"),
        (dict(clip=-3), ValueError, "clip"),
    ],
)
def test_bad_settings(kw, exc, match):
    with pytest.raises(exc, match=match):
        dctsparse.encode(IMG, **kw)


def test_bad_settings_elsewhere():
    with pytest.raises(ValueError, match="quality"):
        dctsparse.quant_matrix(0)
    with pytest.raises(ValueError, match="component"):
        dctsparse.quant_matrix(50, 8, "blue")
    with pytest.raises(ValueError, match="block_size"):
        dctsparse.zigzag(100)
    with pytest.raises(TypeError, match="SparseDCT"):
        dctsparse.decode(IMG)


def test_pixel_limit(monkeypatch):
    """One check (the core's check_image_size) and one message, wherever a size enters."""
    monkeypatch.setattr(dctsparse, "MAX_IMAGE_PIXELS", 100)
    want = r"^image of 20x30 = 600 pixels exceeds dctsparse.MAX_IMAGE_PIXELS = 100$"
    with pytest.raises(ValueError, match=want):
        dctsparse.encode(IMG)
    with pytest.raises(ValueError, match=want):
        dctsparse.encode(Image.fromarray(IMG).convert("RGBA"), drop_alpha=True)
    with pytest.raises(ValueError, match="image 0: " + want[1:]):
        dctsparse.encode_batch([IMG])
    tokens = np.array([[192, 0, 0]], np.int32)
    with pytest.raises(ValueError, match=want):
        SparseDCT.from_tokens(tokens, height=20, width=30)
    monkeypatch.setattr(dctsparse, "MAX_IMAGE_PIXELS", None)
    data = S.to_bytes()  # 20 x 30
    monkeypatch.setattr(dctsparse, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ValueError, match=want):
        SparseDCT.from_bytes(data)
    monkeypatch.setattr(dctsparse, "MAX_IMAGE_PIXELS", None)
    core = r"^image of 65536x65536 = 4294967296 pixels exceeds the core's limit of 2\^31 pixels$"
    with pytest.raises(ValueError, match=core):
        SparseDCT.from_tokens(tokens, height=2**16, width=2**16)


def test_sizes_are_checked_before_any_copy(monkeypatch):
    """Issue 19: with MAX_IMAGE_PIXELS = None, a zero-stride view of 2^31 x 1
    pixels (one byte of memory) was copied to 2 GB before the core refused it:
    the padded image does not fit the core's positions."""
    import tracemalloc

    monkeypatch.setattr(dctsparse, "MAX_IMAGE_PIXELS", None)
    for shape in ((2**31, 1), (2**31 - 1, 1), (2**31 - 1, 1, 3), (2**16, 2**16)):
        view = np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), shape, (0,) * len(shape))
        tracemalloc.start()
        try:
            with pytest.raises(ValueError, match="must be in|too large|core's limit"):
                dctsparse.encode(view)
            with pytest.raises(ValueError, match="must be in|too large|core's limit"):
                dctsparse.encode_batch([view])
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 1 << 20, f"{shape}: {peak} bytes allocated before the size check"


S = dctsparse.encode(IMG, block_size=8, quality=75)
H = S.header()


def tok(rows):
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


@pytest.mark.parametrize(
    "tokens,exc,match",
    [
        (tok([[0, 0, 5]]), ValueError, "no stop token"),
        (
            tok([[192, 5, 7]]),
            ValueError,
            r"token 0 = \(192, 5, 7\) has the stop channel 192 but is "
            r"not the stop token \(192, 0, 0\)",
        ),
        (tok([[0, 0, 5], [192, 0, 1], [192, 0, 0]]), ValueError, "token 1 .* not the stop token"),
        (tok([]), ValueError, "no stop token"),
        (np.zeros((3, 2), np.int32), ValueError, r"shape \(M, 3\)"),
        (np.zeros((3,), np.int32), ValueError, r"shape \(M, 3\)"),
        (np.zeros((2, 3), np.float64), TypeError, "integers"),
        (tok([[-1, 0, 5], [192, 0, 0]]), ValueError, "channel -1 is out of range"),
        (tok([[193, 0, 5], [192, 0, 0]]), ValueError, "no stop token|out of range"),
        (tok([[0, 16, 5], [192, 0, 0]]), ValueError, "position 16 is out of range"),
        (tok([[0, -1, 5], [192, 0, 0]]), ValueError, "position -1"),
        (tok([[0, 0, 0], [192, 0, 0]]), ValueError, "value 0"),
        (tok([[0, 0, 1025], [192, 0, 0]]), ValueError, "value 1025"),
        (tok([[0, 0, 2**40], [192, 0, 0]]), ValueError, "int32"),
        (tok([[0, 3, 5], [0, 3, 6], [192, 0, 0]]), ValueError, "appears twice"),
        (tok([[64, 1, 5], [192, 0, 0]]), ValueError, "4:2:0 chroma grid"),
    ],
)
def test_malformed_tokens(tokens, exc, match):
    with pytest.raises(exc, match=match):
        SparseDCT.from_tokens(tokens, **H)


def test_clip_bounds_values_in_tokens():
    s = dctsparse.encode(IMG, clip=3)
    t = s.tokens()
    t[0, 2] = 4
    with pytest.raises(ValueError, match="value 4"):
        SparseDCT.from_tokens(t, **s.header())


def test_slicing_only_prefixes():
    with pytest.raises(TypeError, match="prefix"):
        S[1:3]
    with pytest.raises(TypeError, match="prefix"):
        S[::2]
    with pytest.raises(TypeError, match="prefix"):
        S[3]


def test_bad_dct_image():
    d = S.dct_image()
    with pytest.raises(ValueError, match="shape"):
        SparseDCT.from_dct_image(d[:, :-1], **H)
    d[1, 0, 64] = 3  # odd chroma row
    with pytest.raises(ValueError, match="off the 4:2:0 chroma grid"):
        SparseDCT.from_dct_image(d, **H)
    with pytest.raises(TypeError, match="integers"):
        SparseDCT.from_dct_image(S.dct_image().astype(float), **H)


def test_arrays_are_read_only():
    with pytest.raises(ValueError):
        S.value[0] = 3


def test_a_list_neither_freezes_nor_shares_the_callers_arrays():
    """The constructor validates once; the caller's arrays must stay writable,
    and writing to them (or to the buffer they view) must not reach the list."""
    buf = np.stack([S.channel, S.position, S.value])  # int32 rows: contiguous views of buf
    for arrays in ([buf[0], buf[1], buf[2]], [S.channel.copy(), S.position.copy(), S.value.copy()]):
        s = SparseDCT(*arrays, **H)
        assert all(a.flags.writeable for a in arrays)
        arrays[2][0] = 0  # an invalid value, had the list kept this memory
        buf[1, -1] = 10**6
        assert s == S and s.value[0] != 0
    tokens = np.asfortranarray(S.tokens())  # from_tokens reads contiguous column views here
    s = SparseDCT.from_tokens(tokens, **H)
    tokens[0, 2] = 0
    assert s == S


def test_from_dct_image_rejects_values_past_the_clip():
    s = dctsparse.encode(IMG, block_size=8, quality=75, clip=5)
    d = s.dct_image()
    assert SparseDCT.from_dct_image(d, **s.header()) == s
    d[0, 0, 0] = 6
    with pytest.raises(ValueError, match=r"\(row 0, column 0, channel 0\) = 6 is outside \[-5, 5\]"):
        SparseDCT.from_dct_image(d, **s.header())


# Token arrays for a 10 x 10 RGB header at B = 4 under 4:2:0: 48 channels
# (16..47 chroma), positions 0..15 on a 4 x 4 block grid, chroma only at even
# block rows and columns, |value| <= 512. Every example goes through
# from_tokens; the tests count how many got past its checks into decode, so
# that they keep testing what they are named after.
TOKEN_HEADER = dict(height=10, width=10, block_size=4, quality=50, subsampling="4:2:0")
CHROMA_GRID = [0, 2, 8, 10]
# Enough examples (each takes ~1 ms) for the fractions to hold under every profile; the
# fraction tests draw them derandomized, since a random 60 once decoded 13 (< 30%) under asan.
MIN_EXAMPLES = max(60, settings().max_examples)


def valid_rows():
    """Distinct valid (channel, position, value) rows of TOKEN_HEADER."""
    row = st.integers(0, 47).flatmap(
        lambda c: st.tuples(
            st.just(c),
            st.sampled_from(CHROMA_GRID) if c >= 16 else st.integers(0, 15),
            st.integers(1, 512) | st.integers(-512, -1),
        )
    )
    return st.lists(row, max_size=40, unique_by=lambda r: r[:2])


def edited(rows, edits):
    """rows (valid) with the edits applied: a row's field set to any int64, a row
    repeated, rows dropped or swapped; then the stop token, and maybe junk after it."""
    rows = [list(r) for r in rows]
    for kind, i, j, x in edits:
        if not rows:
            break
        i, j = i % len(rows), j % len(rows)
        if kind == "set":
            rows[i][j % 3] = x
        elif kind == "repeat":
            rows.append(list(rows[i]))
        elif kind == "drop":
            del rows[i]
        else:
            rows[i], rows[j] = rows[j], rows[i]
    return np.array(rows + [[48, 0, 0], [1, 2, 3]], np.int64).reshape(-1, 3)


edit = st.tuples(
    st.sampled_from(["set", "repeat", "drop", "swap", "swap"]),
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(-(2**33), 2**33),
)


def reach_decode(arr, reached):
    reached["examples"] += 1
    try:
        s = SparseDCT.from_tokens(arr, **TOKEN_HEADER)
    except (ValueError, TypeError) as e:
        assert str(e)
        reached["refused"] += 1
        return
    assert dctsparse.decode(s).shape == (10, 10, 3)
    reached["decoded"] += 1


def test_random_token_arrays_never_crash():
    """Anything goes in; a SparseDCT or a ValueError/TypeError comes out. Half the
    examples are arbitrary int64 arrays (nearly all refused), half valid lists
    under arbitrary edits; most of the latter decode."""
    reached: dict[str, int] = {"examples": 0, "decoded": 0, "refused": 0}

    lists = st.builds(edited, valid_rows(), st.lists(edit, max_size=3))

    @settings(max_examples=MIN_EXAMPLES, derandomize=True)  # a fraction is asserted: no flaky draws
    @given(
        st.one_of(
            hnp.arrays(np.int64, st.tuples(st.integers(0, 12), st.just(3)), elements=st.integers(-(2**33), 2**33)),
            lists,
            lists,
        )
    )
    def run(arr):
        reach_decode(arr, reached)

    run()
    # 13 of the 60 derandomized draws decode (a third of the draws are arbitrary arrays,
    # nearly all refused); before the edited lists, 0 of 300 did.
    assert reached["decoded"] >= 0.15 * reached["examples"], reached
    assert reached["refused"] >= 0.15 * reached["examples"], reached


def test_near_valid_token_arrays_never_crash():
    """Valid lists with at most one field nudged just out of range (channel -1 or
    48, position 16, an odd chroma block, value 0 or 513, a repeated row)."""
    reached: dict[str, int] = {"examples": 0, "decoded": 0, "refused": 0}
    nudge = st.one_of(
        st.none(),
        st.tuples(
            st.sampled_from([(0, -1), (0, 48), (1, -1), (1, 16), (1, 1), (2, 0), (2, 513), (2, -513), (None, None)]),
            st.integers(0, 99),
        ),
    )

    @settings(max_examples=MIN_EXAMPLES, derandomize=True)  # a fraction is asserted: no flaky draws
    @given(valid_rows(), nudge)
    def run(rows, nudged):
        rows = [list(r) for r in rows]
        if nudged is not None and rows:
            (field, x), i = nudged
            i %= len(rows)
            if field is None:
                rows.append(list(rows[i]))
            elif field == 1 and x == 1:  # position 1: off the chroma grid for a chroma row
                rows[i][0], rows[i][1] = 16, 1
            else:
                rows[i][field] = x
        reach_decode(np.array(rows + [[48, 0, 0]], np.int32).reshape(-1, 3), reached)

    run()
    assert reached["decoded"] >= 0.3 * reached["examples"], reached
    assert reached["refused"] >= 0.2 * reached["examples"], reached


def test_errors_leave_no_state_behind():
    """The core reuses per-thread coefficient buffers: a list rejected half-way
    through must not leak its coefficients into the next decode."""
    want = dctsparse.decode(S)
    t = S.tokens()
    for bad_row in (5, len(S) // 2, len(S) - 1):
        bad = t.copy()
        bad[bad_row] = bad[0]  # repeats the first (channel, position)
        with pytest.raises(ValueError, match="appears twice"):
            SparseDCT.from_tokens(bad, **H)
        np.testing.assert_array_equal(dctsparse.decode(S), want)
        np.testing.assert_array_equal(dctsparse.decode(S[:0]), np.full_like(want, 128))


def test_high_bit_depth_pillow_images_are_exact_or_refused():
    """Pillow's convert clips 16-bit and float images to 0..255 (a 16-bit photo
    would come out white): such images encode only when their values are 8-bit
    integers already, and are refused, naming the range, otherwise."""
    grey = IMG[..., 0]
    for mode, arr in (("I;16", grey.astype(np.uint16)), ("I", grey.astype(np.int32)), ("F", grey.astype(np.float32))):
        img = Image.fromarray(arr)
        assert img.mode == mode
        assert dctsparse.encode(img) == dctsparse.encode(grey)
    wide = Image.fromarray(grey.astype(np.uint16) * 257)
    with pytest.raises(ValueError, match=r"mode I;16 holds values outside .*\.\.65535"):
        dctsparse.encode(wide)
    with pytest.raises(ValueError, match="mode F holds values outside"):
        dctsparse.encode(Image.fromarray(grey.astype(np.float32) / 255))
