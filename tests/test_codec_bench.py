"""The benchmark scripts run (tiny settings) and measure what they claim."""

import numpy as np

from benchmarks import codec, figure3


def test_figure3_sparse_beats_dense_on_scenes():
    c = figure3.curve(figure3.scenes(2, size=96), [10, 50, 90])
    assert all(s < d for s, d in zip(c["sparse"], c["dense"]))
    assert c["sparse"] == sorted(c["sparse"])  # more quality, more bits


def test_codec_bench_rows_have_every_peer():
    img = np.ascontiguousarray(np.tile(np.arange(64, dtype=np.uint8)[:, None, None], (1, 64, 3)))
    rows = codec.bench_image("ramp", img, (8, 16), (75,), reps=1, with_reference=True)
    assert [r["block_size"] for r in rows] == [8, 16]
    assert "libjpeg-turbo (Pillow) encode" in rows[0] and "numpy reference decode" in rows[0]
    assert all(v > 0 for r in rows for k, v in r.items() if k.endswith(("encode", "decode")))
