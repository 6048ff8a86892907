"""The NumPy reference against independent expectations (formulas, standards)."""

import numpy as np
import pytest

from dctsparse import reference as R
from helpers import JPEG_ZIGZAG


def test_zigzag_8_is_jpeg_order():
    assert R.zigzag(8).tolist() == JPEG_ZIGZAG


@pytest.mark.parametrize("b", range(2, 65))
def test_zigzag_walks_antidiagonals_alternating(b):
    z = R.zigzag(b)
    assert sorted(z.tolist()) == list(range(b * b))
    rows, cols = z // b, z % b
    s = rows + cols
    assert np.all(np.diff(s) >= 0)
    for d in range(2 * b - 1):
        r = rows[s == d]
        step = np.diff(r)
        # even anti-diagonals go from the largest row up, odd ones down
        assert np.all(step == (-1 if d % 2 == 0 else 1))


@pytest.mark.parametrize("b", [2, 3, 5, 8, 16, 17, 32, 64])
def test_dct_matrix_is_orthonormal_and_matches_formula(b):
    c = R.dct_matrix(b)
    np.testing.assert_allclose(c @ c.T, np.eye(b), atol=1e-12)
    # element by element from SPEC section 3
    for u in range(b):
        for x in range(b):
            a = 1 / np.sqrt(2) if u == 0 else 1.0
            assert c[u, x] == pytest.approx(a * np.sqrt(2 / b) * np.cos((2 * x + 1) * u * np.pi / (2 * b)))


def test_block_dct_constant_block_is_dc_only():
    plane = np.full((16, 24), 7.0)
    d = R.block_dct(plane, 8)
    assert d.shape == (2, 3, 8, 8)
    np.testing.assert_allclose(d[..., 0, 0], 8 * 7.0)
    d[..., 0, 0] = 0
    np.testing.assert_allclose(d, 0, atol=1e-12)


def test_block_dct_inverts():
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(30, 45))
    np.testing.assert_allclose(R.block_idct(R.block_dct(plane, 15)), plane, atol=1e-10)


def test_quant_matrix_resize_rule_by_hand():
    # B = 4: s(i) = ((2i+1)*4) div 4 = 1, 3, 5, 7
    q = R.quant_matrix(50, 4)
    np.testing.assert_array_equal(q, R.T_LUMA[np.ix_([1, 3, 5, 7], [1, 3, 5, 7])])
    # B = 16: s(i) = (2i+1) div 4 -> 0,0,1,1,2,2,...,7,7
    q = R.quant_matrix(50, 16, "chroma")
    np.testing.assert_array_equal(q, np.repeat(np.repeat(R.T_CHROMA, 2, 0), 2, 1))


def test_quant_matrix_scaling_edges():
    assert R.quant_matrix(100, 8).max() == 1  # scale 0 -> clamped to 1
    assert R.quant_matrix(1, 8).max() == 255  # scale 5000 -> clamped to 255
    # q = 25: scale = 200, Q = (200 T + 50) div 100 = 2T for T in the table
    np.testing.assert_array_equal(R.quant_matrix(25, 8), np.minimum(2 * R.T_LUMA, 255))


def test_round_half_away_from_zero():
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49999999, -0.49999999])
    assert R.round_half_away(x).tolist() == [-3, -2, -1, 1, 2, 3, 0, 0]


def test_color_matrices_invert():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)
    np.testing.assert_array_equal(R.ycbcr_to_rgb(R.rgb_to_ycbcr(rgb)), rgb)


def test_order_sequences():
    b = 2
    assert R.channel_sequence("frequency", 3, b).tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    assert R.channel_sequence("luma_first", 3, b).tolist() == [0, 1, 2, 3, 4, 8, 5, 9, 6, 10, 7, 11]
    assert R.channel_sequence("luma_first", 1, b).tolist() == [0, 1, 2, 3]


def test_spec_page_tables_are_the_codes_tables():
    """docs/spec.md section 4 prints the base tables; at q = 50 (scale 100) they are Q itself."""
    from pathlib import Path

    import dctsparse

    text = (Path(__file__).parent.parent / "docs" / "spec.md").read_text()
    section = text[text.index("## 4. Quantisation") : text.index("## 5.")]
    rows = [
        line.split()
        for line in section.splitlines()
        if len(line.split()) == 16 and all(w.isdigit() for w in line.split())
    ]
    table = np.array(rows, dtype=np.int64)
    assert table.shape == (8, 16)
    np.testing.assert_array_equal(table[:, :8], R.T_LUMA)
    np.testing.assert_array_equal(table[:, 8:], R.T_CHROMA)
    np.testing.assert_array_equal(dctsparse.quant_matrix(50, 8, "luma"), R.T_LUMA)
    np.testing.assert_array_equal(dctsparse.quant_matrix(50, 8, "chroma"), R.T_CHROMA)


def test_to_list_refuses_a_channel_count_no_block_size_gives():
    with pytest.raises(ValueError, match=r"B\*B or 3\*B\*B channels"):
        R.to_list(np.zeros((2, 2, 7), np.int32), "frequency")
