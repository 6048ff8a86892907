"""Fixtures and the hypothesis profiles; shared helpers live in ``helpers.py``."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from helpers import NATURAL_GREY, NATURAL_RGB, natural_image

# "ci" keeps the property tests to a few minutes on 2 cores; "asan" is for the
# sanitizer pass, where every call is ~10x slower; "dev" digs deeper.
settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("asan", max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(params=NATURAL_RGB)
def rgb_image(request) -> np.ndarray:
    return natural_image(request.param)


@pytest.fixture(params=NATURAL_GREY)
def grey_image(request) -> np.ndarray:
    return natural_image(request.param)


# The trained `micro` model of the model tests (training: overfitting, bpd; sampling: samples, CLI),
# trained once per test run.
@pytest.fixture(scope="session")
def micro_run(tmp_path_factory):
    """A ``micro`` model trained 250 steps on 4 scenes (seed 11): ``(cfg, source, final state,
    log records, workdir)``; the workdir holds its config.json, log.jsonl and the step-250 checkpoint."""
    pytest.importorskip("jax")
    from dctmodel.config import get_config, override
    from dctmodel.data import ArraySource
    from dctmodel.scenes import render_scene
    from dctmodel.train import train

    steps = 250
    cfg = override(
        get_config("micro"),
        **{
            "train.chunk_policy": "uniform",
            "train.total_tokens": 8 * 32 * steps,
            "train.learning_rate": 3e-3,
            "train.warmup_steps": 20,
            "train.log_every": 10,
            "train.checkpoint_every": 0,
        },
    )
    src = ArraySource(cfg.data, [render_scene(11, i, 16, max_objects=2) for i in range(4)])
    wd = str(tmp_path_factory.mktemp("micro"))
    state, records = train(cfg, wd, source=src, eval_source=src, progress=False, do_eval=False)
    return cfg, src, state, records, wd
