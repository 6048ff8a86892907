"""Which SIMD level the C++ kernels run at, and forcing one.

The level is picked once per process: the best the CPU supports, or the one
named by the environment variable ``DCTSPARSE_SIMD`` (``scalar``, ``avx2``,
``avx512``; ``neon`` on aarch64). All levels produce bit-identical output
(floating-point contraction is off, and no kernel reassociates a sum).
"""

from __future__ import annotations

import os
import warnings

from . import _core

#: The stages whose hot loops are SIMD kernels (the core's list, in its order).
STAGES = tuple(stage for stage, _ in _core.simd_stages())


def simd_info() -> dict:
    """{'level': active level, 'available': levels this CPU runs, 'stages': {stage: kernel}}.

    A stage's kernel names the code that runs it at the active level, which
    is not always the level's own: the avx512 level runs the hand-written
    AVX2 colour bodies, and its avx2 block transforms above B = 16, where
    its own measured slower (docs/codec-performance.md).
    """
    level = _core.simd_level()
    return {
        "level": level,
        "available": list(_core.simd_levels()),
        "stages": dict(_core.simd_stages()),
        "forced": os.environ.get("DCTSPARSE_SIMD"),
    }


def set_simd_level(level: str) -> None:
    """Force a level for this process (tests, benchmarks); ValueError if unavailable."""
    _core.set_simd_level(level)


def _check_env() -> None:
    forced = os.environ.get("DCTSPARSE_SIMD")
    if forced and forced not in _core.simd_levels():
        warnings.warn(
            f"DCTSPARSE_SIMD={forced!r} is not available here "
            f"(available: {', '.join(_core.simd_levels())}); using {_core.simd_level()}",
            RuntimeWarning,
            stacklevel=3,
        )
