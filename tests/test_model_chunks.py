"""dctmodel data side: token conventions, chunk builder, chunk selection, length filter, scenes."""

import os

import numpy as np
import pytest

import dctsparse
from dctmodel.chunks import build_chunk, chunk_probs, length_keep_prob, num_chunks
from dctmodel.config import get_config, override
from dctmodel.data import Source, make_source, sample_batch
from dctmodel.scenes import render_scene
from dctmodel.tokens import channel_sequence, class_to_value, dense_dct, dense_dct_device, value_to_class


def random_tokens(rng, n, num_channels, positions, clip):
    """A synthetic coordinate list of ``n`` tokens plus the stop token (the builder does not care about order)."""
    ch = rng.integers(0, num_channels, n)
    pos = rng.integers(0, positions, n)
    val = rng.integers(1, clip + 1, n) * rng.choice([-1, 1], n)
    toks = np.stack([ch, pos, val], 1).astype(np.int32)
    return np.concatenate([toks, [[num_channels, 0, 0]]]).astype(np.int32)


def brute_chunk(tokens, start, C, ov, hb, wb, grid, nch, clip):
    """Reference by a different route: pad the encoded stream on both sides and slice it."""
    bos, pad, none = nch + 1, nch + 2, 2 * clip

    def enc(t):
        c, p, v = (int(x) for x in t)
        if c == nch:
            return (c, p, none)
        return (c, p, v + clip if v < 0 else v + clip - 1)

    front = ov + 1
    stream = [(pad, 0, none)] * front + [(bos, 0, none)] + [enc(t) for t in tokens] + [(pad, 0, none)] * (ov + C + 2)
    # stream[front + 1 + i] is token i; stream[front] is BOS (token -1).
    inp = np.array(stream[front + 1 + start - ov - 1 : front + 1 + start - ov - 1 + ov + C], np.int32)
    tgt = np.array(stream[front + 1 + start - ov : front + 1 + start - ov + ov + C], np.int32)
    weight = np.array([1.0 if start <= start - ov + j < len(tokens) else 0.0 for j in range(ov + C)], np.float32)
    dct = np.zeros((grid, grid, nch), np.int32)
    for c, p, v in tokens[:start]:
        if c < nch:
            dct[p // wb, p % wb, c] = v
    return dct, inp, tgt, weight


@pytest.mark.parametrize("seed", range(6))
def test_chunk_builder_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    nch, clip, C, ov = 12, 7, int(rng.integers(3, 9)), int(rng.integers(0, 5))
    hb, wb, grid = int(rng.integers(1, 4)), int(rng.integers(1, 4)), 4
    toks = random_tokens(rng, int(rng.integers(1, 40)), nch, hb * wb, clip)
    # Unique (channel, position) pairs so the dense image is well defined.
    _, first = np.unique(toks[:-1, 0] * 100 + toks[:-1, 1], return_index=True)
    toks = np.concatenate([toks[:-1][np.sort(first)], toks[-1:]])
    for k in range(num_chunks(len(toks), C)):
        got = build_chunk(toks, k * C, C, ov, hb=hb, wb=wb, grid=grid, num_channels=nch, clip=clip)
        dct, inp, tgt, weight = brute_chunk(toks, k * C, C, ov, hb, wb, grid, nch, clip)
        np.testing.assert_array_equal(got["dct"], dct)
        np.testing.assert_array_equal(got["inp"], inp)
        np.testing.assert_array_equal(got["tgt"], tgt)
        np.testing.assert_array_equal(got["weight"], weight)
        assert got["chunk_index"] == k
        # Teacher forcing: step j's target is step j+1's input.
        np.testing.assert_array_equal(got["tgt"][:-1], got["inp"][1:])
    # Every token is a weighted target in exactly one chunk.
    total = sum(
        build_chunk(toks, k * C, C, ov, hb=hb, wb=wb, grid=grid, num_channels=nch, clip=clip)["weight"].sum()
        for k in range(num_chunks(len(toks), C))
    )
    assert total == len(toks)


def test_value_classes_roundtrip_and_layout():
    clip = 5
    v = np.array([-5, -1, 1, 5])
    np.testing.assert_array_equal(value_to_class(v, clip), [0, 4, 5, 9])
    allv = np.concatenate([np.arange(-clip, 0), np.arange(1, clip + 1)])
    np.testing.assert_array_equal(np.sort(value_to_class(allv, clip)), np.arange(2 * clip))
    np.testing.assert_array_equal(class_to_value(value_to_class(allv, clip), clip), allv)
    assert value_to_class(np.array([0]), clip)[0] == 2 * clip


@pytest.mark.parametrize("L,C", [(1, 4), (4, 4), (5, 4), (37, 8), (900, 896), (10 * 896, 896)])
def test_chunk_probs_match_formula(L, C):
    n = -(-L // C)
    p = chunk_probs(L, C)
    assert p.shape == (n,)
    expect = np.array([max((k + 1.0) ** -3, 0.1) for k in range(n)])
    np.testing.assert_allclose(p, expect / expect.sum(), rtol=1e-12)
    if n >= 3:
        assert p[0] / p[1] == pytest.approx(8.0)  # 1 vs 2^-3
        assert p[1] / p[2] == pytest.approx(1.25)  # 1/8 vs the floor 0.1
    np.testing.assert_allclose(chunk_probs(L, C, "uniform"), np.full(n, 1 / n))
    q = chunk_probs(L, C, power=2.0, pmin=0.05)
    e2 = np.maximum((np.arange(n) + 1.0) ** -2, 0.05)
    np.testing.assert_allclose(q, e2 / e2.sum())


def test_length_keep_prob():
    assert length_keep_prob(50, 200) == 0.25
    assert length_keep_prob(200, 200) == 1.0
    assert length_keep_prob(1000, 200) == 1.0
    assert length_keep_prob(3, None) == 1.0


class LengthSource(Source):
    """Synthetic sequences of given lengths (no codec needed)."""

    def __init__(self, data, lengths):
        super().__init__(data)
        rng = np.random.default_rng(0)
        self.seqs = [random_tokens(rng, L - 1, data.num_channels, data.grid**2, data.clip) for L in lengths]

    def __len__(self):
        return len(self.seqs)

    def tokens(self, i):
        return self.seqs[i], (self.data.grid, self.data.grid), 1000 + int(i)


def test_sampler_keep_rate_and_chunk_frequencies():
    cfg = override(get_config("micro"), **{"train.length_filter_lmax": 200, "model.chunk_size": 16, "model.overlap": 4})
    lengths = [50, 100, 200, 400]
    src = LengthSource(cfg.data, lengths)
    n = 6000
    b = sample_batch(cfg, src, seed=3, step=0, batch_size=n)
    # LengthSource reports 1000 + index as the subpixel count: it names each example's sequence.
    seq_of = b["subpixels"].astype(int) - 1000
    ok = seq_of >= 0
    assert ok.all()
    keep = np.array([length_keep_prob(L, 200, 16, "power") for L in lengths])
    expect = keep / keep.sum()
    freq = np.bincount(seq_of[ok], minlength=4) / ok.sum()
    # 6000 draws: standard error of each frequency < 0.007.
    np.testing.assert_allclose(freq, expect, atol=0.03)
    # Chunk index frequencies within the 400-token sequence follow chunk_probs.
    ci = b["chunk_index"][seq_of == 3]
    p = chunk_probs(400, 16)
    f = np.bincount(ci, minlength=p.size) / ci.size
    np.testing.assert_allclose(f[:3], p[:3], atol=0.04)


@pytest.mark.parametrize("policy", ["power", "uniform"])
def test_draw_index_is_numpys_choice(policy):
    """The row sampler's chunk draw (a cached cumulative sum searched with one uniform) gives
    what ``rng.choice(n, p=p)`` gives from the same stream, and leaves the stream where it does."""
    from dctmodel.data import _selection, draw_index

    for L in (1, 2, 15, 16, 17, 100, 401, 2000):
        keep, cdf = _selection(L, 200, 16, policy, 3.0, 0.1)
        assert keep == length_keep_prob(L, 200, 16, policy)
        assert not cdf.flags.writeable  # shared between rows and threads
        p = chunk_probs(L, 16, policy)
        for seed in range(40):
            a, b = np.random.default_rng(seed), np.random.default_rng(seed)
            assert draw_index(a, cdf) == b.choice(p.size, p=p)
            assert a.random() == b.random()
    # Uneven weights, as a policy may have.
    w = np.random.default_rng(1).random(37) ** 4
    p = w / w.sum()
    cdf = p.cumsum()
    cdf /= cdf[-1]
    a, b = np.random.default_rng(9), np.random.default_rng(9)
    assert [draw_index(a, cdf) for _ in range(500)] == [int(b.choice(p.size, p=p)) for _ in range(500)]


def reference_row(cfg, source, seed, step, row):
    """A training row drawn the plain way (the draws the row sampler documents): uniform image,
    kept with ``length_keep_prob``, chunk by ``rng.choice`` over ``chunk_probs``, whole
    ``build_chunk`` with the image's dense DCT."""
    t = cfg.train
    rng = np.random.default_rng([seed, step, row, 0xDC7])
    policy = (cfg.model.chunk_size, t.chunk_policy, t.chunk_power, t.chunk_pmin)
    while True:
        i = int(rng.integers(len(source)))
        toks, (hb, wb), _ = source.tokens(i)
        if rng.random() >= length_keep_prob(len(toks), t.length_filter_lmax, *policy):
            continue
        p = chunk_probs(len(toks), *policy)
        k = int(rng.choice(p.size, p=p))
        d = cfg.data
        return build_chunk(
            toks,
            k * cfg.model.chunk_size,
            cfg.model.chunk_size,
            cfg.model.overlap,
            hb=hb,
            wb=wb,
            grid=d.grid,
            num_channels=d.num_channels,
            clip=d.clip,
        )


@pytest.mark.parametrize("policy, overlap", [("power", 4), ("uniform", 0), ("uniform", 9)])
def test_sample_batch_rows_are_the_plain_draws(policy, overlap):
    cfg = override(
        get_config("micro"),
        **{
            "train.length_filter_lmax": 120,
            "model.chunk_size": 8,
            "model.overlap": overlap,
            "train.chunk_policy": policy,
        },
    )
    src = LengthSource(cfg.data, [5, 17, 40, 90, 200])
    for step in range(12):
        b = sample_batch(cfg, src, 7, step)
        for r in range(cfg.train.batch_size):
            want = reference_row(cfg, src, 7, step, r)
            for k in ("inp", "tgt", "weight", "chunk_index"):
                np.testing.assert_array_equal(b[k][r], want[k], f"step {step} row {r} {k}")
            n = int(want["chunk_index"]) * cfg.model.chunk_size  # the prefix: the tokens before the chunk
            np.testing.assert_array_equal(b["prefix"][r, :n], src.tokens(int(b["subpixels"][r]) - 1000)[0][:n])
            assert (b["prefix"][r, n:, 0] == cfg.data.num_channels).all()


def test_length_keep_prob_follows_the_policy_weights():
    # W(L) = total weight of the chunks: 1 + 1/8 + 0.1 * (n - 2) under l^-3, n under uniform.
    W = lambda n: 1 + 0.125 + 0.1 * (n - 2)  # noqa: E731
    assert length_keep_prob(40, 200, 16, "power") == pytest.approx(W(3) / W(13))
    assert length_keep_prob(40, 200, 16, "uniform") == pytest.approx(3 / 13)
    assert length_keep_prob(500, 200, 16, "power") == 1.0


@pytest.mark.parametrize("policy", ["power", "uniform"])
def test_chunk_index_rate_does_not_depend_on_length(policy):
    """With the length filter on, each chunk index is drawn as often from a short sequence as
    from a long one (per sequence in the source), whatever the chunk policy: the bias the
    filter exists to remove.  Before the filter took the policy into account, chunk 0 of a
    2-chunk sequence was drawn 4.6x less often than that of a 40-chunk one under l^-3."""
    C, lmax = 16, 640
    cfg = override(
        get_config("micro"),
        **{"train.length_filter_lmax": lmax, "model.chunk_size": C, "model.overlap": 4, "train.chunk_policy": policy},
    )
    lengths = [2 * C, 10 * C, 40 * C]
    src = LengthSource(cfg.data, lengths)
    b = sample_batch(cfg, src, seed=5, step=0, batch_size=20000)
    seq_of = b["subpixels"].astype(int) - 1000
    for k in (0, 1):
        rates = np.array([np.mean((seq_of == s) & (b["chunk_index"] == k)) for s in range(3)])
        # Equal rates up to sampling noise (each rate is >= 0.04 of 20000 draws: s.e. < 0.0015).
        np.testing.assert_allclose(rates, rates.mean(), atol=0.008, err_msg=f"chunk {k}: {rates}")


def test_sampler_is_deterministic_per_step():
    cfg = get_config("micro")
    src = LengthSource(cfg.data, [30, 60, 90])
    a, b, c = (sample_batch(cfg, src, 0, s) for s in (5, 5, 6))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize(
    "size, height, supersample, max_objects, scale",
    [(32, None, 2, 4, 1.0), (16, None, 2, 2, 1.0), (48, 30, 1, 4, 1.0), (37, 53, 3, 6, 1.0), (32, None, 2, 4, 1.7)],
)
def test_scenes_windowed_rendering_equals_the_whole_frame(size, height, supersample, max_objects, scale, monkeypatch):
    """Shadows and objects drawn only in their windows: the same pixels, bit for bit, as the same
    renderer with every window the whole frame (objects at the borders and overlapping included)."""
    from dctmodel import scenes

    cases = [(0, i) for i in range(120)] + [(7, i) for i in range(40)]
    kw = dict(height=height, supersample=supersample, max_objects=max_objects, object_scale=scale)
    windowed = [render_scene(seed, index, size, **kw) for seed, index in cases]
    monkeypatch.setattr(scenes, "_window", lambda *a: (slice(None), slice(None)))
    for (seed, index), got in zip(cases, windowed, strict=True):
        np.testing.assert_array_equal(got, render_scene(seed, index, size, **kw), f"{seed}/{index}")


def test_scenes_deterministic_any_resolution():
    a = render_scene(1, 7, 32)
    np.testing.assert_array_equal(a, render_scene(1, 7, 32))
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    assert not np.array_equal(a, render_scene(1, 8, 32))
    assert not np.array_equal(a, render_scene(2, 7, 32))
    big = render_scene(1, 7, 128)
    # The same scene at two resolutions: the big one box-downsampled is close to the small one.
    down = big.reshape(32, 4, 32, 4, 3).mean(axis=(1, 3))
    assert np.abs(down - a.astype(float)).mean() < 6.0
    assert render_scene(1, 7, 40, height=24).shape == (24, 40, 3)
    # Shapes on a flat background: several distinct colours, mostly background.
    assert len(np.unique(a.reshape(-1, 3), axis=0)) > 20


@pytest.mark.parametrize("s", [1, 2, 3, 4])
def test_box_mean_is_numpys_mean_bit_for_bit(s):
    """The renderer's downsampling adds the s x s pixels in numpy's own order: the same bits
    as ``mean(axis=(1, 3))``, so the scenes (and every figure measured on them) are unchanged."""
    from dctmodel.scenes import box_mean

    rng = np.random.default_rng(s)
    for h, w in ((32, 32), (30, 48), (7, 5)):
        img = rng.random((h * s, w * s, 3)) * rng.random() + rng.random()
        np.testing.assert_array_equal(box_mean(img, s), img.reshape(h, s, w, s, 3).mean(axis=(1, 3)))


def test_scene_object_scale_changes_sizes_only():
    from dctmodel.scenes import scene_params

    for index in range(50):
        one, big = scene_params(3, index), scene_params(3, index, object_scale=1.5)
        assert len(one) == len(big)
        for a, b in zip(one, big, strict=True):
            assert b["size"] == pytest.approx(1.5 * a["size"])
            assert {k: v for k, v in a.items() if k != "size"} == {k: v for k, v in b.items() if k != "size"}
    # Bigger objects cover more of the frame (the floor is the only pixels equal in both).
    floor = render_scene(3, 0, 32, supersample=1) == render_scene(3, 0, 32, supersample=1, object_scale=1.5)
    assert 0.3 < floor.all(-1).mean() < 0.99
    # The training source renders what the config asks for.
    src = make_source(override(get_config("micro"), **{"data.object_scale": 1.5}).data, "train")
    np.testing.assert_array_equal(src.image(4), render_scene(0, 4, 16, max_objects=2, object_scale=1.5))


def test_channel_sequence_orders():
    np.testing.assert_array_equal(channel_sequence("frequency", 3, 2), [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11])
    np.testing.assert_array_equal(channel_sequence("luma_first", 3, 2), [0, 1, 2, 3, 4, 8, 5, 9, 6, 10, 7, 11])
    np.testing.assert_array_equal(channel_sequence("frequency", 1, 2), [0, 1, 2, 3])


def test_folder_source_resizes_long_side_and_batches(tmp_path):
    from PIL import Image

    from dctmodel.data import FolderSource, eval_batches, make_source

    sizes = [(40, 24), (24, 40), (32, 32), (50, 30), (30, 30), (64, 20), (16, 16)]
    for i, (w, h) in enumerate(sizes):
        Image.fromarray(render_scene(9, i, w, height=h)).save(tmp_path / f"img{i:02d}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    cfg = override(
        get_config("micro"),
        **{"data.source": "folder", "data.folder": str(tmp_path), "data.image_size": 32, "data.num_eval": 2},
    )
    train_src, eval_src = make_source(cfg.data, "train"), make_source(cfg.data, "eval")
    assert isinstance(train_src, FolderSource) and (len(train_src), len(eval_src)) == (5, 2)
    assert [os.path.basename(f) for f in eval_src.files] == ["img05.png", "img06.png"]
    for i, (w, h) in enumerate(sizes[:5]):
        img = train_src.image(i)
        assert max(img.shape[:2]) == 32 and img.dtype == np.uint8
        assert abs(img.shape[1] / img.shape[0] - w / h) < 0.1
        toks, hw, sub = train_src.tokens(i)
        assert sub == img.shape[0] * img.shape[1] * 3
        assert hw == tuple(dctsparse.encode(img, block_size=4).dct_image().shape[:2])
    b = sample_batch(cfg, train_src, 0, 0)
    # The encoder's input travels as the prefix tokens, padded to a bucket of at least 256 rows;
    # scattered on the device it is the host's dense DCT image of the same tokens.
    assert b["prefix"].shape[0] == 8 and b["prefix"].shape[1] >= 256 and b["prefix"].shape[2] == 3
    dense = np.asarray(dense_dct_device(b["prefix"], b["hw"], cfg.data.grid, cfg.data.num_channels))
    assert dense.shape == (8, cfg.data.grid, cfg.data.grid, cfg.data.num_channels)
    for k in range(8):
        toks = b["prefix"][k][b["prefix"][k][:, 0] < cfg.data.num_channels]
        hb, wb = b["hw"][k]
        np.testing.assert_array_equal(
            dense[k], dense_dct(toks, len(toks), hb, wb, cfg.data.grid, cfg.data.num_channels)
        )
    assert len({tuple(x) for x in b["hw"]}) > 1  # several aspect ratios in one batch
    # Every chunk of the held-out images, padded to whole batches.
    total = sum(float(e["weight"].sum()) for e in eval_batches(cfg, eval_src, range(2), 8))
    assert total == sum(len(eval_src.tokens(i)[0]) for i in range(2))


def test_subpixels_count_the_stored_planes_and_planes_must_match_the_config():
    from dctmodel.data import ArraySource, make_source

    for grey in (False, True):
        cfg = override(get_config("micro"), **{"data.grey": grey})
        src = make_source(cfg.data)
        img = src.image(0)
        toks, _, sub = src.tokens(0)
        # One subpixel per stored sample, as dctsparse's own bits-per-subpixel counts them.
        assert sub == img.size == img.shape[0] * img.shape[1] * (1 if grey else 3)
        s = dctsparse.encode(img, block_size=cfg.data.block_size, quality=cfg.data.quality)
        assert s.height * s.width * s.planes == sub
        assert toks[-1, 0] == cfg.data.num_channels and toks[:-1, 0].max() < cfg.data.num_channels
        # An image with the other plane count would give channel ids outside the vocabulary.
        other = np.zeros((16, 16, 3) if grey else (16, 16), np.uint8)
        with pytest.raises(ValueError, match=r"image 0 of the train source has shape .* data\.grey"):
            ArraySource(cfg.data, [other]).tokens(0)


def test_folder_source_names_an_unreadable_file(tmp_path):
    import io

    from PIL import Image

    from dctmodel.data import make_source

    buf = io.BytesIO()
    Image.fromarray(render_scene(9, 0, 32)).save(buf, format="PNG")
    for i in range(3):
        (tmp_path / f"img{i}.png").write_bytes(buf.getvalue())
    (tmp_path / "img1.png").write_bytes(buf.getvalue()[:200])  # cut short, as by a failed copy
    cfg = override(get_config("micro"), **{"data.source": "folder", "data.folder": str(tmp_path), "data.num_eval": 1})
    src = make_source(cfg.data, "train")
    assert src.image(0).shape == (16, 16, 3)
    with pytest.raises(ValueError, match=r"img1\.png: cannot read this image"):
        src.tokens(1)
