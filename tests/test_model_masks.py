"""Structure-aware masks on real dctsparse sequences: never mask the true next token, and do mask."""

import pytest

pytest.importorskip("jax")

import jax.numpy as jnp
import numpy as np
import skimage.data

import dctsparse
from dctmodel import masks as M
from dctmodel.chunks import build_chunk, num_chunks
from dctmodel.config import DataConfig
from dctmodel.scenes import render_scene
from dctmodel.tokens import grid_of


def _images():
    yield "scene", render_scene(3, 1, 48)
    yield "scene_wide", render_scene(4, 2, 56, height=24)
    yield "astronaut", skimage.data.astronaut()[100:160:2, 150:250:2]  # 30 x 50, odd padding
    yield "chelsea", skimage.data.chelsea()[::12, ::12]
    yield "coffee", skimage.data.coffee()[::10, ::10]


SETTINGS = [
    dict(block_size=8, quality=75, subsampling="4:2:0", order="frequency"),
    dict(block_size=4, quality=90, subsampling="4:2:0", order="luma_first"),
    dict(block_size=4, quality=60, subsampling="4:4:4", order="frequency"),
    dict(block_size=8, quality=95, subsampling="4:4:4", order="luma_first"),
]


def _check(tokens, data: DataConfig, hw, chunk=24, overlap=8):
    """Assert the true target is allowed at every weighted step; return the masked fractions."""
    t = M.MaskTables(
        order=data.order, planes=data.planes, block_size=data.block_size, subsampling=data.subsampling, grid=data.grid
    )
    nch = data.num_channels
    fractions = []
    for k in range(num_chunks(len(tokens), chunk)):
        ex = build_chunk(
            tokens, k * chunk, chunk, overlap, hb=hw[0], wb=hw[1], grid=data.grid, num_channels=nch, clip=data.clip
        )
        inp, tgt, hwa = jnp.asarray(ex["inp"])[None], jnp.asarray(ex["tgt"])[None], jnp.asarray(ex["hw"])[None]
        cm = np.asarray(M.channel_mask(t, inp, hwa))[0]
        pm = np.asarray(M.position_mask(t, inp, tgt[..., 0], hwa))[0]
        w = ex["weight"] > 0
        s = np.nonzero(w)[0]
        assert cm[s, ex["tgt"][s, 0]].all(), "a true next channel was masked"
        real = s[ex["tgt"][s, 0] < nch]
        assert pm[real, ex["tgt"][real, 1]].all(), "a true next position was masked"
        fractions.append((1 - cm[s].mean(), 1 - pm[real].mean() if real.size else 0.0))
    return np.array(fractions)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: f"B{s['block_size']}-{s['subsampling']}-{s['order']}")
def test_masks_never_mask_true_token(setting):
    masked = []
    for _name, img in _images():
        # No codec clipping; a value vocabulary wide enough for any B <= 8 coefficient.
        data = DataConfig(image_size=64, clip=2048, **setting)
        s = dctsparse.encode(img, **setting)
        toks = np.asarray(s.tokens(), np.int32)
        hw = grid_of(img.shape[0], img.shape[1], data.block_size, data.subsampling, 3)
        assert s.dct_image().shape[:2] == hw
        masked.append(_check(toks, data, hw))
    fr = np.concatenate(masked)
    # The masks are not vacuous: on average they rule out a good share of both vocabularies.
    assert fr[:, 0].mean() > 0.1 and fr[:, 1].mean() > 0.1


def test_masks_greyscale():
    img = skimage.data.camera()[::7, ::9]  # 74 x 57: padding on both sides
    data = DataConfig(image_size=80, block_size=8, quality=75, grey=True, clip=2048)
    s = dctsparse.encode(img, block_size=8, quality=75)
    hw = grid_of(*img.shape, 8, "4:2:0", 1)
    assert s.dct_image().shape == hw + (64,)
    fr = _check(np.asarray(s.tokens(), np.int32), data, hw)
    assert fr[:, 0].mean() > 0.2


def test_masks_rules_on_handmade_tokens():
    # B=2, 4:2:0: channels 0-3 luma, 4-7 Cb, 8-11 Cr; frequency order 0,4,8,1,5,9,...
    t = M.MaskTables(order="frequency", planes=3, block_size=2, subsampling="4:2:0", grid=4)
    hw = jnp.array([[4, 4]])
    prev = jnp.array([[[4, 5, 0], [13, 0, 0]]])  # previous: Cb_0 at position 5; BOS
    cm = np.asarray(M.channel_mask(t, prev, hw))[0]
    assert not cm[0, 0]  # Y_0 comes before Cb_0
    assert cm[0, 4] and cm[0, 8] and cm[0, 1] and cm[0, 12]  # same, later, stop
    assert cm[1].all()  # after BOS anything
    c_next = jnp.array([[4, 8]])
    pm = np.asarray(M.position_mask(t, prev, c_next, hw))[0]
    # Cb after Cb@5: positions > 5 with even row and column: (2,0)=8 and (2,2)=10.
    assert np.nonzero(pm[0])[0].tolist() == [8, 10]
    # Cr_0 fresh: even rows/cols of the 4x4 grid.
    assert np.nonzero(pm[1])[0].tolist() == [0, 2, 8, 10]
    # Cb_0 at the last even position (10): staying in Cb_0 is impossible.
    cm = np.asarray(M.channel_mask(t, jnp.array([[[4, 10, 0]]]), hw))[0, 0]
    assert not cm[4] and cm[8]
