"""benchmarks/model_paired.py: two runs' logged losses paired step by step, and its premise
that settings outside the batch-building ones leave the training batches unchanged."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from benchmarks import model_paired as mp


def _run(path, cfg_changes=None, losses=None):
    from dctmodel.config import get_config, override

    cfg = override(get_config("tiny"), **(cfg_changes or {}))
    path.mkdir()
    (path / "config.json").write_text(json.dumps(dataclasses.asdict(cfg)))
    with open(path / "log.jsonl", "w") as f:
        for step, loss in (losses or {}).items():
            terms = {"nats_channel": loss / 10, "nats_position": loss / 4, "nats_value": loss / 2}
            rec = {"step": step, "loss": loss, **terms}
            f.write(json.dumps(rec) + "\n")
        f.write(json.dumps({"step": 100, "eval_bpd": 0.1}) + "\n")  # an evaluation record: not a training log
    return path


def test_paired_means_and_standard_errors_by_hand(tmp_path, capsys):
    a = _run(tmp_path / "a", losses={20: 2.0, 40: 1.8, 60: 1.6, 80: 1.5})
    b = _run(tmp_path / "b", {"model.d_model": 96}, losses={20: 2.1, 40: 1.8, 60: 1.7, 100: 1.0})
    rows = mp.compare(mp.load_log(a), mp.load_log(b), [0, 50, 100])
    loss = [r for r in rows if r["term"] == "loss"]
    # Window 0-50: steps 20 and 40, differences 0.1 and 0.0; window 50-100: step 60 only
    # (80 and 100 were logged by one run each).
    assert [r["logs"] for r in loss] == [2, 1]
    assert loss[0]["a"] == pytest.approx(1.9) and loss[0]["b"] == pytest.approx(1.95)
    assert loss[0]["b_minus_a"] == pytest.approx(0.05)
    assert loss[0]["stderr"] == pytest.approx(math.sqrt((0.05**2 + 0.05**2) / 1 / 2))
    assert loss[1]["b_minus_a"] == pytest.approx(0.1) and math.isnan(loss[1]["stderr"])
    value = [r for r in rows if r["term"] == "nats_value"]
    assert value[0]["b_minus_a"] == pytest.approx(0.025)

    assert mp.main([str(a), str(b), "--windows", "0", "50", "100"]) == 0  # d_model does not change batches
    assert "0-50 | 2 | loss | 1.9000 | 1.9500 | +0.0500 +- 0.0500" in capsys.readouterr().out


def test_runs_with_other_batches_are_refused(tmp_path, capsys):
    a = _run(tmp_path / "a", losses={20: 2.0})
    b = _run(tmp_path / "b", {"model.chunk_size": 32, "train.seed": 1}, losses={20: 2.0})
    assert mp.main([str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert "model.chunk_size: 16 vs 32" in err and "train.seed: 0 vs 1" in err
    assert mp.main([str(a), str(b), "--force", "--windows", "0", "50"]) == 0


@pytest.mark.parametrize(
    "changes, same",
    [
        ({"model.d_model": 96, "model.window_context": False, "train.learning_rate": 1e-3}, True),
        ({"train.adam_b2": 0.95, "train.total_tokens": 16 * 16 * 100, "train.micro_batch": 4}, True),
        ({"model.chunk_size": 32}, False),
        ({"train.seed": 1}, False),
        ({"data.quality": 75}, False),
    ],
)
def test_batches_depend_only_on_the_settings_the_script_compares(changes, same):
    """The premise: a variant that keeps the compared settings trains on the same batches."""
    from dctmodel.config import get_config, override
    from dctmodel.data import make_source, sample_batch

    ref = get_config("tiny")
    var = override(ref, **changes)
    settings = [mp.batch_settings(dataclasses.asdict(c)) for c in (ref, var)]
    compared_differ = bool(mp.differing(*settings))
    assert compared_differ == (not same)
    src_a, src_b = make_source(ref.data, "train"), make_source(var.data, "train")
    for step in (0, 7):
        ba, bb = sample_batch(ref, src_a, ref.train.seed, step), sample_batch(var, src_b, var.train.seed, step)
        equal = ba.keys() == bb.keys() and all(ba[k].shape == bb[k].shape and np.array_equal(ba[k], bb[k]) for k in ba)
        assert equal == same
