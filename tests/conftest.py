"""Fixtures and the hypothesis profiles; shared helpers live in ``helpers.py``."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from helpers import NATURAL_GREY, NATURAL_RGB, natural_image

# "ci" keeps the property tests to a few minutes on 2 cores; "asan" is for the
# sanitizer pass, where every call is ~10x slower; "dev" digs deeper.
settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("asan", max_examples=15, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(params=NATURAL_RGB)
def rgb_image(request) -> np.ndarray:
    return natural_image(request.param)


@pytest.fixture(params=NATURAL_GREY)
def grey_image(request) -> np.ndarray:
    return natural_image(request.param)
