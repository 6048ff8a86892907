"""Modelling fixes found by reviewing the model against the paper: the position head knows the
image's grid (D2), the value decoder can tell apart the blocks of one downsampled cell (D4), and
the residual stream stays float32 under bf16 (D5).  Each test fails on the model before the fix."""

import subprocess
import sys

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402

from dctmodel.config import get_config, override  # noqa: E402
from dctmodel.model import DCTransformer  # noqa: E402


def _first_step(cfg, hw, tgt_pos=0):
    """A batch of one window whose first step starts a sequence (BOS input)."""
    S = cfg.model.overlap + cfg.model.chunk_size
    nch = cfg.data.num_channels
    inp = np.tile(np.array([nch + 2, 0, 2 * cfg.data.clip], np.int32), (1, S, 1))
    inp[0, cfg.model.overlap] = (nch + 1, 0, 2 * cfg.data.clip)
    tgt = np.zeros((1, S, 3), np.int32)
    tgt[0, :, 1] = tgt_pos
    G = cfg.data.grid
    return dict(dct=np.zeros((1, G, G, nch), np.int32), inp=inp, tgt=tgt, hw=np.array([hw], np.int32))


def test_position_logits_depend_on_the_images_block_grid():
    """Position class 5 is block (1, 1) of a 4x4 grid and block (2, 1) of a 4x2 one: the first
    position logits must differ between the two (before the fix nothing the model saw carried
    (Hb, Wb) and they were identical)."""
    cfg = get_config("micro")  # 16 px, B=4 -> 4x4 grid
    model = DCTransformer(cfg, rngs=nnx.Rngs(0))
    ov = cfg.model.overlap
    a = model(_first_step(cfg, (4, 4)), structure_masks=False)[1][0, ov]
    b = model(_first_step(cfg, (4, 2)), structure_masks=False)[1][0, ov]
    assert float(jnp.abs(a - b).max()) > 1e-3


def _set_alphas(model, value):
    for path, p in nnx.iter_graph(model):
        if isinstance(p, nnx.Param) and path and path[-1] == "alpha":
            p[...] = jnp.full((), value, jnp.float32)


@pytest.mark.parametrize("value_position", [False, True])
def test_value_decoder_tells_apart_the_blocks_of_one_downsampled_cell(value_position):
    """With stride 2, blocks 0 and 1 (row 0, columns 0 and 1) share one encoder cell.  Without
    the next position's embedding their value logits are identical (the decoder cannot know which
    block it is writing); ``model.value_position`` adds it and they differ."""
    cfg = override(
        get_config("micro"),
        **{"model.downsample_kernel": 2, "model.downsample_stride": 2, "model.value_position": value_position},
    )
    model = DCTransformer(cfg, rngs=nnx.Rngs(1))
    _set_alphas(model, 0.5)
    ov = cfg.model.overlap
    v0 = model(_first_step(cfg, (4, 4), tgt_pos=0), structure_masks=False)[2][0, ov]
    v1 = model(_first_step(cfg, (4, 4), tgt_pos=1), structure_masks=False)[2][0, ov]
    differ = float(jnp.abs(v0 - v1).max()) > 1e-4
    assert differ == value_position


def test_residual_stream_is_float32_under_bf16():
    """Under ``train.bf16`` the matmuls run in bfloat16 but the residual stream stays float32: a
    ReZero-scaled update of 1e-3 relative size survives (bfloat16 keeps 8 bits of mantissa, so
    it would round away)."""
    cfg = override(get_config("micro"), **{"train.bf16": True})
    model = DCTransformer(cfg, rngs=nnx.Rngs(2))
    stack = model.channel_decoder
    h = jnp.full((1, 3, cfg.model.d_model), 1.0, jnp.float32) + jnp.arange(cfg.model.d_model) * 1e-2
    ctx = jnp.ones((1, 4, cfg.model.d_model), jnp.float32)
    _set_alphas(stack, 0.0)
    out0, _ = stack(h, ctx, deterministic=True)
    assert out0.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(out0), np.asarray(h))
    _set_alphas(stack, 1e-3)
    out1, norm = stack(h, ctx, deterministic=True)
    assert out1.dtype == jnp.float32 and norm.dtype == jnp.float32
    assert float(jnp.abs(out1 - h).max()) > 0  # the small updates were kept
    # The matmuls themselves run in bfloat16.
    assert stack.layers[0].f.q(h).dtype == jnp.bfloat16
    assert (
        model.encode(jnp.zeros((1, cfg.data.grid, cfg.data.grid, cfg.data.num_channels), jnp.int32)).dtype
        == jnp.float32
    )


def test_sample_cli_size_flag(micro_run, tmp_path):
    """``--size HxW`` samples images of that size (the grid given to the sampler and the decoder);
    a side larger than the model's image_size is one clear error."""
    _, _, _, _, wd = micro_run
    out = tmp_path / "g.png"
    r = subprocess.run(
        [sys.executable, "-m", "dctmodel.sample", "--workdir", wd, "--num", "2", "--size", "16x8", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "g_tokens" / "batch_00000.npz") as z:
        toks = z["tokens"]
    body = toks[toks[:, 0] < 48]
    assert len(body) and body[:, 1].max() < 4 * 2  # a 16x8 image has a 4x2 block grid
    from PIL import Image

    assert Image.open(out).size == (8 + 2 + 8, 16)  # two 16x8 samples side by side, a 2 px gap


def test_sample_size_flag_is_checked(micro_run, tmp_path):
    _, _, _, _, wd = micro_run
    for bad, msg in (("64x8", "at most the model's image_size=16"), ("16by8", "HEIGHTxWIDTH")):
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "dctmodel.sample",
                "--workdir",
                wd,
                "--num",
                "1",
                "--size",
                bad,
                "--out",
                str(tmp_path / "x.png"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert r.returncode == 2 and msg in r.stderr, r.stderr
