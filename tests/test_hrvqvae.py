"""HR-VQVAE: tree search, eqs. 4-6, EMA / restart, training, codes <-> images, prior, usage stats.

Expectations come from numpy brute force or hand arithmetic, never from the
code under test.  Model tests use 16x16 images and a few dozen steps.
"""

from __future__ import annotations

import json
import os
import shutil
import signal

import numpy as np
import pytest

pytest.importorskip("jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402

from dctmodel import hrvqvae as H  # noqa: E402
from dctmodel.hrvqvae import cli  # noqa: E402
from dctmodel.hrvqvae import config as C
from dctmodel.hrvqvae import data as D
from dctmodel.hrvqvae import prior as P
from dctmodel.hrvqvae import train as T
from helpers import damage_metadata_garbled, snapshot


def _books(rng, n, m, d):
    return [rng.normal(size=(m**layer, m, d)).astype(np.float32) * 0.7**layer for layer in range(n)]


# --------------------------------------------------------------------------- tree search


@pytest.mark.parametrize("n,m,d", [(1, 5, 3), (2, 4, 3), (3, 3, 4), (4, 2, 2)])
def test_tree_search_is_nearest_within_selected_codebook(n, m, d):
    rng = np.random.default_rng(n * 100 + m)
    z = rng.normal(size=(300, d)).astype(np.float32)
    books = _books(rng, n, m, d)
    out = H.tree_quantize(jnp.asarray(z), [jnp.asarray(b) for b in books])
    index, words, resid = (np.asarray(a) for a in (out.index, out.words, out.residuals))
    differs_from_global = 0
    for j in range(len(z)):
        r, path = z[j].astype(np.float64), 0
        for layer in range(n):
            book = books[layer][path]  # the codebook the path selects
            dist = ((book - r) ** 2).sum(1)
            k = int(np.argmin(dist))
            assert index[j, layer] == k
            np.testing.assert_allclose(words[layer, j], book[k], rtol=1e-6)
            np.testing.assert_allclose(resid[layer, j], r, rtol=1e-5, atol=1e-5)
            all_words = books[layer].reshape(-1, d)  # every word of the layer
            differs_from_global += int(np.argmin(((all_words - r) ** 2).sum(1)) != path * m + k)
            r = r - book[k]
            path = path * m + k
        assert out.leaf[j] == path
    if n > 1:
        # The restriction to one codebook matters: a global search would pick other words.
        assert differs_from_global > 0


def test_combined_code_is_sum_of_layer_words():
    rng = np.random.default_rng(1)
    n, m, d = 3, 3, 4
    books = _books(rng, n, m, d)
    z = rng.normal(size=(50, d)).astype(np.float32)
    out = H.tree_quantize(jnp.asarray(z), books)
    idx = np.asarray(out.index)
    leaf = idx[:, 0] * 9 + idx[:, 1] * 3 + idx[:, 2]
    np.testing.assert_array_equal(np.asarray(out.leaf), leaf)
    np.testing.assert_array_equal(np.asarray(H.leaf_index(out.index, m)), leaf)
    np.testing.assert_array_equal(np.asarray(H.split_leaf(jnp.asarray(leaf), m, n)), idx)
    expect = np.stack([books[0][0, i0] + books[1][i0, i1] + books[2][i0 * 3 + i1, i2] for i0, i1, i2 in idx])
    np.testing.assert_allclose(np.asarray(out.words).sum(0), expect, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(H.tree_lookup(out.index, books)), expect, rtol=1e-5, atol=1e-6)
    table = np.asarray(H.combined_codebook(books))
    assert table.shape == (27, d)
    np.testing.assert_allclose(table[leaf], expect, rtol=1e-5, atol=1e-6)
    # The last layer's residual plus e_C gives back the input.
    np.testing.assert_allclose(np.asarray(out.residuals[-1] - out.words[-1]) + expect, z, atol=1e-5)


def test_flat_quantize_matches_brute_force():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(200, 6)).astype(np.float32)
    cb = rng.normal(size=(64, 6)).astype(np.float32)
    brute = np.argmin(((z[:, None] - cb[None]) ** 2).sum(-1), 1)
    np.testing.assert_array_equal(np.asarray(H.flat_quantize(jnp.asarray(z), jnp.asarray(cb))), brute)


# --------------------------------------------------------------------------- losses


def test_losses_match_eqs_5_6_by_hand():
    # Two vectors, D=2, n=2, m=2; every number below was worked out on paper.
    z = np.array([[1.0, 2.0], [-1.0, 0.5]], np.float32)
    books = [
        np.array([[[0.0, 2.0], [-1.0, 0.0]]], np.float32),
        np.array([[[0.8, 0.5], [0.5, 0.0]], [[0.0, 1.0], [0.25, 0.25]]], np.float32),
    ]
    out = H.tree_quantize(jnp.asarray(z), books)
    # layer 1: z0 -> [0,2] (d=1 vs 8), z1 -> [-1,0] (d=.25 vs 3.25); residuals [1,0], [0,.5]
    # layer 2: [1,0] in C(0): [.5,0] (d=.25 vs .29); [0,.5] in C(1): [.25,.25] (d=.125 vs .25)
    np.testing.assert_array_equal(np.asarray(out.index), [[0, 1], [1, 1]])
    np.testing.assert_array_equal(np.asarray(out.leaf), [1, 3])
    terms = H.vq_losses(jnp.asarray(z), out.words, out.residuals, beta0=0.25, betas=(0.5, 2.0))
    # e_C = [[.5,2],[-.75,.25]]; |z - e_C|^2 = .25+0+.0625+.0625 = .375 over 4 elements
    assert float(terms["codebook_C"]) == pytest.approx(0.09375)
    assert float(terms["commit_C"]) == pytest.approx(0.09375)
    # layer 1: |z - e^1|^2 = 1+0+0+.25; layer 2: |xi^1 - e^2|^2 = .25+0+.0625+.0625
    np.testing.assert_allclose(np.asarray(terms["codebook"]), [0.3125, 0.09375], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(terms["commit"]), [0.3125, 0.09375], rtol=1e-6)
    # 1.25*.09375 + 1.5*.3125 + 3*.09375
    assert float(terms["total"]) == pytest.approx(0.8671875)
    flat = H.vq_losses(jnp.asarray(z), out.words[:1], out.residuals[:1], 0.25, (0.5,), combined=False)
    assert float(flat["total"]) == pytest.approx(1.5 * 0.3125)  # eq. 2


def test_stop_gradients_route_each_term():
    rng = np.random.default_rng(3)
    xi0 = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    words = jnp.asarray(rng.normal(size=(2, 6, 3)), jnp.float32)
    resid = jnp.asarray(rng.normal(size=(2, 6, 3)), jnp.float32)

    def grads(term, i=None):
        def f(xi0, words, resid):
            t = H.vq_losses(xi0, words, resid, 0.25, (0.25,))[term]
            return t if i is None else t[i]

        return [np.asarray(g) for g in jax.grad(f, argnums=(0, 1, 2))(xi0, words, resid)]

    g_xi, g_w, g_r = grads("codebook_C")  # |sg[xi0] - e_C|^2 moves the words only
    assert not g_xi.any() and not g_r.any()
    np.testing.assert_allclose(g_w[0], 2 * (np.asarray(words).sum(0) - np.asarray(xi0)) / 18, rtol=1e-5)
    g_xi, g_w, g_r = grads("commit_C")  # |sg[e_C] - xi0|^2 moves the encoder only
    assert not g_w.any() and g_xi.any()
    g_xi, g_w, g_r = grads("commit", 1)  # layer 2 commitment: only xi^1
    assert not g_w.any() and not g_xi.any() and not g_r[0].any() and g_r[1].any()
    g_xi, g_w, g_r = grads("codebook", 1)  # layer 2 codebook term: only e^2
    assert not g_r.any() and not g_w[0].any() and g_w[1].any()


# --------------------------------------------------------------------------- EMA and restart


def test_ema_update_and_restart():
    rng = np.random.default_rng(4)
    q = H.TreeQuantizer(2, 2, 2, decay=0.0, eps=1e-9, restart_after=1, rngs=nnx.Rngs(0))
    books = [
        np.array([[[-1.0, 0.0], [1.0, 0.0]]], np.float32),
        np.array([[[0.0, 0.1], [0.0, -0.1]], [[0.0, 0.1], [50.0, 50.0]]], np.float32),
    ]
    for layer in range(2):
        q.books[layer][...] = jnp.asarray(books[layer])
    # Points near (-1, +-.1) and (1, +.1): word (1, 1) = (50, 50) is never picked.
    z = np.concatenate(
        [
            np.array([-1, 0.1]) + 0.01 * rng.normal(size=(20, 2)),
            np.array([-1, -0.1]) + 0.01 * rng.normal(size=(20, 2)),
            np.array([1, 0.1]) + 0.01 * rng.normal(size=(20, 2)),
        ]
    ).astype(np.float32)
    codes = q(jnp.asarray(z))
    restarted = nnx.jit(lambda q, c, k: q.update_stats(c, k))(q, codes, jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(restarted), [0, 1])
    new = [np.asarray(b) for b in q.codebooks()]
    # decay 0: layer-1 words become their clusters' means (k-means step).
    np.testing.assert_allclose(new[0][0, 0], z[:40].mean(0), atol=1e-5)
    np.testing.assert_allclose(new[0][0, 1], z[40:].mean(0), atol=1e-5)
    # Layer 2 works on residuals against the *updated* layer-1 words.
    r1 = z - np.where(np.arange(60)[:, None] < 40, new[0][0, 0], new[0][0, 1])
    np.testing.assert_allclose(new[1][0, 0], r1[:20].mean(0), atol=1e-5)
    np.testing.assert_allclose(new[1][0, 1], r1[20:40].mean(0), atol=1e-5)
    np.testing.assert_allclose(new[1][1, 0], r1[40:].mean(0), atol=1e-5)
    # The dead word of codebook C(1) restarts on a residual of a point whose path selects C(1).
    assert any(np.allclose(new[1][1, 1], r, atol=1e-6) for r in r1[40:])


def test_restart_choice_respects_parent():
    parent = jnp.asarray([2, 0, 2, 2, 1, 0], jnp.int32)
    pick = np.asarray(H.restart_choice(jax.random.key(1), parent, 4 * 3, 3))
    for word, j in enumerate(pick):
        if word // 3 < 3:
            assert int(parent[j]) == word // 3
    assert ((0 <= pick) & (pick < 6)).all()  # parent 3 has no position: any position


# --------------------------------------------------------------------------- usage statistics


def test_code_usage_hand_count():
    codes = np.array([[0, 1], [0, 1], [1, 0], [0, 0]])
    u = H.code_usage(codes, m=2)
    np.testing.assert_array_equal(u[0]["counts"], [3, 1])
    assert (u[0]["used"], u[0]["dead"]) == (2, 0)
    assert u[0]["perplexity"] == pytest.approx(np.exp(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25))))
    np.testing.assert_array_equal(u[1]["counts"], [1, 2, 1, 0])  # paths 0*2+1, 0*2+1, 1*2+0, 0*2+0
    assert (u[1]["words"], u[1]["used"], u[1]["dead"]) == (4, 3, 1)
    assert u[1]["perplexity"] == pytest.approx(np.exp(-(2 * 0.25 * np.log(0.25) + 0.5 * np.log(0.5))))


# --------------------------------------------------------------------------- models


def _tiny(model="hrvqvae", **kw):
    vq = H.VQConfig(model=model, layers=2, m=4, dim=8, channels=16, res_blocks=1, **kw)
    return C.Config(
        data=C.DataConfig(image_size=16, num_train=64, num_eval=16),
        model=vq,
        train=C.TrainConfig(
            batch_size=16, steps=60, learning_rate=3e-3, log_every=20, eval_every=60, checkpoint_every=30
        ),
    )


@pytest.fixture(scope="module")
def scenes16():
    return D.scene_images(64, 16, 7), D.scene_images(16, 16, 8)


@pytest.fixture(scope="module")
def trained(scenes16, tmp_path_factory):
    cfg = _tiny()
    work = str(tmp_path_factory.mktemp("hrvq"))
    train_x, test_x = scenes16
    model0, _ = T.make_model(cfg)
    before = T.evaluate(model0, test_x)["mse"]
    model, res = T.train(cfg, work, verbose=False, train_images=train_x, test_images=test_x)
    return cfg, work, model, before, res


def test_training_reduces_reconstruction_error(trained):
    cfg, work, model, before, res = trained
    assert res["mse"] < 0.8 * before, (before, res["mse"])
    lines = [json.loads(s) for s in open(f"{work}/log.jsonl")]
    assert [r["step"] for r in lines if "loss" in r] == [20, 40, 60]
    assert lines[-1]["eval_mse"] == pytest.approx(res["mse"])


def _png(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def test_every_run_ends_with_a_reconstruction_grid(trained, scenes16, tmp_path, capsys):
    cfg, work, model, _, _ = trained
    test_x = scenes16[1]  # 16 images of 16 px: the first 8 are drawn
    grid = _png(f"{work}/reconstructions.png")
    assert grid.shape == (2 * 16, 8 * 16, 3)
    tiles = grid.reshape(2, 16, 8, 16, 3).transpose(0, 2, 1, 3, 4)  # (row, column, y, x, rgb)
    np.testing.assert_array_equal(tiles[0], (test_x[:8] * 255).round().astype(np.uint8))
    recon = np.clip(np.asarray(model(jnp.asarray(test_x[:8]))[0]), 0, 1)
    assert np.abs(tiles[1].astype(int) - recon * 255).max() <= 1  # rounding, float order
    # The CLI on a finished run only evaluates, and draws the picture again (its own held-out scenes).
    run = tmp_path / "run"
    shutil.copytree(work, run)
    os.remove(run / "reconstructions.png")
    assert cli.main(["--workdir", str(run)]) == 0
    assert f"wrote {run / 'reconstructions.png'}" in capsys.readouterr().out
    again = _png(run / "reconstructions.png")
    assert again.shape == grid.shape
    held_out = D.load_images(cfg.data, "eval")[:8]
    np.testing.assert_array_equal(
        again.reshape(2, 16, 8, 16, 3).transpose(0, 2, 1, 3, 4)[0], (held_out * 255).round().astype(np.uint8)
    )


def test_checkpoint_resumes(trained, scenes16):
    cfg, work, model, _, res = trained
    m2, o2 = T.make_model(cfg)
    assert T.load_checkpoint(work, m2, o2) == 60
    for a, b in zip(jax.tree.leaves(nnx.state(model)), jax.tree.leaves(nnx.state(m2)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert T.evaluate(m2, scenes16[1])["mse"] == pytest.approx(res["mse"])


def _same_state(a, b):
    for x, y in zip(jax.tree.leaves(nnx.state(a)), jax.tree.leaves(nnx.state(b)), strict=True):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_resume_after_a_stop_or_a_kill_ends_where_the_whole_run_does(trained, scenes16, tmp_path):
    cfg, _, model, _, _ = trained
    train_x, test_x = scenes16
    kw = dict(verbose=False, train_images=train_x, test_images=test_x)
    work = str(tmp_path / "stopped")
    T.train(cfg, work, stop_after=25, **kw)
    # As if then killed after logging step 40, before its checkpoint, mid-way through a line.
    with open(f"{work}/log.jsonl", "a") as f:
        f.write(json.dumps({"step": 40, "loss": -1.0}) + "\n" + '{"step": 4')
    saved = open(f"{work}/config.json").read()
    with pytest.raises(ValueError, match=r"model\.m differ"):
        T.train(C.override(cfg, **{"model.m": 8}), work, **kw)
    assert open(f"{work}/config.json").read() == saved  # refused before it was rewritten
    resumed, _ = T.train(C.override(cfg, **{"train.log_every": 10}), work, **kw)  # reporting may change
    _same_state(resumed, model)
    lines = [json.loads(s) for s in open(f"{work}/log.jsonl")]
    assert [r["step"] for r in lines if "loss" in r] == [20, 25, 30, 40, 50, 60]
    assert all(r["loss"] > 0 for r in lines if "loss" in r)


def test_ctrl_c_stops_with_a_checkpoint_and_a_second_aborts(trained, scenes16, tmp_path, monkeypatch):
    cfg, _, model, _, _ = trained
    kw = dict(verbose=False, train_images=scenes16[0], test_images=scenes16[1])
    step_fn, calls, handler = T.train_step, [], signal.getsignal(signal.SIGINT)

    def interrupted_step(*args, times=1):
        calls.append(1)
        if len(calls) == 10:  # during step 10: it finishes, then the loop stops
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)
        return step_fn(*args)

    monkeypatch.setattr(T, "train_step", interrupted_step)
    work = str(tmp_path / "ctrl_c")
    T.train(cfg, work, **kw)
    m2, o2 = T.make_model(cfg)
    assert T.load_checkpoint(work, m2, o2) == 10
    monkeypatch.setattr(T, "train_step", step_fn)
    resumed, _ = T.train(cfg, work, **kw)
    _same_state(resumed, model)

    calls.clear()
    monkeypatch.setattr(T, "train_step", lambda *a: interrupted_step(*a, times=2))
    work = str(tmp_path / "twice")
    with pytest.raises(KeyboardInterrupt):
        T.train(cfg, work, **kw)
    assert T.saved_steps(work) == []
    assert signal.getsignal(signal.SIGINT) is handler


def test_resume_skips_a_damaged_newest_checkpoint(trained, scenes16, tmp_path, capsys):
    # As the DCTransformer's (test_model_checkpoint.py): the same restore, here through train().
    cfg, done, model, _, _ = trained
    work, ckpts = str(tmp_path / "run"), str(tmp_path / "run" / "checkpoints")
    shutil.copytree(done, work)
    assert T.saved_steps(work) == [30, 60]
    damage_metadata_garbled(os.path.join(ckpts, "60"))
    damaged = snapshot(os.path.join(ckpts, "60"))
    capsys.readouterr()
    resumed, res = T.train(cfg, work, verbose=False, train_images=scenes16[0], test_images=scenes16[1])
    assert res["step"] == 60
    _same_state(resumed, model)  # steps 31-60 redone from step 30
    (line,) = [s for s in capsys.readouterr().err.splitlines() if "step 60 " in s]
    assert line.startswith(
        f"resume: checkpoint step 60 in {ckpts} is unreadable (default/_METADATA is not readable JSON"
    ) and line.endswith("; trying step 30")
    (aside,) = [d for d in os.listdir(ckpts) if d.startswith("60.unreadable-")]
    assert snapshot(os.path.join(ckpts, aside)) == damaged  # kept, and out of the way of the new step 60
    assert T.saved_steps(work) == [30, 60]


def test_bad_settings_are_refused_naming_them(tmp_path, capsys):
    import skimage.data

    for preset in C.PRESETS.values():
        C.check_config(preset)
    cfg = _tiny()
    vq = lambda **kw: C.override(cfg, **{f"model.{k}": v for k, v in kw.items()})  # noqa: E731
    for bad, said in [
        (vq(layers=0), "layers must be >= 1"),
        (vq(m=1), "m must be >= 2"),
        (vq(update="adam"), "update must be 'ema' or 'grad'"),
        (vq(decay=1.0), r"decay must be in \(0, 1\)"),
        (C.override(cfg, **{"data.image_size": 18}), "must be a multiple of 4"),
        (C.override(vq(model="vqvae2"), **{"data.image_size": 20}), "must be a multiple of 8"),
        (C.override(cfg, **{"train.steps": 0}), "steps must be >= 1"),
        (C.override(cfg, **{"train.learning_rate": 0.0}), "learning_rate must be > 0"),
        (
            C.override(cfg, **{"data.source": "patches", "data.image_size": D.PATCH_MAX + 4}),
            "with data.source='patches'",
        ),
    ]:
        with pytest.raises(ValueError, match=said):
            T.train(bad, str(tmp_path / "never"), verbose=False)
    assert not (tmp_path / "never").exists()
    # The largest allowed patch fits every bundled photo, and one pixel more would not.
    assert D.PATCH_MAX == min(min(getattr(skimage.data, k)().shape[:2]) for k in D.PATCH_PHOTOS)
    with pytest.raises(SystemExit) as e:
        cli.main(["--workdir", str(tmp_path / "cli"), "--layers", "0"])
    assert e.value.code == 2 and "layers must be >= 1, got 0" in capsys.readouterr().err


def test_prior_fit_continues_from_a_checkpoint_and_after_ctrl_c(trained, scenes16, tmp_path, monkeypatch):
    import shutil

    cfg, work, model, _, _ = trained
    leaves = model.leaves(np.asarray(model.encode(jnp.asarray(scenes16[0]))))
    pc = P.PriorConfig(vocab=model.vocab, embed=8, channels=16, layers=2)
    whole = P.PixelCNN(pc, rngs=nnx.Rngs(0))
    P.fit_prior(whole, leaves, steps=12, batch_size=16)
    part = P.PixelCNN(pc, rngs=nnx.Rngs(0))
    opt = P.prior_optimizer(part)
    assert len(P.fit_prior(part, leaves, steps=12, batch_size=16, opt=opt, on_step=lambda d: d == 5)) == 5
    T.save_checkpoint(str(tmp_path / "p"), 5, part, opt)
    cont = P.PixelCNN(pc, rngs=nnx.Rngs(1))  # other initial weights: all must come from the checkpoint
    opt = P.prior_optimizer(cont)
    start = T.load_checkpoint(str(tmp_path / "p"), cont, opt)
    assert start == 5
    P.fit_prior(cont, leaves, steps=12, batch_size=16, opt=opt, start=start)
    _same_state(cont, whole)

    # Through train(): Ctrl-C in the prior's third step leaves its checkpoint at step 3 and no samples;
    # the same call again finishes the prior from there and writes them.
    run = tmp_path / "run"
    shutil.copytree(work, run)  # the VQ model is trained already: train() goes straight to the prior
    with_prior = C.override(cfg, **{"train.prior_steps": 6})
    kw = dict(verbose=False, train_images=scenes16[0], test_images=scenes16[1])
    real = P.fit_prior

    def ctrl_c_at_3(*a, on_step, **k):
        def hook(step):
            if step == 3:
                os.kill(os.getpid(), signal.SIGINT)
            return on_step(step)

        return real(*a, on_step=hook, **k)

    monkeypatch.setattr(P, "fit_prior", ctrl_c_at_3)
    with pytest.raises(KeyboardInterrupt):
        T.train(with_prior, str(run), **kw)
    assert not (run / "samples.png").exists()
    probe = P.PixelCNN(P.PriorConfig(vocab=model.vocab), rngs=nnx.Rngs(0))
    assert T.load_checkpoint(str(run / "prior"), probe, P.prior_optimizer(probe)) == 3
    monkeypatch.setattr(P, "fit_prior", real)
    _, res = T.train(with_prior, str(run), **kw)
    assert res["step"] == cfg.train.steps and _png(run / "samples.png").shape == (2 * 16, 8 * 16, 3)
    assert T.load_checkpoint(str(run / "prior"), probe, P.prior_optimizer(probe)) == 6


def test_codes_round_trip_through_encode_decode(trained, scenes16):
    _, _, model, _, _ = trained
    x = jnp.asarray(scenes16[1][:4])
    codes = model.encode(x)
    assert codes.shape == (4, 4, 4, 2) and codes.dtype == jnp.int32
    assert int(codes.min()) >= 0 and int(codes.max()) < 4
    x_hat, _ = model(x)
    np.testing.assert_allclose(np.asarray(model.decode(codes)), np.asarray(x_hat), atol=1e-5)
    # The decoder input is the sum of the picked words, looked up from the codes alone.
    books = [np.asarray(b) for b in model.quant[0].codebooks()]
    c = np.asarray(codes).reshape(-1, 2)
    e_c = books[0][0, c[:, 0]] + books[1][c[:, 0], c[:, 1]]
    np.testing.assert_allclose(np.asarray(model.quant[0].lookup(jnp.asarray(c))), e_c, atol=1e-6)
    leaves = model.leaves(codes)
    np.testing.assert_array_equal(np.asarray(model.from_leaves(leaves)), np.asarray(codes))


@pytest.mark.parametrize("name,update", [("vqvae", "grad"), ("vqvae2", "ema")])
def test_baselines_shapes_and_bits(name, update, scenes16):
    cfg = _tiny(name, update=update)
    model, opt = T.make_model(cfg)
    x = jnp.asarray(scenes16[0][:8])
    loss, recon, _ = T.train_step(model, opt, x, jax.random.key(0))
    assert np.isfinite(float(loss))
    codes = model.encode(x)
    if name == "vqvae":
        assert codes.shape == (8, 4, 4, 1) and int(codes.max()) < 16
        assert cfg.model.bits_per_image(16, 16) == 16 * 4  # log2(4**2) bits at 4x4 positions
    else:
        assert codes[0].shape == (8, 2, 2, 1) and codes[1].shape == (8, 4, 4, 1)
        assert cfg.model.bits_per_image(16, 16) == 16 * 4 + 4 * 4
    np.testing.assert_allclose(np.asarray(model.decode(codes)), np.asarray(model(x)[0]), atol=1e-5)
    assert _tiny().model.bits_per_image(16, 16) == 16 * 2 * 2  # HR-VQVAE: n*log2(m) per position


# --------------------------------------------------------------------------- prior


def test_masked_convs_are_causal():
    prior = P.PixelCNN(P.PriorConfig(vocab=5, embed=4, channels=8, layers=2), rngs=nnx.Rngs(0))
    codes = jnp.asarray(np.random.default_rng(0).integers(0, 5, (1, 5, 5)), jnp.int32)
    emb = prior.embed(codes)

    def out(e):
        h = prior.first(e)
        for conv, mix in zip(prior.blocks, prior.mix, strict=True):
            h = h + mix(jax.nn.relu(conv(jax.nn.relu(h))))
        return prior.out(jax.nn.relu(h))[0].sum(-1)  # (5, 5)

    jac = np.abs(np.asarray(jax.jit(jax.jacrev(out))(emb))).sum(-1)[:, :, 0]  # (5, 5, 5, 5)
    order = np.arange(25).reshape(5, 5)
    for y, x in [(0, 0), (2, 2), (4, 1), (1, 4)]:
        g = jac[y, x]
        assert not g[order >= y * 5 + x].any()  # nothing at or after (y, x) in raster order
        if (y, x) != (0, 0):
            assert g[order < y * 5 + x].any()


def test_prior_samples_valid_codes_that_decode(trained, scenes16):
    _, _, model, _, _ = trained
    leaves = model.leaves(np.asarray(model.encode(jnp.asarray(scenes16[0]))))
    prior = P.PixelCNN(P.PriorConfig(vocab=model.vocab, embed=8, channels=16, layers=2), rngs=nnx.Rngs(0))
    losses = P.fit_prior(prior, leaves, steps=30, batch_size=16, lr=5e-3)
    assert losses[-1] < losses[0]
    codes = P.sample_codes(prior, 3, 4, 4, jax.random.key(0))
    assert codes.shape == (3, 4, 4) and codes.dtype == np.int32
    assert codes.min() >= 0 and codes.max() < model.vocab == 16
    imgs = P.sample_images(model, prior, 3, jax.random.key(1), latent_hw=(4, 4))
    assert imgs.shape == (3, 16, 16, 3) and imgs.min() >= 0 and imgs.max() <= 1


# --------------------------------------------------------------------------- benchmark helpers


def test_benchmark_plateau_interpolation_and_entropy_bits():
    from benchmarks import hrvqvae as B

    crit = B.Plateau(patience=2, tol=0.01)
    assert not crit.reached([5.0, 4.0])  # fewer evaluations than patience + 1
    assert not crit.reached([5.0, 4.0, 3.9, 3.95])  # 3.9 < 0.99 * 4.0: still improving
    assert crit.reached([5.0, 4.0, 3.97, 3.99])  # 3.97 > 0.99 * 4.0
    pts = [(100.0, 20.0), (400.0, 26.0)]
    assert B.interpolate(pts, 200.0) == pytest.approx(23.0)  # halfway in log(bits)
    assert B.interpolate(pts, 99.0) is None and B.interpolate(pts, 401.0) is None
    assert B.interpolate([(100.0, None), (400.0, 26.0)], 200.0) is None  # a run without FID
    # The equal-bits rows interpolate FID as they do PSNR, on each of the DCT's bit counts.
    dct = [
        dict(file_bits=b + 400, payload_bits=b, triple_bits=2 * b, psnr=p, fid=f)
        for b, p, f in ((100.0, 20.0, 300.0), (400.0, 26.0, 100.0))
    ]
    vq = dict(method="hrvqvae", layers=2, m=8, bits_per_image=200.0, entropy_bits=150.0, psnr=25.0, fid=120.0)
    (row,) = B.equal_bits([dict(vq, stopped="plateau@1")], dct)
    assert row["fid"] == 120.0 and row["dct_file_fid"] is None  # below the .dcts curve's range
    assert row["dct_payload_fid"] == pytest.approx(200.0) and row["dct_payload_psnr"] == pytest.approx(23.0)
    assert row["dct_triples_fid"] == pytest.approx(300.0)  # 200 bits is the triples' first point
    # 16 px, latent 4x4: a leaf perplexity of 8 is 3 bits at each of 16 positions; vqvae2 adds its 2x2 top.
    usage = [dict(quantizer=0, layer=0, perplexity=2.0), dict(quantizer=0, layer=1, perplexity=8.0)]
    assert B.entropy_bits(H.VQConfig(layers=2, m=4), usage, 16) == pytest.approx(48.0)
    two = [dict(quantizer=0, layer=0, perplexity=4.0), dict(quantizer=1, layer=0, perplexity=8.0)]
    assert B.entropy_bits(H.VQConfig(model="vqvae2", layers=1, m=16), two, 16) == pytest.approx(4 * 2 + 16 * 3)
