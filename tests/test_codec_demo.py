"""The README's first command: the demo runs and writes what it says."""

import subprocess
import sys

import numpy as np
from PIL import Image

from dctsparse import demo


def test_demo_cli_writes_table_and_strip(tmp_path):
    out = tmp_path / "strip.png"
    r = subprocess.run(
        [sys.executable, "-m", "dctsparse", "demo", "--out", str(out)], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    assert "sparse bps" in r.stdout and "PSNR" in r.stdout
    rows = [line.split() for line in r.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 12
    # sparse is smaller than dense at these qualities, and PSNR grows with q
    for _b, _q, _n, dense, sparse, *_ in rows:
        assert float(sparse) < float(dense)
    psnrs = [float(r[5]) for r in rows if r[0] == "8"]
    assert psnrs == sorted(psnrs)
    strip = np.asarray(Image.open(out))
    assert strip.shape == (512, 6 * 512 + 5 * 4, 3)


def test_progressive_strip_ends_with_full_decode():
    img, _ = demo.load_image("chelsea")
    strip = demo.progressive_strip(img[:64, :64], fractions=(0.0, 1.0))
    import dctsparse

    np.testing.assert_array_equal(strip[:, -64:], dctsparse.decode(dctsparse.encode(img[:64, :64])))
    # the empty prefix decodes to mid-grey (all coefficients zero -> Y = 128)
    assert np.all(strip[:, :64] == 128)


def test_bad_command_exits_nonzero():
    r = subprocess.run(
        [sys.executable, "-m", "dctsparse", "demo", "--image", "nope"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode != 0 and "error" in r.stderr
    assert "Traceback" not in r.stderr
