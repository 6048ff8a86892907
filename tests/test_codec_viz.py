"""dctsparse.viz: the pictures of the CLI, the demo, the sampler and the benchmarks."""

from __future__ import annotations

import numpy as np
import pytest

import dctsparse
from dctsparse import viz
from helpers import natural_image

IMG = np.ascontiguousarray(natural_image("chelsea")[:70, :90])


def test_colormap_runs_dark_to_bright_between_its_anchors():
    x = np.linspace(0, 1, 101).reshape(1, 101)
    c = viz.colormap(x)
    assert c.shape == (1, 101, 3) and c.dtype == np.uint8
    assert c[0, 0].tolist() == [0, 0, 4] and c[0, -1].tolist() == [252, 255, 164]
    luminance = c[0].astype(float) @ [0.299, 0.587, 0.114]
    assert (np.diff(luminance) >= 0).all()
    # outside [0, 1] clips to the ends; a scalar gives one colour
    np.testing.assert_array_equal(viz.colormap(np.array([-3.0, 7.0])), c[0, [0, -1]])
    assert viz.colormap(0.5).shape == (3,)
    with pytest.raises(ValueError, match="NaN"):
        viz.colormap(np.array([0.2, np.nan]))


def test_block_counts_and_location_heatmap():
    counts = viz.block_counts(np.array([1, 1, 1, 1, 11]), (4, 4))
    assert counts.dtype == np.float64 and counts.shape == (4, 4)
    assert counts[0, 1] == 4 and counts[2, 3] == 1 and counts.sum() == 5
    hm = viz.location_heatmap(counts, 4, 16, 16)
    assert hm.shape == (16, 16, 3) and hm.dtype == np.uint8
    for r in range(4):
        for c in range(4):
            block = hm[4 * r : 4 * r + 4, 4 * c : 4 * c + 4].reshape(-1, 3)
            assert (block == viz.colormap(counts[r, c] / 4)).all(), (r, c)
    # cropped to the image; by default the whole grid
    np.testing.assert_array_equal(viz.location_heatmap(counts, 4, 14, 9), hm[:14, :9])
    np.testing.assert_array_equal(viz.location_heatmap(counts, 4), hm)
    # log scale: log1p(count) / log1p(max)
    np.testing.assert_array_equal(
        viz.location_heatmap(counts, 4, log=True)[8, 12], viz.colormap(np.log1p(1) / np.log1p(4))
    )
    # no coefficients at all: every block the darkest colour, no division by zero
    assert (viz.location_heatmap(np.zeros((2, 3)), 2) == viz.colormap(0.0)).all()
    with pytest.raises(ValueError, match=r"positions must lie in 0\.\.15"):
        viz.block_counts(np.array([16]), (4, 4))
    with pytest.raises(ValueError, match="integer"):
        viz.block_counts(np.array([1.0]), (4, 4))


def test_frequency_panels_put_each_channel_at_its_natural_place():
    b = 4
    zz = dctsparse.zigzag(b)
    counts = np.zeros(3 * b * b, np.int64)
    counts[5] = 7  # Y, zigzag index 5
    counts[b * b + 2] = 7  # Cb, zigzag index 2
    im = viz.frequency_panels(counts, b, cell=2)
    gap = 2
    assert im.shape == (b * 2, 3 * b * 2 + 2 * gap, 3)
    hot = viz.colormap(1.0)
    cells = im[::2, ::2]  # one pixel per coefficient (and gap columns at odd steps)
    y = cells[:, :b]
    cb = im[::2, b * 2 + gap :: 2][:, :b]
    r, c = divmod(int(zz[5]), b)
    assert (y[r, c] == hot).all() and (y.reshape(-1, 3) == hot).all(-1).sum() == 1
    r, c = divmod(int(zz[2]), b)
    assert (cb[r, c] == hot).all()
    assert (im[:, b * 2 : b * 2 + gap] == 255).all()  # white gap between the planes
    with pytest.raises(ValueError, match="multiple of 16"):
        viz.frequency_panels(np.zeros(17), b)


def test_coefficient_heatmap_counts():
    """Brightest block = the block with most coefficients; frequency panel ordered like counts."""
    s = dctsparse.encode(IMG[..., 0], block_size=8, subsampling="4:4:4")
    hm = viz.coefficient_heatmap(s, scale=1)
    per_block = np.bincount(s.position, minlength=np.prod(s.grid)).reshape(s.grid)
    left = hm[:70, :90].astype(int).sum(-1)
    r, c = np.unravel_index(per_block.argmax(), per_block.shape)
    assert left[r * 8, c * 8] == left.max()
    freq = hm[:8, 90 + 8 : 90 + 16].astype(int).sum(-1)  # the one plane, 1 px per coefficient
    assert freq[0, 0] == freq.max()  # DC is in every block
    assert (hm[:, 90:98] == 255).all()


def test_coefficient_heatmap_spreads_420_chroma_over_its_four_luma_blocks():
    # One luma and one Cb coefficient at block (0, 0) of a 4:2:0 grid: the Cb
    # block covers luma blocks (0..1, 0..1), a quarter count each.
    s = dctsparse.SparseDCT([0, 16], [0, 0], [5, 3], height=16, width=16, block_size=4)
    hm = viz.coefficient_heatmap(s, scale=1)
    top = np.log1p(1.25)
    want = {(0, 0): np.log1p(1.25) / top, (0, 1): np.log1p(0.25) / top, (1, 1): np.log1p(0.25) / top, (2, 2): 0.0}
    for (r, c), x in want.items():
        assert (hm[4 * r, 4 * c] == viz.colormap(x)).all(), (r, c)


def test_cuts():
    assert viz.fraction_cuts(10, [0, 0.25, 0.5, 1]) == [0, 2, 5, 10]  # round half to even
    assert viz.step_cuts(10, 4) == [2, 5, 8, 10]
    assert viz.step_cuts(10, 2, start=4) == [7, 10]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        viz.fraction_cuts(10, [1.5])
    with pytest.raises(ValueError, match="start"):
        viz.step_cuts(10, 2, start=11)


def test_progressive_strip_frames_gaps_and_full_decode():
    s = dctsparse.encode(IMG)
    cuts = viz.fraction_cuts(len(s), [0, 0.5, 1])
    strip = viz.progressive_strip(s, cuts)
    assert strip.shape == (70, 3 * 90 + 2 * 4, 3) and strip.dtype == np.uint8
    assert np.all(strip[:, :90] == 128)  # the empty prefix: every coefficient zero, mid-grey
    np.testing.assert_array_equal(strip[:, 94:184], dctsparse.decode(s[: cuts[1]]))
    np.testing.assert_array_equal(strip[:, -90:], dctsparse.decode(s))
    assert (strip[:, 90:94] == 255).all() and (strip[:, 184:188] == 255).all()
    # a function of the prefix length gives the same strip; gap=0 leaves no gaps
    same = viz.progressive_strip(lambda n: dctsparse.decode(s[:n]), cuts)
    np.testing.assert_array_equal(same, strip)
    tight = viz.progressive_strip(s, viz.step_cuts(len(s), 5), gap=0)
    assert tight.shape == (70, 5 * 90, 3)
    np.testing.assert_array_equal(tight[:, -90:], dctsparse.decode(s))
    # greyscale frames stay (H, W)
    g = dctsparse.encode(IMG[..., 1])
    assert viz.progressive_strip(g, [0, len(g)]).shape == (70, 2 * 90 + 4)
    with pytest.raises(ValueError, match="height"):
        viz.progressive_strip(lambda n: np.zeros((n + 1, 2), np.uint8), [1, 2])
    with pytest.raises(TypeError, match="SparseDCT or a function"):
        viz.progressive_strip(IMG, [1])


def test_image_grid_layout_and_padding():
    ims = [np.full((3, 5, 3), 10 * (i + 1), np.uint8) for i in range(5)]
    ims[4] = np.full((3, 5), 50, np.uint8)  # greyscale joins as RGB
    g = viz.image_grid(ims, cols=2, pad=1)
    assert g.shape == (3 * 4 - 1, 2 * 6 - 1, 3) and g.dtype == np.uint8
    for i in range(5):
        r, c = divmod(i, 2)
        assert (g[4 * r : 4 * r + 3, 6 * c : 6 * c + 5] == 10 * (i + 1)).all(), i
    assert (g[3] == 255).all() and (g[7] == 255).all()  # pad rows between image rows
    assert (g[:, 5] == 255).all()  # pad column between image columns
    assert (g[8:, 6:] == 255).all()  # the last row's empty cell
    # no pad: the images tile exactly
    t = viz.image_grid(ims[:4], cols=4, pad=0)
    np.testing.assert_array_equal(t, np.concatenate(ims[:4], axis=1))
    with pytest.raises(ValueError, match="one size"):
        viz.image_grid([ims[0], np.zeros((4, 5, 3), np.uint8)], cols=2)
    with pytest.raises(ValueError, match="at least one"):
        viz.image_grid([], cols=2)
    with pytest.raises(ValueError, match="cols >= 1"):
        viz.image_grid(ims, cols=0)
