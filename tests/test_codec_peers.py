"""The codec against libjpeg: quantisation tables through Pillow, coefficients through jpeglib."""

import io

import numpy as np
import pytest
from PIL import Image

import dctsparse
from helpers import JPEG_ZIGZAG, NATURAL_RGB, natural_image


def test_quant_matrix_equals_libjpeg_tables_for_every_quality():
    img = Image.fromarray(np.zeros((16, 16, 3), np.uint8))
    for q in range(1, 101):
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=q)
        tables = Image.open(io.BytesIO(buf.getvalue())).quantization  # natural order
        np.testing.assert_array_equal(dctsparse.quant_matrix(q, 8, "luma").ravel(), tables[0], err_msg=f"luma q={q}")
        np.testing.assert_array_equal(
            dctsparse.quant_matrix(q, 8, "chroma").ravel(), tables[1], err_msg=f"chroma q={q}"
        )


def test_zigzag_8_is_jpeg_order():
    assert dctsparse.zigzag(8).tolist() == JPEG_ZIGZAG


def natural_order(dct_image_part, rows, cols):
    """(.., 64) zigzag -> (rows, cols, 8, 8) natural order, as jpeglib gives it."""
    inv = np.argsort(dctsparse.zigzag(8))
    return dct_image_part[..., inv].reshape(rows, cols, 8, 8)


@pytest.mark.parametrize("name", NATURAL_RGB)
def test_coefficients_agree_with_libjpeg(name, tmp_path):
    jpeglib = pytest.importorskip("jpeglib")
    img = natural_image(name)
    h, w = (img.shape[0] // 16) * 16, (img.shape[1] // 16) * 16
    img = np.ascontiguousarray(img[:h, :w])
    path = tmp_path / "x.jpg"
    Image.fromarray(img).save(path, quality=75, subsampling=2)  # 2 = 4:2:0
    jpg = jpeglib.read_dct(str(path))
    d = dctsparse.encode(img, block_size=8, quality=75, subsampling="4:2:0").dct_image()
    ours = {
        "Y": natural_order(d[..., :64], h // 8, w // 8),
        "Cb": natural_order(d[::2, ::2, 64:128], h // 16, w // 16),
        "Cr": natural_order(d[::2, ::2, 128:], h // 16, w // 16),
    }
    for plane, mine in ours.items():
        theirs = getattr(jpg, plane).astype(np.int64)
        assert theirs.shape == mine.shape
        # libjpeg uses integer colour conversion and an integer DCT: close, not equal
        assert np.abs(mine - theirs).max() <= 1, plane
        assert (mine == theirs).mean() >= 0.99, plane
    np.testing.assert_array_equal(jpg.qt[0], dctsparse.quant_matrix(75, 8, "luma"))
