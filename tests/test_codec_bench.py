"""The benchmark scripts run (tiny settings) and measure what they claim."""

import numpy as np

from benchmarks import codec, figure3


def test_figure3_sparse_beats_dense_on_scenes():
    c = figure3.curve(figure3.scenes(2, size=96), [10, 50, 90])
    assert all(s < d for s, d in zip(c["sparse"], c["dense"], strict=True))
    assert c["sparse"] == sorted(c["sparse"])  # more quality, more bits


def test_codec_bench_rows_have_every_peer():
    img = np.ascontiguousarray(np.tile(np.arange(64, dtype=np.uint8)[:, None, None], (1, 64, 3)))
    rows = codec.bench_image("ramp", img, (8, 16), (75,), reps=1, with_reference=True)
    assert [r["block_size"] for r in rows] == [8, 16]
    assert "libjpeg-turbo (Pillow) encode" in rows[0] and "numpy reference decode" in rows[0]
    assert all(v > 0 for r in rows for k, v in r.items() if k.endswith(("encode", "decode")))


def test_ab_child_loads_a_core_by_path_and_reports_ratios():
    # The A/B tool's child: a named _core file replaces the package's own,
    # and every block size gets an encode and a decode ratio to libjpeg-turbo.
    import json
    import subprocess
    import sys

    import dctsparse._core as core

    out = subprocess.check_output(
        [
            sys.executable,
            "-m",
            "benchmarks.ab",
            "--child",
            core.__file__,
            "--blocks",
            "8,16",
            "--reps",
            "1",
            "--size",
            "128",
        ],
        text=True,
    )
    ratios = json.loads(out)
    assert set(ratios) == {
        "B8 encode / turbo",
        "B8 decode / turbo",
        "B16 encode / turbo",
        "B16 decode / turbo",
        "B8 encode MP/s",
        "B8 decode MP/s",
        "turbo encode MP/s",
        "turbo decode MP/s",
    }
    assert all(v > 0 for v in ratios.values())


def test_ab_levels_times_one_build_at_two_levels():
    # --levels A,B: both children load the same _core, each with DCTSPARSE_SIMD
    # set to its level; a child refuses a level the machine lacks rather than
    # timing the fallback under the wrong name.
    import os
    import subprocess
    import sys

    import dctsparse._core as core

    args = ["--blocks", "8", "--reps", "1", "--size", "64", "--rounds", "1"]
    r = subprocess.run(
        [sys.executable, "-m", "benchmarks.ab", "--levels", "scalar,scalar", *args],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(f"{core.__file__} at DCTSPARSE_SIMD=scalar") == 2
    assert "B8 encode / turbo" in r.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "benchmarks.ab", "--child", core.__file__, *args[:6]],
        capture_output=True,
        text=True,
        env=dict(os.environ, DCTSPARSE_SIMD="no-such-level"),
    )
    assert bad.returncode != 0 and "DCTSPARSE_SIMD=no-such-level is not available" in bad.stderr


def test_container_size_benchmark_runs_and_matches_the_files(tmp_path):
    # The benchmark measures through dctsparse.bench, the same code as `dctsparse bench`.
    import json
    import subprocess
    import sys

    import dctsparse

    out = tmp_path / "rows.json"
    r = subprocess.run(
        [sys.executable, "-m", "benchmarks.container_size", "--repeat", "1", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "all q=75" in r.stdout
    rows = json.loads(out.read_text())
    assert {r["quality"] for r in rows} == {50, 75, 90}
    row = next(r for r in rows if r["image"] == "chelsea" and r["quality"] == 75)
    import skimage.data

    s = dctsparse.encode(skimage.data.chelsea(), quality=75)
    assert row["dcts_bytes"] == len(s.to_bytes()) and row["coefficients"] == len(s)
