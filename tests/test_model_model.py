"""DCTransformer modules: shapes, causality of the three decoders, gather/downsampling geometry, presets."""

import pytest

pytest.importorskip("jax")

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from dctmodel.config import PRESETS, check_config, get_config, override, spec
from dctmodel.layers import MLP, Attention, Residual, Stack
from dctmodel.model import DCTransformer, count_params


def _cfg(**kw):
    base = {"model.structure_masks": True}
    base.update(kw)
    return override(get_config("micro"), **base)


def _nonzero_alphas(model, value=0.7):
    """ReZero starts every residual branch at 0, which would make the decoders trivially causal."""
    for path, var in nnx.iter_graph(model):
        if isinstance(var, nnx.Param) and path and path[-1] == "alpha":
            var[...] = jnp.asarray(value, jnp.float32)
    return model


def _batch(cfg, B=2, seed=0):
    """A random but well-formed batch (no codec needed)."""
    rng = np.random.default_rng(seed)
    d, m = cfg.data, cfg.model
    S, n = m.overlap + m.chunk_size, d.num_channels
    g = d.grid
    ch = np.sort(rng.integers(0, n, (B, S)), axis=1)
    pos = rng.integers(0, g * g, (B, S))
    val = rng.integers(0, 2 * d.clip, (B, S))
    tgt = np.stack([ch, pos, val], -1).astype(np.int32)
    inp = np.concatenate([np.tile([[[n + 1, 0, 2 * d.clip]]], (B, 1, 1)), tgt[:, :-1]], 1).astype(np.int32)
    return {
        "dct": rng.integers(-5, 6, (B, g, g, n)).astype(np.int32),
        "inp": inp,
        "tgt": tgt,
        "weight": np.ones((B, S), np.float32),
        "hw": np.full((B, 2), g, np.int32),
        "label": rng.integers(0, max(m.num_classes, 1), B).astype(np.int32),
    }


def test_block_shapes():
    rngs = nnx.Rngs(0)
    x = jnp.ones((3, 5, 16))
    ctx = jnp.ones((3, 7, 16))
    att = Attention(16, 2, 8, dtype=jnp.float32, rngs=rngs)
    assert att(x).shape == (3, 5, 16)
    assert att(x, ctx).shape == (3, 5, 16)
    assert att(x, causal=True).shape == (3, 5, 16)
    assert MLP(16, 3, dtype=jnp.float32, rngs=rngs)(x).shape == (3, 5, 16)
    r = Residual(16, MLP(16, 2, dtype=jnp.float32, rngs=rngs), 0.0, dtype=jnp.float32, rngs=rngs)
    # ReZero: alpha = 0 at init makes every residual block the identity.
    np.testing.assert_array_equal(r(x, deterministic=True, rngs=None), x)
    st = Stack(spec((1, 2), (2, 3)), 16, 2, 8, 2, 0.0, causal=True, cross=True, dtype=jnp.float32, rngs=rngs)
    assert st.kinds == ("self", "cross", "mlp", "mlp", "self", "cross", "self", "cross", "mlp", "mlp", "mlp")
    h, n = st(x, ctx, deterministic=True)
    assert h.shape == n.shape == (3, 5, 16)
    enc = Stack(spec((1, 2)), 16, 2, 8, 2, 0.0, causal=False, cross=False, dtype=jnp.float32, rngs=rngs)
    assert enc.kinds == ("self", "mlp", "mlp")


@pytest.mark.parametrize("kernel,stride", [(1, 1), (4, 2), (3, 3)])
def test_model_shapes(kernel, stride):
    cfg = _cfg(**{"model.downsample_kernel": kernel, "model.downsample_stride": stride, "model.num_classes": 5})
    model = DCTransformer(cfg, rngs=nnx.Rngs(0))
    b = {k: jnp.asarray(v) for k, v in _batch(cfg, B=3).items()}
    g = cfg.data.grid
    go = -(-g // stride)
    assert model.grid_out == go
    e = model.encode(b["dct"], b["label"])
    assert e.shape == (3, go * go, cfg.model.d_model)
    assert model.embed_position(b["tgt"][..., 1], b["hw"]).shape == (3, 40, cfg.model.d_model)
    assert model.gather_input(e, b["tgt"][..., 1], b["hw"]).shape == (3, 40, cfg.model.d_model)
    ch, pos, val = jax.jit(lambda b: model(b))(b)
    S = cfg.model.overlap + cfg.model.chunk_size
    assert ch.shape == (3, S, cfg.channel_vocab) and ch.dtype == jnp.float32
    assert pos.shape == (3, S, cfg.position_vocab)
    assert val.shape == (3, S, cfg.value_vocab)
    assert np.isfinite(np.asarray(val)).all()


@pytest.mark.parametrize("stride", [1, 2])
def test_gather_and_downsampling_geometry(stride):
    """Block (r, c) of the DCT image reaches exactly encoder cell (r//s, c//s), which the gather reads."""
    cfg = _cfg(**{"model.encoder_spec": (), "model.downsample_kernel": stride, "model.downsample_stride": stride})
    model = DCTransformer(cfg, rngs=nnx.Rngs(1))
    g, go, wb = cfg.data.grid, model.grid_out, cfg.data.grid
    base = jnp.zeros((1, g, g, cfg.data.num_channels), jnp.int32)
    e0 = model.encode(base)
    for r, c in [(0, 0), (1, 2), (g - 1, g - 1), (2, 1)]:
        e1 = model.encode(base.at[0, r, c, 3].set(9))
        changed = np.nonzero(np.abs(np.asarray(e1 - e0)).sum(-1)[0] > 1e-6)[0].tolist()
        assert changed == [(r // stride) * go + c // stride]
        p = jnp.array([[r * wb + c]])
        got = model.gather_input(e1, p, jnp.array([[g, wb]]))
        np.testing.assert_array_equal(got[0, 0], e1[0, changed[0]])


def _perturb(b, j, field, cfg):
    """Change token at decoder step j (target j and input j+1 are the same token)."""
    b = {k: np.array(v) for k, v in b.items()}
    n = cfg.data.num_channels
    mod = {0: lambda x: (x + 1) % n, 1: lambda x: (x + 3) % cfg.position_vocab, 2: lambda x: (x + 5) % cfg.value_vocab}[
        field
    ]
    b["tgt"][:, j, field] = mod(b["tgt"][:, j, field])
    if j + 1 < b["inp"].shape[1]:
        b["inp"][:, j + 1, field] = b["tgt"][:, j, field]
    return b


@pytest.mark.parametrize("masks,context", [(False, False), (True, False), (False, True)])
def test_decoders_are_causal(masks, context):
    """Changing token j never changes logits of earlier steps; it only reaches its own step through
    the teacher-forced fields each decoder is allowed to see (eq. 2: p(c), p(p | c), p(v | c, p))."""
    cfg = _cfg(**{"model.structure_masks": masks, "model.window_context": context, "model.window_pointer": context})
    model = _nonzero_alphas(DCTransformer(cfg, rngs=nnx.Rngs(0)))
    fwd = jax.jit(lambda b: model(b))
    b0 = _batch(cfg, B=2, seed=3)
    ref = [np.asarray(x) for x in fwd(b0)]
    S = b0["inp"].shape[1]
    for j in [0, 5, S // 2, S - 2]:
        for field in (0, 1, 2):
            out = [np.asarray(x) for x in fwd(_perturb(b0, j, field, cfg))]
            ch, pos, val = out
            # Channel logits at step j predict token j: independent of token j entirely.
            np.testing.assert_array_equal(ch[:, : j + 1], ref[0][:, : j + 1])
            # Position logits at step j see token j's channel only; value logits its channel and position.
            np.testing.assert_array_equal(pos[:, :j], ref[1][:, :j])
            np.testing.assert_array_equal(val[:, :j], ref[2][:, :j])
            if field == 2:
                np.testing.assert_array_equal(pos[:, j], ref[1][:, j])
                np.testing.assert_array_equal(val[:, j], ref[2][:, j])
            if field == 1:
                np.testing.assert_array_equal(pos[:, j], ref[1][:, j])
            # Sanity: the change is visible later (the test can fail).
            later = slice(j + 1, None)
            assert not np.array_equal(ch[:, later], ref[0][:, later])
            assert not np.array_equal(val[:, later], ref[2][:, later])


def test_dropout_changes_outputs_only_when_training():
    cfg = _cfg(**{"model.dropout": 0.3})
    model = _nonzero_alphas(DCTransformer(cfg, rngs=nnx.Rngs(0)))
    b = _batch(cfg)
    ev = jax.jit(lambda b: model(b, deterministic=True)[2])
    tr = jax.jit(lambda b, k: model(b, deterministic=False, rngs=nnx.Rngs(dropout=k))[2])
    a = ev(b)
    np.testing.assert_array_equal(a, ev(b))
    d1, d2, d3 = (tr(b, jax.random.key(k)) for k in (1, 1, 2))
    np.testing.assert_array_equal(d1, d2)
    assert not np.allclose(d1, a) and not np.allclose(d1, d3)


def test_class_label_conditions_the_model():
    cfg = _cfg(**{"model.num_classes": 4})
    model = _nonzero_alphas(DCTransformer(cfg, rngs=nnx.Rngs(0)))
    b = _batch(cfg)
    b2 = dict(b, label=(b["label"] + 1) % 4)
    fwd = jax.jit(lambda b: model(b)[0])
    assert not np.allclose(fwd(b), fwd(b2))


def test_table3_presets_exact():
    p = PRESETS
    assert [
        p[k].data.image_size for k in ("lsun", "ffhq", "imagenet", "openimages", "plant_leaves", "retinopathy", "clevr")
    ] == [384, 1024, 384, 640, 2048, 1024, 480]
    assert (p["ffhq"].data.block_size, p["ffhq"].data.quality, p["ffhq"].data.clip) == (16, 35, 3200)
    assert (p["plant_leaves"].data.block_size, p["plant_leaves"].data.clip) == (32, 4000)
    assert p["lsun"].model.value_spec == ((1, 2),) * 5 + ((1, 7),)
    assert p["clevr"].model.value_spec == ((1, 2),) * 6 + ((1, 7),)
    assert p["retinopathy"].model.value_spec == ((1, 2), (1, 2), (1, 3), (1, 3), (1, 7))
    assert p["retinopathy"].model.channel_spec == ((1, 2),) * 3 + ((1, 3),)
    imagenet = p["imagenet"].model
    assert (imagenet.d_model, imagenet.num_heads, imagenet.num_classes) == (1152, 14, 1000)
    assert (p["imagenet"].model.downsample_kernel, p["imagenet"].model.downsample_stride) == (8, 4)
    assert (p["clevr"].train.batch_size, p["clevr"].model.dropout, p["clevr"].train.total_tokens) == (128, 0.5, 50e9)
    assert p["openimages"].model.num_heads == 18 and p["openimages"].data.order == "luma_first"
    for k in ("lsun", "ffhq", "imagenet", "openimages", "plant_leaves", "retinopathy", "clevr"):
        c = p[k]
        assert (c.model.chunk_size, c.model.overlap, c.train.learning_rate, c.train.warmup_steps) == (
            896,
            128,
            5e-4,
            1000,
        )
    # Vocabularies: channel P*B*B+1, position Hb*Wb of the largest image, value 2*clip.
    assert (p["lsun"].channel_vocab, p["lsun"].position_vocab, p["lsun"].value_vocab) == (193, 48 * 48, 2400)


def test_config_checks_name_the_field(tmp_path, capsys):
    for c in PRESETS.values():
        check_config(c)
    base = get_config("micro")
    perm = tuple(range(47, -1, -1))  # 3 planes x 4x4: any permutation of the 48 channel ids
    check_config(override(base, **{"data.order": perm, "model.d_model": 30, "model.head_dim": 8}))
    for kw, said in [
        ({"model.d_model": "64"}, "model.d_model must be int, got '64'"),
        ({"model.dropout": True}, "model.dropout must be float"),
        ({"data.block_size": 65}, r"data.block_size must be in 2\.\.64"),
        ({"data.quality": 0}, r"data.quality must be in 1\.\.100"),
        ({"data.subsampling": "4:2:2"}, "data.subsampling must be '4:2:0' or '4:4:4'"),
        ({"data.object_scale": 0.0}, r"data.object_scale must be in \(0, 5\]"),
        ({"data.order": perm[1:] + (48,)}, "permutation of the 48 channel ids"),
        ({"model.num_heads": 3}, "a divisor of model.d_model=32"),
        ({"model.value_spec": ()}, "model.value_spec must be one"),
        ({"model.encoder_spec": ((1, -2),)}, "model.encoder_spec must be LayerSpec"),
        ({"model.downsample_kernel": 1, "model.downsample_stride": 2}, "downsample_kernel must be >= "),
        ({"train.total_tokens": 0}, "train.total_tokens must be > 0"),
        ({"train.target": "chroma"}, "train.target must be 'all' unless data.order='luma_first'"),
        ({"train.keep_checkpoints": 0}, "train.keep_checkpoints must be >= 1"),
    ]:
        with pytest.raises(ValueError, match=said):
            check_config(override(base, **kw))
    with pytest.raises(ValueError, match="unknown config field 'model.nope'; section 'model' has .*d_model"):
        override(base, **{"model.nope": 1})
    with pytest.raises(ValueError, match="unknown config section 'modle'"):
        override(base, **{"modle.d_model": 1})
    with pytest.raises(ValueError, match="unknown config field 'nmae'; the top level has name"):
        override(base, nmae="x")
    # The command line says the same in one line (exit 2) before anything is written.
    from dctmodel.train import main

    for argv, said in [
        (["--set", "model.d_model=abc"], "model.d_model must be int, got 'abc'"),
        (["--set", "model.d_model"], "expected SECTION.FIELD=VALUE"),
        (["--set", "data.source=folder"], "data.folder None is not a directory"),
    ]:
        with pytest.raises(SystemExit) as e:
            main(["--config", "micro", "--workdir", str(tmp_path / "run"), *argv])
        assert e.value.code == 2 and said in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(SystemExit) as e:
        main(["--config", "micro", "--workdir", str(tmp_path / "file")])
    assert e.value.code == 2 and "File exists" in capsys.readouterr().err


def test_param_count_without_allocation():
    cfg = get_config("micro")
    model = DCTransformer(cfg, rngs=nnx.Rngs(0))
    real = sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    assert count_params(cfg) == real


def test_bf16_forward_close_to_f32():
    cfg = _cfg()
    m32 = _nonzero_alphas(DCTransformer(cfg, rngs=nnx.Rngs(0)), 0.3)
    m16 = _nonzero_alphas(DCTransformer(override(cfg, **{"train.bf16": True}), rngs=nnx.Rngs(0)), 0.3)
    b = _batch(cfg)
    for a, c in zip(jax.jit(lambda b: m32(b))(b), jax.jit(lambda b: m16(b))(b), strict=True):
        assert c.dtype == jnp.float32  # heads and logits stay in float32
        assert np.isfinite(np.asarray(c)).all()
        ok = np.asarray(a) > -1e8  # masked entries are the same constant in both
        np.testing.assert_allclose(np.asarray(c)[ok], np.asarray(a)[ok], atol=0.15, rtol=0.05)


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("bf16", [False, True])
def test_patch_conv_equals_the_convolution(stride, bf16):
    """kernel == stride: the encoder's patches-times-kernel product gives the convolution's values."""
    cfg = _cfg(**{"model.downsample_kernel": stride, "model.downsample_stride": stride, "train.bf16": bf16})
    model = DCTransformer(cfg, rngs=nnx.Rngs(3))
    side = model.grid_out * stride
    x = jax.random.normal(jax.random.key(0), (2, side, side, cfg.data.num_channels))
    want = np.asarray(model.conv(x), np.float32)
    got = np.asarray(model.patch_conv(x), np.float32)
    assert got.shape == want.shape == (2, model.grid_out, model.grid_out, cfg.model.d_model)
    np.testing.assert_allclose(got, want, rtol=2e-2 if bf16 else 1e-5, atol=2e-2 if bf16 else 1e-5)


@pytest.mark.parametrize("d_in, d_out", [(8, 5), (5, 8), (6, 6)])
def test_dense_matches_nnx_linear_values_and_gradients(d_in, d_out):
    """The model's Dense (one 2-D product over all tokens, its own weight gradient) is
    nnx.Linear: same values, same gradients, whichever side of the kernel is wider."""
    from dctmodel.layers import Dense

    dense = Dense(d_in, d_out, rngs=nnx.Rngs(0))
    ref = nnx.Linear(d_in, d_out, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(np.asarray(dense.kernel[...]), np.asarray(ref.kernel[...]))
    x = jax.random.normal(jax.random.key(1), (3, 4, d_in))

    def grads(layer):
        return nnx.grad(lambda m, x: (m(x) ** 2).sum(), argnums=(0, 1))(layer, x)

    np.testing.assert_allclose(np.asarray(dense(x)), np.asarray(ref(x)), rtol=1e-6, atol=1e-6)
    (gd, gxd), (gr, gxr) = grads(dense), grads(ref)
    np.testing.assert_allclose(np.asarray(gxd), np.asarray(gxr), rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(nnx.state(gd)), jax.tree.leaves(nnx.state(gr)), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_weight_gradient_puts_the_wider_operand_second_on_cpu():
    """layers.weight_grad: XLA:CPU's generic dot is ~1.6x faster with the wider operand second,
    so a (K, N) weight gradient with K > N is computed as (g.T @ x).T; the barrier must keep
    XLA from folding the transpose back (it does without it).  Values: x.T @ g."""
    import re

    from dctmodel.layers import weight_grad

    x = jax.random.normal(jax.random.key(0), (40, 24))
    g = jax.random.normal(jax.random.key(1), (40, 8))
    np.testing.assert_allclose(np.asarray(weight_grad(x, g)), np.asarray(x).T @ np.asarray(g), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(weight_grad(g, x)), np.asarray(g).T @ np.asarray(x), rtol=1e-5, atol=1e-5)
    if jax.default_backend() != "cpu":
        return
    hlo = jax.jit(weight_grad).lower(x, g).compile().as_text()
    # The product's operands in the compiled program: (40, 8) first, (40, 24) second.
    shapes = {m.group(1): m.group(2) for m in re.finditer(r"%?([\w.\-]+) = (f32\[[\d,]*\])", hlo)}
    (dot,) = re.findall(r"= f32\[[\d,]*\]\S* dot\(%?([\w.\-]+), %?([\w.\-]+)\)", hlo)
    assert [shapes[a] for a in dot] == ["f32[40,8]", "f32[40,24]"]


@pytest.mark.parametrize("shift", [0.0, 50.0])
def test_layer_norm_is_nnx_layer_norm_with_its_gradient(shift):
    """layers.LayerNorm: nnx.LayerNorm's values bit for bit, and the gradients of autodiff through
    flax's formula (the closed form is the model's own backward pass), also on rows far from
    zero mean, where E[x^2] - E[x]^2 cancels."""
    from dctmodel.layers import LayerNorm

    ours, ref = LayerNorm(24, rngs=nnx.Rngs(0)), nnx.LayerNorm(24, dtype=jnp.float32, rngs=nnx.Rngs(0))
    keys = jax.random.split(jax.random.key(2), 4)
    for m in (ours, ref):
        m.scale[...] = 1 + 0.3 * jax.random.normal(keys[0], (24,))
        m.bias[...] = 0.2 * jax.random.normal(keys[1], (24,))
    x = shift + 3 * jax.random.normal(keys[2], (3, 5, 24))
    g = jax.random.normal(keys[3], x.shape)
    np.testing.assert_array_equal(np.asarray(ours(x)), np.asarray(ref(x)))

    def grads(layer):
        return nnx.grad(lambda m, x: (m(x) * g).sum(), argnums=(0, 1))(layer, x)

    (go, gxo), (gr, gxr) = grads(ours), grads(ref)
    scale = float(jnp.abs(gxr).max())
    np.testing.assert_allclose(np.asarray(gxo), np.asarray(gxr), rtol=0, atol=2e-5 * scale)
    for a, b in zip(jax.tree.leaves(nnx.state(go)), jax.tree.leaves(nnx.state(gr)), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_attention_gradient_is_autodiffs(masked, dtype):
    """layers.attention (softmax normalised at the output, the scale on the queries) equals the
    softmax attention formula to float rounding, and its written-out backward pass (row sums
    from do . o, no select on the masked scores) equals autodiff of that formula.  Fully
    masked-out keys get exactly zero gradient."""
    import math

    from dctmodel.layers import attention

    keys = jax.random.split(jax.random.key(3), 4)
    q = jax.random.normal(keys[0], (2, 7, 3, 8), dtype)
    k = jax.random.normal(keys[1], (2, 9, 3, 8), dtype)
    v = jax.random.normal(keys[2], (2, 9, 3, 8), dtype)
    do = jax.random.normal(keys[3], q.shape, dtype)
    valid = jnp.tril(jnp.ones((7, 9), bool), 1) if masked else None

    def formula(q, k, v):
        att = jnp.einsum("bshd,bthd->bhst", q, k).astype(jnp.float32) / math.sqrt(8)
        if valid is not None:
            att = jnp.where(valid, att, -1e30)
        return jnp.einsum("bhst,bthd->bshd", jax.nn.softmax(att, axis=-1).astype(dtype), v)

    got = attention(q, k, v, valid)
    assert got.dtype == dtype
    out, want = np.asarray(got, np.float32), np.asarray(formula(q, k, v), np.float32)
    np.testing.assert_allclose(out, want, rtol=0, atol=(1e-6 if dtype == jnp.float32 else 1e-2) * np.abs(want).max())

    def loss(f):
        return lambda q, k, v: (f(q, k, v).astype(jnp.float32) * do.astype(jnp.float32)).sum()

    ours = jax.jit(jax.grad(loss(lambda q, k, v: attention(q, k, v, valid)), argnums=(0, 1, 2)))(q, k, v)
    ref = jax.grad(loss(formula), argnums=(0, 1, 2))(q, k, v)
    tol = 2e-6 if dtype == jnp.float32 else 3e-2
    for a, b in zip(ours, ref, strict=True):
        assert a.dtype == dtype
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        np.testing.assert_allclose(a, b, rtol=0, atol=tol * np.abs(b).max())
    if masked:  # key 8 is never valid (row s sees keys <= s + 1 <= 7)
        assert not np.asarray(ours[1])[:, 8].any() and not np.asarray(ours[2])[:, 8].any()


@pytest.mark.parametrize("stride", [1, 2])
def test_position_pointer_scores_each_block_by_its_encoder_cell(stride):
    """model.position_pointer: a block's key reads the encoder cell of that block (and only it), so
    what is drawn at block (r, c) moves the position logits of the blocks in its cell."""
    cfg = _cfg(
        **{
            "model.encoder_spec": (),
            "model.downsample_kernel": stride,
            "model.downsample_stride": stride,
            "model.position_pointer": True,
        }
    )
    model = DCTransformer(cfg, rngs=nnx.Rngs(2))
    g = cfg.data.grid
    hw = jnp.array([[g, g]])
    base = jnp.zeros((1, g, g, cfg.data.num_channels), jnp.int32)
    k0 = model.pointer_keys(model.encode(base), hw)
    assert k0.shape == (1, g * g, cfg.model.d_model)
    r, c = 2, 1
    k1 = model.pointer_keys(model.encode(base.at[0, r, c, 0].set(7)), hw)
    changed = np.nonzero(np.abs(np.asarray(k1 - k0)).sum(-1)[0] > 1e-6)[0].tolist()
    same_cell = [p for p in range(g * g) if (p // g) // stride == r // stride and (p % g) // stride == c // stride]
    assert changed == same_cell
    # The logits add the pointer's scores to the head's: with a zero query the head's alone remain.
    n = jax.random.normal(jax.random.key(0), (1, 3, cfg.model.d_model))
    with_keys = model.position_logits(n, k1)
    np.testing.assert_allclose(np.asarray(model.position_logits(n, None)), np.asarray(model.head_position(n)))
    assert not np.allclose(np.asarray(with_keys), np.asarray(model.head_position(n)))
    assert DCTransformer(_cfg(), rngs=nnx.Rngs(0)).pointer_keys(model.encode(base), hw) is None


def test_window_context_reads_the_image_of_every_earlier_token():
    """``model.window_context``: at each chunk step the value decoder's neighbourhood equals the
    dense DCT image of every token before that step (numpy ``dense_dct``), read at the 3x3
    blocks around the target in its plane's grid (4:2:0 chroma: two luma blocks apart)."""
    from dctmodel.chunks import build_chunk
    from dctmodel.data import ArraySource
    from dctmodel.scenes import render_scene
    from dctmodel.tokens import dense_dct

    cfg = _cfg(**{"model.window_context": True, "model.chunk_size": 12, "model.overlap": 5})
    d, m = cfg.data, cfg.model
    model = DCTransformer(cfg, rngs=nnx.Rngs(0))
    src = ArraySource(d, [render_scene(5, i, 16, max_objects=2) for i in range(3)])
    b2 = d.block_size**2
    checked_chroma = 0
    for i in range(3):
        tokens, (hb, wb), _ = src.tokens(i)
        for start in range(0, len(tokens), m.chunk_size):
            ex = build_chunk(
                tokens,
                start,
                m.chunk_size,
                m.overlap,
                hb=hb,
                wb=wb,
                grid=d.grid,
                num_channels=d.num_channels,
                clip=d.clip,
            )
            ov, S = m.overlap, m.overlap + m.chunk_size
            window = model.window(jnp.asarray(ex["inp"])[None], jnp.arange(S))
            tgt = jnp.asarray(ex["tgt"])[None]
            hw = jnp.asarray([[hb, wb]], jnp.int32)
            got = np.asarray(
                model.window_context_values(jnp.asarray(ex["dct"])[None], tgt[..., 0], tgt[..., 1], hw, window)
            )[0]
            for s in range(ov, S):
                k = start + s - ov  # index of the step's target token
                if k >= len(tokens) - 1:
                    break  # the stop token and padding: no value
                c, p, _ = tokens[k]
                img = dense_dct(tokens, k, hb, wb, d.grid, d.num_channels)
                step = 2 if c >= b2 else 1
                r0, q0 = divmod(int(p), wb)
                for n, (dy, dx) in enumerate((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)):
                    r, q = r0 + dy * step, q0 + dx * step
                    want = img[r, q] if 0 <= r < hb and 0 <= q < wb else np.zeros(d.num_channels)
                    np.testing.assert_array_equal(got[s, n], want, err_msg=f"image {i} token {k} offset {n}")
                checked_chroma += int(c >= b2)
    assert checked_chroma > 0  # the two-block step of chroma was exercised


def test_window_pointer_points_at_an_earlier_tokens_block_and_its_neighbours():
    """``model.window_pointer``: one earlier chunk token moves the position logits of exactly
    the 3x3 blocks around its own (two luma blocks apart for 4:2:0 chroma), inside the image,
    and nothing when it is not before the step."""
    cfg = _cfg(**{"model.window_pointer": True})
    d = cfg.data
    model = DCTransformer(cfg, rngs=nnx.Rngs(0))
    g, b2 = d.grid, d.block_size**2
    n = jax.random.normal(jax.random.key(1), (1, 1, cfg.model.d_model))
    hw = jnp.array([[g, g]], jnp.int32)
    for c, (r0, q0) in [(0, (1, 1)), (0, (0, g - 1)), (b2, (2, 2)), (b2 + 1, (0, 0))]:
        tok = jnp.array([[[c, r0 * g + q0, 3]]], jnp.int32)
        got = np.asarray(model.window_pointer_logits(n, hw, (tok, jnp.ones((1, 1), bool))))[0, 0]
        step = 2 if c >= b2 else 1
        want = {
            (r0 + dy * step) * g + q0 + dx * step
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if 0 <= r0 + dy * step < g and 0 <= q0 + dx * step < g
        }
        assert set(np.nonzero(got)[0].tolist()) == want, (c, r0, q0)
        off = model.window_pointer_logits(n, hw, (tok, jnp.zeros((1, 1), bool)))
        assert not np.asarray(off).any()
