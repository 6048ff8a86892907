"""Damaged checkpoints: a resume and the sampler use the newest readable step, say in one line which
step was unreadable and why, and keep the damaged files; a step asked for by path, or a folder with
no readable step, is a one-line error naming it.  (HR-VQVAE's case is in test_hrvqvae.py.)"""

from __future__ import annotations

import gc
import os
import shutil
import sys
import time

import numpy as np
import pytest

pytest.importorskip("jax")
# orbax leaves a failed restore's other reads running; they must not surface later as noise.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")

import jax  # noqa: E402

from dctmodel import checkpoint as ckpt  # noqa: E402
from dctmodel.config import get_config, override  # noqa: E402
from dctmodel.data import ArraySource  # noqa: E402
from dctmodel.scenes import render_scene  # noqa: E402
from dctmodel.train import train  # noqa: E402
from dctmodel.train.loop import checkpoint_layout  # noqa: E402
from helpers import CHECKPOINT_DAMAGE, damage_arrays_truncated, damage_manifest_deleted, snapshot  # noqa: E402


def _lines_naming(err, step):
    return [line for line in err.splitlines() if f"step {step} " in line]


def _assert_same(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# ------------------------------------------------------------------ DCTransformer: resume


SETS = {
    "train.total_tokens": 8 * 32 * 6,
    "train.log_every": 2,
    "train.checkpoint_every": 2,
    "train.length_filter_lmax": 60,
}


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory):
    """``(cfg, source, final state, workdir)`` of 6 uninterrupted steps of ``micro``; the workdir keeps
    checkpoints 4 and 6, so a resume without step 6 redoes steps 5-6 and saves step 6 again."""
    cfg = override(get_config("micro"), **SETS)
    src = ArraySource(cfg.data, [render_scene(5, i, 16, max_objects=2) for i in range(6)])
    wd = str(tmp_path_factory.mktemp("ckpt") / "full")
    full, _ = train(cfg, wd, source=src, eval_source=src, progress=False, do_eval=False)
    assert sorted(os.listdir(os.path.join(wd, "checkpoints"))) == ["4", "6"]
    return cfg, src, full, wd


@pytest.mark.parametrize("kind", list(CHECKPOINT_DAMAGE))
def test_resume_skips_a_damaged_newest_step(micro_run, kind, tmp_path, capsys, caplog):
    cfg, src, full, done = micro_run
    damage, reason = CHECKPOINT_DAMAGE[kind]
    wd, ckpts = str(tmp_path / "run"), str(tmp_path / "run" / "checkpoints")
    shutil.copytree(done, wd)
    damage(os.path.join(ckpts, "6"))
    damaged = snapshot(os.path.join(ckpts, "6"))
    capsys.readouterr()

    res, records = train(cfg, wd, source=src, eval_source=src, progress=False, do_eval=False, resume=True)
    gc.collect()  # orphaned reads of the failed restore, if any, would report now, inside this test

    # Resumed from step 4 (this call's first record is step 6's) and ended as the uninterrupted run.
    assert [r["step"] for r in records] == [6] and int(res["step"]) == 6
    _assert_same(res, full)
    # One line says which step was unreadable, why, where it went and which step is tried next.
    (line,) = _lines_naming(capsys.readouterr().err, 6)
    assert line.startswith(f"resume: checkpoint step 6 in {ckpts} is unreadable (")
    assert reason in line and line.endswith("; trying step 4")
    # And orbax adds no lines of its own about it ("Task exception was never retrieved", "Metadata file ...").
    assert not [
        r.getMessage() for r in caplog.records if r.name == "asyncio" or os.path.join(ckpts, "6") in r.getMessage()
    ]
    # The damaged files are all still there, beside the steps this run saved (6 again).
    (aside,) = [d for d in os.listdir(ckpts) if d.startswith("6.unreadable-")]
    assert f", moved aside to {aside};" in line
    assert snapshot(os.path.join(ckpts, aside)) == damaged
    mngr = ckpt.open_manager(wd, keep=2)
    try:
        assert ckpt.saved_steps(mngr) == [4, 6]
        saved = checkpoint_layout(full)  # the optimiser's moments per parameter (optim.per_parameter)
        _assert_same(ckpt.restore(mngr, like=saved, step=6), saved)
    finally:
        mngr.close()


def test_no_readable_step_is_a_one_line_error_and_nothing_moves(micro_run, tmp_path, capsys):
    from dctmodel.train.cli import main

    cfg, src, _, done = micro_run
    wd, ckpts = str(tmp_path / "run"), str(tmp_path / "run" / "checkpoints")
    shutil.copytree(done, wd)
    damage_arrays_truncated(os.path.join(ckpts, "6"))
    damage_manifest_deleted(os.path.join(ckpts, "4"))
    before = snapshot(wd)
    expected = r"^no readable checkpoint in .*/checkpoints: step 6: .*; step 4: default/manifest.ocdbt \(the OCDBT"
    with pytest.raises(ckpt.UnreadableCheckpoint, match=expected):
        train(cfg, wd, source=src, eval_source=src, progress=False, do_eval=False, resume=True)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(
            ["--config", "micro", "--workdir", wd, "--resume", "--no-eval", "--set"]
            + [f"{k}={v}" for k, v in SETS.items()]
        )
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [s for s in err.splitlines() if "checkpoint" in s]
    assert line.startswith(f"python -m dctmodel.train: error: no readable checkpoint in {ckpts}: step 6: ")
    assert snapshot(wd) == before  # config.json rewritten with the same content; nothing moved


def test_a_failed_restore_leaves_no_reads_behind(tmp_path, monkeypatch):
    # orbax closes its event loop when one read fails, the others still running; left so, each later
    # prints a traceback ("Event loop is closed", "Exception ignored in <coroutine ...>") long after
    # the one-line report.  64 MB of arrays keep reads in flight when the first truncated one fails.
    rng = np.random.default_rng(0)
    mngr = ckpt.open_manager(str(tmp_path), keep=1)
    try:  # random, so that the arrays do not compress to nothing
        ckpt.save(mngr, 1, {f"a{i}": rng.standard_normal((1024, 1024), np.float32) for i in range(16)})
        damage_arrays_truncated(str(tmp_path / "checkpoints" / "1"))
        ignored = []
        monkeypatch.setattr(sys, "unraisablehook", ignored.append)
        with pytest.raises(ckpt.UnreadableCheckpoint, match=r"^checkpoint step 1 in .* is unreadable \(.*Error read"):
            ckpt.restore(mngr, step=1)
        gc.collect()
        time.sleep(0.5)  # for reads that would still call back into the closed loop
        gc.collect()
        assert [repr(u.exc_value) for u in ignored] == []
    finally:
        mngr.close()


# ------------------------------------------------------------------ sampling CLI


def test_sampler_uses_the_newest_readable_step_and_refuses_a_damaged_one_named(micro_run, tmp_path, capsys):
    from dctmodel.sample import main

    done = micro_run[3]
    wd, ckpts = str(tmp_path / "run"), str(tmp_path / "run" / "checkpoints")
    shutil.copytree(done, wd)
    damage_arrays_truncated(os.path.join(ckpts, "6"))
    damaged = snapshot(wd)
    capsys.readouterr()
    main(["--workdir", wd, "--num", "1", "--max-chunks", "2", "--out", str(tmp_path / "s.png")])
    captured = capsys.readouterr()
    (line,) = _lines_naming(captured.err, 6)
    assert line.startswith(f"sample: checkpoint step 6 in {ckpts} is unreadable (")
    assert "Error reading" in line and line.endswith("; trying step 4") and "moved" not in line
    assert captured.out.startswith("checkpoint step 4:")
    # Asked for by path, the damaged step is an error naming it, not a fallback.
    with pytest.raises(SystemExit) as e:
        main(["--checkpoint", os.path.join(ckpts, "6"), "--num", "1", "--out", str(tmp_path / "t.png")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"python -m dctmodel.sample: error: checkpoint step 6 in {ckpts} is unreadable (")
    assert "Error reading" in err and len(err.splitlines()) == 1
    assert snapshot(wd) == damaged  # a reader never moves or changes anything
