"""The decoder's stripe scatter (StripeScatter in cpp/sparse.cpp).

A list made of few runs of one channel at ascending positions (a canonical
list: one run per channel) is read in place, run by run; any other list is
bucketed by stripe. Both must decode to the same pixels, and reject exactly
what the list validator rejects, with its message (the first bad triple in
list order), wherever in a run the bad triple sits. These tests call the core
directly: SparseDCT validates lists before the decoder ever sees them.

Every test runs twice: with the stripes whole (as images of ordinary widths
decode) and cut into tiles of 2 block columns (as very wide images decode,
StripeScatter::kTileCoeffs), where each run is read a row of a tile at a
time; the expected pixels always come from the whole-stripe decoder.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dctsparse
from dctsparse import _core
from helpers import images


@pytest.fixture(autouse=True, scope="module", params=[0, 2], ids=["whole stripes", "2-block tiles"])
def tile_blocks(request):
    """The tile width raw_decode uses (0: the default, whole stripes here)."""
    global TILE
    TILE = request.param
    yield
    TILE = 0


TILE = 0


def header(s):
    return (s.height, s.width, s.planes, s.block_size)


def raw_decode(s, c, p, v):
    c, p, v = (np.ascontiguousarray(a, dtype=np.int32) for a in (c, p, v))
    _core.set_decode_tile_blocks(TILE)
    try:
        return _core.decode(c, p, v, *header(s), s.quality, s.subsampling == "4:2:0", s.clip or 0)
    finally:
        _core.set_decode_tile_blocks(0)


def raw_validate(s, c, p, v):
    c, p, v = (np.ascontiguousarray(a, dtype=np.int32) for a in (c, p, v))
    _core.validate_list(c, p, v, *header(s), s.subsampling == "4:2:0", s.clip or 0)


def outcome(fn):
    try:
        fn()
    except ValueError as e:
        return str(e)
    return None


def lists(s):
    return s.channel.copy(), s.position.copy(), s.value.copy()


def rearrangements(s, rng):
    """The list s in other orders: ways to get many runs, split runs and none."""
    n = len(s)
    c, p, v = lists(s)
    out = {"shuffled": rng.permutation(n), "reversed": np.arange(n)[::-1], "by position": np.lexsort((c, p))}
    swaps = np.arange(n)
    for _ in range(min(5, n // 2)):
        i, j = rng.integers(0, n, 2)
        swaps[[i, j]] = swaps[[j, i]]
    out["a few swaps"] = swaps
    if n > 2:
        # one channel's run cut in two, its second half moved to the end
        # (two runs of that channel: the scatter must check their slots)
        ch = c[n // 2]
        idx = np.flatnonzero(c == ch)
        cut = idx[len(idx) // 2 :]
        rest = np.setdiff1d(np.arange(n), cut)
        out["split run"] = np.concatenate([rest, cut])
    return out


SETTINGS = [
    dict(block_size=8),
    dict(block_size=5, subsampling="4:4:4"),
    dict(block_size=2),
    dict(block_size=4, order="luma_first", clip=7),
]


@pytest.mark.parametrize("kw", SETTINGS)
@pytest.mark.parametrize("shape", [(96, 80, 3), (37, 51, 3), (64, 48), (512, 16, 3)])
def test_any_order_decodes_identically(kw, shape):
    rng = np.random.default_rng(len(shape) + shape[0])
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    img[: shape[0] // 2] //= 8  # some smooth-ish part: uneven runs
    s = dctsparse.encode(img, quality=90, **kw)
    want = dctsparse.decode(s)
    c, p, v = lists(s)
    np.testing.assert_array_equal(raw_decode(s, c, p, v), want)
    for name, perm in rearrangements(s, rng).items():
        got = raw_decode(s, c[perm], p[perm], v[perm])
        np.testing.assert_array_equal(got, want, err_msg=name)
    # prefixes (what a truncated canonical list is) decode like the SparseDCT prefix
    for k in (0, 1, len(s) // 3):
        np.testing.assert_array_equal(raw_decode(s, c[:k], p[:k], v[:k]), dctsparse.decode(s[:k]))


def mid_run_index(s, plane):
    """Index of a triple in the middle of a long run of a channel of `plane`."""
    bb = s.block_size**2
    c = s.channel
    best = None
    for ch in range(plane * bb, (plane + 1) * bb):
        idx = np.flatnonzero(c == ch)
        if len(idx) >= 5 and (best is None or len(idx) > len(best)):
            best = idx
    return int(best[len(best) // 2])


def smooth_rgb(h, w, seed=0):
    y, x = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    base = 128 + 60 * np.sin(x / 7.0) * np.cos(y / 5.0)
    img = np.stack([base, base[::-1], 255 - base], -1) + rng.normal(0, 20, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


S = dctsparse.encode(smooth_rgb(64, 96), block_size=4, quality=90)


def check_same_error(s, c, p, v, k, what):
    want = outcome(lambda: raw_validate(s, c, p, v))
    assert want is not None and want.startswith(f"triple {k}: ") and what in want, want
    assert outcome(lambda: raw_decode(s, c, p, v)) == want
    # and the same first error whatever else follows
    rng = np.random.default_rng(k)
    tail = rng.permutation(np.arange(k + 1, len(c)))
    order = np.concatenate([np.arange(k + 1), tail])
    assert outcome(lambda: raw_decode(s, c[order], p[order], v[order])) == want


def test_errors_in_the_middle_of_a_run():
    s = S
    wb = (s.width + 7) // 8 * 2  # luma block columns (padding to 2B = 8 under 4:2:0)
    n_pos = ((s.height + 7) // 8 * 2) * wb
    bb = s.block_size**2
    k = mid_run_index(s, 0)
    c, p, v = lists(s)
    v[k] = 0
    check_same_error(s, c, p, v, k, "value 0")
    c, p, v = lists(s)
    v[k] = 10**6
    check_same_error(s, c, p, v, k, "value 1000000")
    c, p, v = lists(s)
    c[k] = 3 * bb  # channel out of range inside a run
    check_same_error(s, c, p, v, k, "is out of range")
    c, p, v = lists(s)
    p[k] = p[k - 1]  # a repeat inside what was a run
    check_same_error(s, c, p, v, k, "appears twice")

    # chroma: odd column, odd row, still ascending within the run
    k = mid_run_index(s, 1)
    c, p, v = lists(s)
    p[k] += 1
    check_same_error(s, c, p, v, k, "4:2:0 chroma grid")
    run = np.flatnonzero(s.channel == s.channel[k])
    gaps = np.flatnonzero(np.diff(s.position[run]) > wb)  # room for a triple on an odd row
    k = int(run[gaps[len(gaps) // 2]])
    assert 0 < k < run[-1]
    c, p, v = lists(s)
    p[k] += wb
    assert p[k - 1] < p[k] < p[k + 1]
    check_same_error(s, c, p, v, k, "4:2:0 chroma grid")
    k = mid_run_index(s, 1)
    # the last triple of a run past the end of the grid (ascending, so still one run)
    ch = c[k]
    last = int(np.flatnonzero(s.channel == ch)[-1])
    c, p, v = lists(s)
    p[last] = n_pos
    check_same_error(s, c, p, v, last, f"position {n_pos} is out of range")


def test_repeats_across_runs_of_one_channel():
    """Two runs of one channel may repeat a pair (one run cannot)."""
    s = S
    c, p, v = lists(s)
    k = mid_run_index(s, 0)
    ch = c[k]
    idx = np.flatnonzero(c == ch)
    # the run's second half again, appended: positions repeat in a second run
    c2, p2, v2 = (np.concatenate([a, a[idx[len(idx) // 2 :]]]) for a in (c, p, v))
    first = len(c)
    check_same_error(s, c2, p2, v2, first, "appears twice")
    # a clean split into two runs is fine
    perm = rearrangements(s, np.random.default_rng(0))["split run"]
    np.testing.assert_array_equal(raw_decode(s, c[perm], p[perm], v[perm]), dctsparse.decode(s))


def few_triples(h, w, b, mode, sub, n, seed=0):
    """An h x w image with n random non-zero coefficients (distinct pairs,
    chroma on the 4:2:0 grid) in 3 channels (one a plane for RGB), in
    canonical order: 3 runs, few enough to be read in place."""
    rng = np.random.default_rng(seed)
    unit = 2 * b if sub == "4:2:0" else b
    hb, wb = -(-h // unit) * unit // b, -(-w // unit) * unit // b
    bb = b * b
    planes = 3 if mode == "RGB" else 1
    chans = np.arange(3) * bb + rng.integers(0, bb, 3) if planes == 3 else rng.choice(bb, 3, replace=False)
    pairs = set()
    while len(pairs) < n:
        ch = int(rng.choice(chans))
        r, col = int(rng.integers(0, hb)), int(rng.integers(0, wb))
        if ch >= bb and sub == "4:2:0":
            r, col = r & ~1, col & ~1
        pairs.add((ch, r * wb + col))
    c, p = np.array(sorted(pairs), np.int32).T
    v = rng.integers(1, 20, n) * rng.choice([-1, 1], n)
    return dctsparse.SparseDCT(c, p, v, height=h, width=w, block_size=b, subsampling=sub, mode=mode)


@pytest.mark.parametrize(
    "h,w,b,mode,sub,n",
    [
        (2048, 16, 2, "L", "4:4:4", 300),  # 1024 stripes (4096 2-block tiles)
        (1024, 24, 4, "RGB", "4:2:0", 40),  # 128 stripes
        (8192, 2048, 64, "L", "4:4:4", 40),  # 128 stripes, 64-bit records (whole stripes)
    ],
)
def test_fewer_triples_than_stripes(h, w, b, mode, sub, n):
    """A tall image whose list has fewer triples than stripes (or tiles): out
    of order, it is bucketed by sorting the triples' stripe keys, not with a
    count per stripe (which grew with the declared height: 3 GB for a valid
    2^28 x 1 greyscale file at B = 2). It decodes as the canonical list does
    (read in place as runs) and fails exactly as the validator does."""
    s = few_triples(h, w, b, mode, sub, n)
    want = dctsparse.decode(s)
    c, p, v = lists(s)
    np.testing.assert_array_equal(raw_decode(s, c, p, v), want)
    rng = np.random.default_rng(n)
    for name, perm in rearrangements(s, rng).items():
        np.testing.assert_array_equal(raw_decode(s, c[perm], p[perm], v[perm]), want, err_msg=name)
    perm = rng.permutation(n)
    c, p, v = c[perm], p[perm], v[perm]
    k = n // 2
    bad = [("value", 0, "value 0"), ("position", 10**8, "is out of range")]
    for what, x, msg in bad:
        c2, p2, v2 = c.copy(), p.copy(), v.copy()
        {"value": v2, "position": p2}[what][k] = x
        check_same_error(s, c2, p2, v2, k, msg)
    # a repeated pair, found only when its tile is scattered
    c2, p2 = c.copy(), p.copy()
    c2[k], p2[k] = c2[0], p2[0]
    check_same_error(s, c2, p2, v, k, "appears twice")
    if sub == "4:2:0":
        j = int(np.flatnonzero(c >= b * b)[0])
        p2 = p.copy()
        p2[j] += 1  # odd column
        check_same_error(s, c, p2, v, j, "4:2:0 chroma grid")


SMALL = dctsparse.encode(smooth_rgb(40, 56, 1), block_size=4, quality=95)
GREY = dctsparse.encode(smooth_rgb(24, 40, 2)[..., 0], block_size=3, quality=95, subsampling="4:4:4")


@given(
    st.sampled_from([SMALL, GREY]),
    st.integers(0, 10**9),
    st.lists(
        st.tuples(
            st.sampled_from(["channel", "position", "value", "repeat", "nudge"]),
            st.floats(0, 1),
            st.integers(-70, 2000),
        ),
        min_size=0,
        max_size=3,
    ),
    st.sampled_from(["canonical", "shuffled", "swaps"]),
)
def test_mutated_lists_match_the_validator(s, seed, edits, order):
    """Whatever the list, the decoder fails exactly when and as the validator does,
    and decodes valid lists the same in any order."""
    rng = np.random.default_rng(seed)
    c, p, v = lists(s)
    n = len(c)
    for what, where, x in edits:
        k = min(int(where * n), n - 1)
        if what == "channel":
            c[k] = x % (s.planes * s.block_size**2 + 3) - 1
        elif what == "position":
            p[k] = x - 5
        elif what == "value":
            v[k] = x - 40
        elif what == "repeat":
            j = int(rng.integers(0, n))
            c[k], p[k] = c[j], p[j]
        else:  # a small move, often keeping the run ascending
            p[k] += x % 5 - 2
    if order == "shuffled":
        perm = rng.permutation(n)
    elif order == "swaps":
        perm = np.arange(n)
        for _ in range(3):
            i, j = rng.integers(0, n, 2)
            perm[[i, j]] = perm[[j, i]]
    else:
        perm = np.arange(n)
    c, p, v = c[perm], p[perm], v[perm]
    want = outcome(lambda: raw_validate(s, c, p, v))
    got = None
    try:
        img = raw_decode(s, c, p, v)
    except ValueError as e:
        got = str(e)
    assert got == want
    if want is None:
        back = rng.permutation(n)
        np.testing.assert_array_equal(raw_decode(s, c[back], p[back], v[back]), img)


@given(images(max_side=40), st.sampled_from([2, 4, 8]), st.sampled_from(["4:2:0", "4:4:4"]), st.integers(0, 2**32 - 1))
def test_shuffled_random_images(img, b, sub, seed):
    s = dctsparse.encode(img, block_size=b, quality=80, subsampling=sub)
    perm = np.random.default_rng(seed).permutation(len(s))
    c, p, v = lists(s)
    np.testing.assert_array_equal(raw_decode(s, c[perm], p[perm], v[perm]), dctsparse.decode(s))


def test_large_blocks_shuffled():
    """B = 64 on a 768-wide image: stripe-local indices need 18 bits and values 15,
    so a bucketed list takes 64-bit records instead of 32-bit ones."""
    img = smooth_rgb(768, 768, 3)
    s = dctsparse.encode(img, block_size=64, quality=30)
    perm = np.random.default_rng(3).permutation(len(s))
    c, p, v = lists(s)
    np.testing.assert_array_equal(raw_decode(s, c[perm], p[perm], v[perm]), dctsparse.decode(s))
    v2 = v[perm].copy()
    v2[len(v2) // 2] = 0
    want = outcome(lambda: raw_validate(s, c[perm], p[perm], v2))
    assert want is not None and want == outcome(lambda: raw_decode(s, c[perm], p[perm], v2))
