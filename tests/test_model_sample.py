"""dctmodel sampling: KV-cached decoding == full forward, the chunked loop on a fake model,
per-sample stopping, samples of a trained model, super-resolution and colorisation,
the dctsparse.Dataset source."""

import os
import signal
import subprocess
import sys

import pytest

pytest.importorskip("jax")

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from PIL import Image

from dctmodel import masks as M
from dctmodel.config import get_config, override
from dctmodel.data import ArraySource, sample_batch
from dctmodel.model import DCTransformer
from dctmodel.sample import (
    CachedDecoder,
    RecomputeDecoder,
    SampleSettings,
    colorize_prefix,
    decode_tokens,
    filter_logits,
    sample_loop,
    sample_tokens,
    upsample_prefix,
)
from dctmodel.scenes import render_scene
from dctmodel.tokens import channel_rank, channel_sequence, class_to_value, dense_dct

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _random_window(cfg, B, seed):
    """A random well-formed window (no codec needed): sorted channels, any positions/values."""
    rng = np.random.default_rng(seed)
    d, m = cfg.data, cfg.model
    S, n, g = m.overlap + m.chunk_size, d.num_channels, d.grid
    tgt = np.stack(
        [
            np.sort(rng.integers(0, n, (B, S)), axis=1),
            rng.integers(0, g * g, (B, S)),
            rng.integers(0, 2 * d.clip, (B, S)),
        ],
        -1,
    ).astype(np.int32)
    inp = np.concatenate([np.tile([[[n + 1, 0, 2 * d.clip]]], (B, 1, 1)), tgt[:, :-1]], 1).astype(np.int32)
    return {
        "dct": rng.integers(-5, 6, (B, g, g, n)).astype(np.int32),
        "inp": inp,
        "tgt": tgt,
        "hw": np.full((B, 2), g, np.int32),
        "label": rng.integers(0, 3, B).astype(np.int32),
    }


@pytest.mark.parametrize("context", [False, True])
@pytest.mark.parametrize("Dec", [CachedDecoder, RecomputeDecoder])
def test_incremental_decoding_matches_full_forward(Dec, context):
    # Downsampling (gather geometry), class conditioning and 2-layer decoders all on.
    cfg = override(
        get_config("micro"),
        **{
            "model.downsample_kernel": 2,
            "model.downsample_stride": 2,
            "model.num_classes": 3,
            "model.value_spec": ((1, 1), (1, 1)),
            "model.position_pointer": True,
            "model.window_context": context,
            "model.window_pointer": context,
        },
    )
    model = DCTransformer(cfg, rngs=nnx.Rngs(0))
    # ReZero starts every branch at 0, which would hide a wrong cache: make them non-zero.
    for path, var in nnx.iter_graph(model):
        if isinstance(var, nnx.Param) and path and path[-1] == "alpha":
            var[...] = jnp.asarray(0.8, jnp.float32)
    b = {k: jnp.asarray(v) for k, v in _random_window(cfg, 2, 0).items()}
    ov, S = cfg.model.overlap, cfg.model.overlap + cfg.model.chunk_size
    full = model(b, structure_masks=False)

    @jax.jit
    def stepwise(b):
        dec = Dec(model, b["hw"], b["label"])
        st = dec.begin(b["dct"], b["inp"][:, :ov], b["tgt"][:, :ov])

        def body(st, j):
            # Teacher-forced: each decoder is fed the true token, as in the full pass.
            lc, st = dec.channel(st, j, b["inp"][:, j])
            lp, st = dec.position(st, j, b["tgt"][:, j, 0])
            lv, st = dec.value(st, j, b["tgt"][:, j, 1])
            return st, (lc, lp, lv)

        return jax.lax.scan(body, st, jnp.arange(ov, S))[1]

    steps = stepwise(b)
    for name, got, want in zip(("channel", "position", "value"), steps, full, strict=True):
        want = np.asarray(want[:, ov:]).transpose(1, 0, 2)  # (C, B, V) like the scan
        assert np.abs(want).max() > 0.1, name  # logits are not trivially zero
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4, err_msg=name)


class FakeDecoder:
    """Logits that put all their mass on one token computed from the sampler's inputs.

    Token ``i`` of a sample (``i`` = DCT non-zeros at chunk start + step - O, which
    is only right if the sampler scatters every chunk) is ``(order[i // 2],
    0 or 10, class (prev class + position + 7) % 64)``, or the stop token at
    ``i == stop_at[b]``.
    """

    def __init__(self, cfg, stop_at):
        self.O, self.n = cfg.model.overlap, cfg.data.num_channels
        self.seq = jnp.asarray(channel_sequence(cfg.data.order, cfg.data.planes, cfg.data.block_size))
        self.stop_at = jnp.asarray(stop_at)
        self.P, self.V = cfg.position_vocab, cfg.value_vocab

    def begin(self, dct, inp_o, tgt_o):
        return {"start": jnp.sum(dct != 0, axis=(1, 2, 3)).astype(jnp.int32), "pv": jnp.zeros_like(self.stop_at)}

    def channel(self, st, j, prev):
        i = st["start"] + j - self.O
        want = jnp.where(i == self.stop_at, self.n, self.seq[jnp.minimum(i // 2, self.n - 1)])
        return 100.0 * jax.nn.one_hot(want, self.n + 1), dict(st, pv=prev[:, 2])

    def position(self, st, j, c):
        i = st["start"] + j - self.O
        return 100.0 * jax.nn.one_hot(jnp.where(i % 2 == 0, 0, 10), self.P), st

    def value(self, st, j, p):
        return 100.0 * jax.nn.one_hot((st["pv"] + p + 7) % self.V, self.V), st


def _run_fake(cfg, dec, B, max_tokens, settings=SampleSettings(), min_rank=None, prefix=None, origin=None):
    """``sample_loop`` jitted over ``dec``; ``prefix``: ``(buf, n, dct)`` to start from (default
    empty), ``origin``: int32 ``(B,)`` or None."""
    d = cfg.data
    f = jax.jit(
        lambda key, buf, n, dct, hw, mr, org: sample_loop(
            dec,
            key,
            buf,
            n,
            dct,
            hw,
            mr,
            tables=M.MaskTables.from_config(cfg),
            clip=d.clip,
            overlap=cfg.model.overlap,
            chunk=cfg.model.chunk_size,
            max_tokens=max_tokens,
            max_chunks=10,
            settings=settings,
            origin=org,
        )
    )
    if prefix is None:
        prefix = (
            np.zeros((B, max_tokens + 1, 3), np.int32),
            np.zeros(B, np.int32),
            np.zeros((B, d.grid, d.grid, d.num_channels), np.int32),
        )
    return jax.device_get(
        f(
            jax.random.key(0),
            *prefix,
            np.full((B, 2), d.grid, np.int32),
            np.zeros(B, np.int32) if min_rank is None else min_rank,
            origin,
        )
    )


def test_sampler_with_fake_logits_exact_sequence_and_per_sample_stop():
    cfg = get_config("micro")  # C = 32, O = 8, 48 channels, 4x4 grid, clip 32
    n, clip = cfg.data.num_channels, cfg.data.clip
    # Stops inside chunk 1, 2 and 3, and one sample that only max_tokens stops.
    stop_at = [5, 40, 70, 1000]
    buf, lens, stopped, chunks = _run_fake(cfg, FakeDecoder(cfg, stop_at), 4, max_tokens=90)
    seq = channel_sequence(cfg.data.order, cfg.data.planes, cfg.data.block_size)
    assert int(chunks) == 3
    assert stopped.tolist() == [True, True, True, True]
    for b, s in enumerate(stop_at):
        count = min(s, 90)
        expect, pv = [], 2 * clip  # the first token's "previous value" is BOS's "none" class
        for i in range(count):
            p = 0 if i % 2 == 0 else 10
            pv = (pv + p + 7) % (2 * clip)
            expect.append((seq[i // 2], p, pv))
        expect.append((n, 0, 2 * clip))  # stop (drawn, or forced at max_tokens)
        assert lens[b] == count + 1
        np.testing.assert_array_equal(buf[b, : count + 1], np.array(expect), err_msg=f"sample {b}")


@pytest.mark.parametrize("origin", [None, 37])
def test_a_prefix_ending_inside_a_chunk_is_fed_from_the_chunk_boundary(origin):
    """Chunks start where training's do (multiples of C from the origin): with a 37-token prefix
    and C = 32 the encoder sees tokens [0, 32) and tokens 32-36 are fed as known tokens before
    the first draw, at window steps O..O+4, so the first drawn token is at step O + 5.  A
    colorisation model's origin is the prefix's end (its chunks start at the first chroma
    token): then the first chunk starts at 37 and draws at step O."""
    cfg = get_config("micro")  # C = 32, O = 8
    n_pre, ov, C = 37, cfg.model.overlap, cfg.model.chunk_size
    d = cfg.data

    class Spy(FakeDecoder):
        # The drawn value tells the window step and how many coefficients the encoder saw.
        def value(self, st, j, p):
            return 100.0 * jax.nn.one_hot(j + 16 * (st["start"] % 2), self.V), st

    seq = channel_sequence(d.order, d.planes, d.block_size)
    pre = np.array([(seq[i // 2], 0 if i % 2 == 0 else 10, (3 * i) % (2 * d.clip)) for i in range(n_pre)], np.int32)
    buf = np.zeros((2, 90, 3), np.int32)
    buf[:, :n_pre] = pre  # value classes, as the sampler keeps them
    values = pre.copy()
    values[:, 2] = class_to_value(pre[:, 2], d.clip)
    dct = np.stack([dense_dct(values, n_pre, d.grid, d.grid, d.grid, d.num_channels)] * 2)
    org = None if origin is None else np.full(2, origin, np.int32)
    prefix = (buf, np.full(2, n_pre, np.int32), dct)
    out, lens, _, _ = _run_fake(cfg, Spy(cfg, [1000, 1000]), 2, 89, prefix=prefix, origin=org)
    np.testing.assert_array_equal(out[:, :n_pre], buf[:, :n_pre])  # the prefix stays as it was
    first = out[0, n_pre]
    if origin is None:
        # Encoder input: tokens [0, 32) (an even count), first draw at window step O + 5.
        assert first[2] == ov + (n_pre - C) + 16 * (C % 2), first
    else:
        assert first[2] == ov + 16 * (n_pre % 2), first  # encoder input: all 37 tokens
    # The FakeDecoder's channel and position are those of token 37 either way (its index is
    # encoder count + step - O), and every later chunk starts on a boundary again.
    assert (first[0], first[1]) == (seq[n_pre // 2], 10)
    assert lens[0] > n_pre + C


def test_sampler_never_emits_an_invalid_token():
    # An adversarial fake that always wants (channel 0, position 0): the masks must steer it.
    cfg = get_config("micro")
    stop_never = FakeDecoder(cfg, [10_000] * 3)
    stop_never.seq = jnp.zeros_like(stop_never.seq)
    stop_never.position = lambda st, j, c: (100.0 * jax.nn.one_hot(jnp.zeros_like(c), cfg.position_vocab), st)
    min_rank = np.array([0, 3, 40], np.int32)
    buf, lens, _, _ = _run_fake(
        cfg, stop_never, 3, max_tokens=60, settings=SampleSettings.make(top_p=0.9), min_rank=min_rank
    )
    rank = channel_rank(cfg.data.order, cfg.data.planes, cfg.data.block_size)
    for b in range(3):
        body = buf[b, : lens[b] - 1]
        assert buf[b, lens[b] - 1, 0] == cfg.data.num_channels and len(body) >= 1
        key = rank[body[:, 0]] * 1000 + body[:, 1]
        assert (np.diff(key) > 0).all() and (rank[body[:, 0]] >= min_rank[b]).all()
        chroma = body[:, 0] >= 16  # 4:2:0: chroma at even rows and columns of the 4x4 grid
        assert (body[chroma, 1] // 4 % 2 == 0).all() and (body[chroma, 1] % 2 == 0).all()
        toks = body.copy()
        toks[:, 2] = class_to_value(toks[:, 2], cfg.data.clip)
        decode_tokens(cfg, np.concatenate([toks, [[cfg.data.num_channels, 0, 0]]]), 16, 16)


def test_location_heatmap_counts_coefficients_per_block():
    from dctmodel.sample import location_heatmap
    from dctsparse.viz import colormap

    cfg = get_config("micro")  # B = 4, 16x16 images: a 4x4 block grid
    # Block (0, 1) holds 4 coefficients (two luma, two chroma), block (2, 3) one, the rest none.
    toks = np.array([[0, 1, 5], [1, 1, -2], [16, 1, 3], [32, 1, 1], [0, 11, 7], [48, 0, 0]], np.int32)
    hm = location_heatmap(cfg, toks, 16, 16)
    assert hm.shape == (16, 16, 3) and hm.dtype == np.uint8
    want = np.zeros((4, 4))
    want[0, 1], want[2, 3] = 1.0, 0.25  # counts over the largest count
    for r in range(4):
        for c in range(4):
            block = hm[4 * r : 4 * r + 4, 4 * c : 4 * c + 4].reshape(-1, 3)
            assert (block == colormap(want[r, c])).all(), (r, c)
    np.testing.assert_array_equal(location_heatmap(cfg, toks, 16, 12), hm[:, :12])  # cropped to the image


def test_bad_requests_are_refused_before_sampling():
    from dctmodel.train import functions

    cfg = get_config("micro")
    d = cfg.data
    params = functions(cfg).init(0)["params"]
    ok = np.array([[0, 0, 3], [16, 0, -1], [1, 5, 2]], np.int32)  # Y0, Cb0, Y1: in the list order
    assert d.grid == 4 and d.num_channels == 48 and channel_sequence(d.order, 3, 4)[:4].tolist() == [0, 16, 32, 1]
    for kw, said in [
        (dict(num=0), "num must be a positive"),
        (dict(hw=(6, 4)), r"hw=\(6, 4\) must lie in 1\.\.4"),
        (dict(hw=(3, 4)), "even"),
        (dict(label=1), "not class-conditional"),
        (dict(min_rank=49), "min_rank must lie in 0..48"),
        (dict(max_tokens=-1), "max_tokens must be at least 1"),
        (dict(prefix=np.array([[48, 0, 0]])), r"token 0 \(48, 0, 0\) is not a coefficient"),
        (dict(prefix=np.array([[0, 16, 1]])), "not a coefficient of a 4x4-block image"),
        (dict(prefix=np.array([[0, 0, 0]])), "not a coefficient"),
        (dict(prefix=np.array([[0, 0, d.clip + 1]])), "not a coefficient"),
        (dict(prefix=np.array([[16, 1, 1]])), "not a coefficient"),  # chroma at an odd block column
        (dict(prefix=ok[[0, 2, 1]]), "token 2: out of the list order"),  # Cb0 after Y1
        (dict(prefix=ok[[0, 0]]), "token 1: out of the list order"),  # repeated
    ]:
        with pytest.raises(ValueError, match=said):
            sample_tokens(cfg, params, **kw)
    # The same prefix in order is taken (so the order checks above refused the order, not the tokens).
    (t,) = sample_tokens(cfg, params, prefix=ok, max_tokens=8)
    np.testing.assert_array_equal(t[:3], ok)
    cond = override(cfg, **{"model.num_classes": 3})
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.2"):
        sample_tokens(cond, functions(cond).init(0)["params"], num=2, label=[0, 3])


def test_top_k_and_top_p_filters():
    logits = jnp.log(jnp.array([[0.5, 0.3, 0.15, 0.05]]))
    keep = lambda **kw: np.isfinite(np.asarray(filter_logits(logits, 1.0, kw.get("k", 0), kw.get("p", 1.0))))[0]  # noqa
    assert keep(k=2).tolist() == [True, True, False, False]
    assert keep(p=0.7).tolist() == [True, True, False, False]  # 0.5 < 0.7 <= 0.8
    assert keep(p=0.81).tolist() == [True, True, True, False]
    assert keep(p=0.01).tolist() == [True, False, False, False]  # the top class always survives


# ---------------------------------------------------------------------------
# A trained micro model (frequency order) and a colorisation one (luma_first, chroma targets)
# ---------------------------------------------------------------------------


def _images(n, seed=11):
    return [render_scene(seed, i, 16, max_objects=2) for i in range(n)]


@pytest.fixture(scope="module")
def trained(micro_run):
    # 250 steps of micro on _images(4), uniform chunks (tests/conftest.py: shared with the training tests)
    cfg, src, state, _, wd = micro_run
    return cfg, src, state["params"], wd


def test_samples_of_trained_model_decode_to_requested_size(trained):
    import dctsparse

    cfg, src, params, _ = trained
    d = cfg.data
    rank = channel_rank(d.order, d.planes, d.block_size)
    # Two square 16x16 samples and two 8x16 ones (Hb, Wb) = (2, 4), in one batch.
    hws = [(4, 4), (4, 4), (2, 4), (2, 4)]
    toks, stats = sample_tokens(cfg, params, num=4, seed=3, hw=hws, top_k=(0, 0, 8), return_stats=True, max_tokens=120)
    assert stats["stopped"].all()
    for t, (hb, wb) in zip(toks, hws, strict=True):
        body = t[:-1]
        assert tuple(t[-1]) == (d.num_channels, 0, 0) and len(body) > 5
        assert (np.diff(rank[body[:, 0]] * 1000 + body[:, 1]) > 0).all()
        assert (body[:, 1] < hb * wb).all() and (body[:, 2] != 0).all() and (np.abs(body[:, 2]) <= d.clip).all()
        img = decode_tokens(cfg, t, hb * 4, wb * 4)
        assert img.shape == (hb * 4, wb * 4, 3) and img.dtype == np.uint8
        # Round trip through the codec: the list is exactly what was sampled.
        s = dctsparse.encode(img, block_size=4, quality=d.quality, subsampling=d.subsampling, clip=d.clip)
        assert s.height == hb * 4 and s.width == wb * 4
    # The model overfit 4 scenes: the squares look like them (about as many tokens).
    lengths = [len(src.tokens(i)[0]) for i in range(len(src))]
    assert min(len(t) for t in toks[:2]) >= 0.4 * min(lengths)
    # Same seed, same samples; and the cache-free path draws the very same tokens.
    again = sample_tokens(cfg, params, num=4, seed=3, hw=hws, top_k=(0, 0, 8), max_tokens=120, method="recompute")
    for a, b in zip(toks, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_super_resolution_needs_an_order_that_starts_with_the_dc_channels():
    """luma_first lists the luma AC before the chroma DC, so the DC tokens are no prefix: a clear
    ValueError, not an assertion; a permutation that starts with every plane's DC works."""
    cfg = get_config("micro")  # B = 4: DC channels 0, 16, 32
    low = render_scene(0, 3, 16)[::4, ::4]
    with pytest.raises(ValueError, match="data.order='luma_first'"):
        upsample_prefix(override(cfg, **{"data.order": "luma_first"}), low)
    order = (0, 16, 32) + tuple(c for c in range(48) if c % 16)
    prefix, _, min_rank, _ = upsample_prefix(override(cfg, **{"data.order": order}), low)
    want, _, _, _ = upsample_prefix(cfg, low)  # frequency order: Y_0, Cb_0, Cr_0 first as well
    assert min_rank == 3 and set(prefix[:, 0]) <= {0, 16, 32}
    np.testing.assert_array_equal(prefix, want)


def test_super_resolution_keeps_dc_exactly(trained):
    import dctsparse

    cfg, src, params, _ = trained
    d = cfg.data
    low = src.image(1)[::4, ::4][:, :, :3]  # 4x4 pixels -> 16x16 (B = 4)
    prefix, hw, min_rank, big = upsample_prefix(cfg, low)
    assert hw == (4, 4) and min_rank == 3 and big.shape == (16, 16, 3)
    # Same static settings as the test above: the compiled sampler is reused.
    toks = sample_tokens(
        cfg, params, num=4, seed=5, prefix=prefix, hw=hw, min_rank=min_rank, max_tokens=120, top_k=(0, 0, 8)
    )
    # Independent expectation: the codec's own DC planes of the block-constant image.
    ref = dctsparse.encode(big, block_size=4, quality=d.quality, subsampling=d.subsampling, clip=d.clip)
    grew = 0
    for t in toks:
        np.testing.assert_array_equal(t[: len(prefix)], prefix)
        s = dctsparse.SparseDCT.from_tokens(
            t,
            height=16,
            width=16,
            block_size=4,
            quality=d.quality,
            subsampling=d.subsampling,
            order=d.order,
            mode="RGB",
        )
        dc = [0, 16, 32]  # channel 0 of each plane (B*B = 16); dct_image() is (Hb, Wb, P*B*B)
        np.testing.assert_array_equal(s.dct_image()[..., dc], ref.dct_image()[..., dc])
        assert (ref.dct_image()[..., dc] != 0).sum() == len(prefix)
        grew += len(t) - 1 - len(prefix)
        assert dctsparse.decode(s).shape == (16, 16, 3)
    assert grew > 0  # it did sample AC coefficients


def test_sample_cli_writes_the_samples_it_draws(trained, tmp_path, capsys):
    from PIL import Image

    from dctmodel.sample import main

    cfg, src, params, wd = trained
    out = tmp_path / "new" / "dir" / "grid.png"  # folders are made
    main(["--workdir", wd, "--num", "3", "--seed", "4", "--top-k", "0", "0", "8", "--out", str(out)])
    assert f"checkpoint step {cfg.steps}: 3 samples" in capsys.readouterr().out
    grid = np.asarray(Image.open(out))
    # Independent route: the library call with the same settings (one batch of 3, batch 0's key),
    # decoded and laid out 2 x 2.
    toks = sample_tokens(cfg, params, num=3, seed=jax.random.fold_in(jax.random.key(4), 0), top_k=(0, 0, 8))
    assert grid.shape == (2 * 16 + 2, 2 * 16 + 2, 3)
    for i, t in enumerate(toks):
        r, c = divmod(i, 2)
        np.testing.assert_array_equal(grid[r * 18 : r * 18 + 16, c * 18 : c * 18 + 16], decode_tokens(cfg, t, 16, 16))
    assert (grid[18:, 18:] == 255).all()  # the fourth cell is empty
    assert (tmp_path / "new" / "dir" / "grid_heatmap.png").is_file()
    assert (tmp_path / "new" / "dir" / "grid_progress.png").is_file()
    # Super-resolution from a file: the context image comes first, then the samples.
    Image.fromarray(src.image(1)[::4, ::4]).save(tmp_path / "low.png")
    main(
        [
            "--checkpoint",
            os.path.join(wd, "checkpoints"),
            "--num",
            "1",
            "--upsample",
            str(tmp_path / "low.png"),
            "--out",
            str(tmp_path / "up.png"),
        ]
    )
    up = np.asarray(Image.open(tmp_path / "up.png"))
    assert up.shape == (2 * 16 + 2, 16, 3)  # one column: the grid's columns follow the samples
    np.testing.assert_array_equal(up[:16], upsample_prefix(cfg, src.image(1)[::4, ::4])[3])

    # Mistakes end with one line naming them (exit status 2), before any sampling.
    for argv, said in [
        (["--workdir", str(tmp_path / "none")], "has no config.json"),
        (["--checkpoint", os.path.join(wd, "checkpoints", "7")], "no checkpoint of step 7 in"),
        (["--workdir", wd, "--out", str(tmp_path / "grid")], "cannot tell an image format"),
        (["--workdir", wd, "--label", "2"], "not class-conditional"),
        (["--workdir", wd, "--num", "0"], "num and batch_size must be >= 1"),
        (["--workdir", wd, "--colorize", str(tmp_path / "low.png")], "data.order='luma_first'"),
        (["--workdir", wd, "--upsample", str(tmp_path / "missing.png")], "No such file"),
    ]:
        with pytest.raises(SystemExit) as e:
            main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and said in err and "Traceback" not in err, (argv, err)


def test_sample_cli_saves_batches_and_continues_after_ctrl_c(trained, tmp_path, monkeypatch, capsys):
    import dctmodel.sample as S

    cfg, src, params, wd = trained
    real, calls, interrupt = S.sample_tokens, [], {}

    def counted(*a, **kw):
        calls.append(kw["num"])
        if interrupt.get(len(calls)) == "abort":  # as a second Ctrl-C: out at once
            raise KeyboardInterrupt
        if interrupt.get(len(calls)) == "ctrl-c":
            os.kill(os.getpid(), signal.SIGINT)
        return real(*a, **kw)

    monkeypatch.setattr(S.folder, "sample_tokens", counted)
    argv = ["--workdir", wd, "--num", "5", "--batch-size", "2", "--seed", "1", "--out", str(tmp_path / "g.png")]
    interrupt.update({1: "abort"})
    with pytest.raises(SystemExit) as e:
        S.main(argv)
    assert e.value.code == 130 and "the same command continues" in capsys.readouterr().err
    assert not (tmp_path / "g_tokens").exists() or not os.listdir(tmp_path / "g_tokens")
    interrupt.clear(), interrupt.update({2: "ctrl-c"}), calls.clear()
    with pytest.raises(SystemExit) as e:  # Ctrl-C while batch 1 is drawn: it is finished and saved
        S.main(argv)
    assert e.value.code == 130 and calls == [2, 2] and "after this batch" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path / "g_tokens")) == ["batch_00000.npz", "batch_00001.npz", "settings.json"]
    interrupt.clear(), calls.clear()
    S.main(argv)  # draws batch 2 only; it is full (2 samples), the grid shows 5
    assert calls == [2]
    first = np.asarray(Image.open(tmp_path / "g.png"))
    # Every batch is the library call with its own key: batch b = fold_in(key(seed), b).
    with np.load(tmp_path / "g_tokens" / "batch_00002.npz") as z:
        assert z["lengths"].size == 2
        b2 = np.split(z["tokens"], np.cumsum(z["lengths"])[:-1])
    for a, b in zip(b2, real(cfg, params, num=2, seed=jax.random.fold_in(jax.random.key(1), 2)), strict=True):
        np.testing.assert_array_equal(a, b)
    # A rerun draws nothing and writes the same pictures; a larger --num draws only what is new.
    calls[:] = []
    S.main(argv)
    assert calls == [] and (np.asarray(Image.open(tmp_path / "g.png")) == first).all()
    S.main(argv[:3] + ["6"] + argv[4:])
    assert calls == []  # sample 6 was already in batch 2
    S.main(argv[:3] + ["7"] + argv[4:])
    assert calls == [2]
    # Other settings would mix two runs' samples: refused, naming the setting.
    with pytest.raises(SystemExit) as e:
        S.main(argv[:7] + ["2"] + argv[8:])
    assert e.value.code == 2 and "(seed differ)" in capsys.readouterr().err


def test_colorisation_chroma_chunks_and_kept_luma():
    import dctsparse

    cfg = override(
        get_config("micro"),
        **{
            "data.order": "luma_first",
            "train.target": "chroma",
            "train.total_tokens": 8 * 32 * 20,
            "train.warmup_steps": 5,
            "train.log_every": 10,
            "train.checkpoint_every": 0,
        },
    )
    src = ArraySource(cfg.data, _images(4, seed=3))
    # Chunk selection: every drawn chunk starts at the first chroma token + k*C.
    b = sample_batch(cfg, src, 0, 0, batch_size=32)
    lumas = [dense_dct(t, len(t), 4, 4, 4, 48)[..., :16] for t in (src.tokens(i)[0] for i in range(4))]
    for k in range(32):
        tg = b["tgt"][k][b["weight"][k] > 0]
        assert len(tg) and (tg[:, 0] >= 16).all()  # targets: chroma (>= B*B) or stop, never luma
        pre = b["prefix"][k][b["prefix"][k][:, 0] < 48]
        dct = dense_dct(pre, len(pre), 4, 4, 4, 48)
        assert any((dct[..., :16] == lu).all() for lu in lumas)  # the whole luma is in the input
    grey = np.round(src.image(0) @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    prefix, hw, min_rank, rgb = colorize_prefix(cfg, grey)
    # Keeping the luma is the sampler's job, not the model's: an untrained model (near-uniform
    # logits, so it does add chroma and the check cannot pass vacuously) must keep it too.
    from dctmodel.train import functions

    toks = sample_tokens(
        cfg, functions(cfg).init(1)["params"], num=3, seed=1, prefix=prefix, hw=hw, min_rank=min_rank, max_tokens=150
    )
    assert sum(len(t) - 1 - len(prefix) for t in toks) > 0
    ref = dctsparse.encode(rgb, block_size=4, quality=cfg.data.quality, clip=cfg.data.clip, order="luma_first")
    for t in toks:
        s = dctsparse.SparseDCT.from_tokens(
            t,
            height=16,
            width=16,
            block_size=4,
            quality=cfg.data.quality,
            subsampling="4:2:0",
            order="luma_first",
            mode="RGB",
        )
        # Every luma coefficient (channels < B*B = 16) as given; the colour was sampled.
        np.testing.assert_array_equal(s.dct_image()[..., :16], ref.dct_image()[..., :16])
        assert (ref.dct_image()[..., :16] != 0).sum() == len(prefix)
        assert dctsparse.decode(s).shape == (16, 16, 3)


def test_dataset_shards_source_trains(tmp_path):
    from PIL import Image

    src_dir, out = tmp_path / "img", tmp_path / "shards"
    src_dir.mkdir()
    for i in range(6):
        Image.fromarray(render_scene(7, i, 16, max_objects=2)).save(src_dir / f"{i}.png")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "dctsparse",
            "encode-dataset",
            str(src_dir),
            str(out),
            "--block-size",
            "4",
            "--quality",
            "50",
            "--long-side",
            "16",
            "--clip",
            "32",
            "--jobs",
            "1",
            "--quiet",
        ],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    cfg = override(get_config("micro"), **{"data.source": "dataset", "data.folder": str(out), "data.num_eval": 2})
    from dctmodel.data import make_source
    from dctmodel.train import functions, make_mesh

    tr, ev = make_source(cfg.data, "train"), make_source(cfg.data, "eval")
    assert (len(tr), len(ev)) == (4, 2)
    import dctsparse

    ds = dctsparse.Dataset(out)
    np.testing.assert_array_equal(tr.tokens(1)[0], ds.tokens(1))
    np.testing.assert_array_equal(ev.tokens(0)[0], ds.tokens(4))
    # Two train steps on batches from the shards.  The model and step only depend on the
    # model/train sections, so the micro step compiled elsewhere in this session is reused.
    fns, mesh = functions(get_config("micro")), make_mesh(1)
    state = fns.shard_state(fns.init(0), mesh)
    losses = []
    for step in range(2):
        state, met = fns.train_step(state, sample_batch(cfg, tr, 0, step), mesh)
        losses.append(float(met["loss"]))
    assert int(state["step"]) == 2 and np.isfinite(losses).all() and losses[0] > 5
    bad = override(cfg, **{"data.quality": 75})
    with pytest.raises(ValueError, match="quality"):
        make_source(bad.data)
