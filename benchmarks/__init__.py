"""Benchmarks: run as modules, e.g. ``python -m benchmarks.codec --quick``."""

import os as _os

# The benchmarks are single-threaded by default; OpenBLAS (loaded by NumPy/SciPy
# through scikit-image) otherwise starts a thread per core that spins after
# each BLAS call and takes cycles from the timed thread on a small machine.
# It must be set before NumPy is first imported to take effect.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    _os.environ.setdefault(_var, "1")
