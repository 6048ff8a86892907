"""The device mesh, the shardings of the train state and batches, and host batches to devices.

A ``Mesh(("data", "model"))`` shards the batch over every device and, when
``train.model_axis > 1``, each large parameter's first axis over "model"
(FSDP; XLA inserts the all-gathers).
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

BATCH_KEYS = ("prefix", "dct", "inp", "tgt", "weight", "hw", "label")


# ---------------------------------------------------------------------------
# CPU cores as devices
# ---------------------------------------------------------------------------


def cpu_device_count(batch_size: int, cores: int | None = None) -> int:
    """How many JAX devices to make of ``cores`` CPU cores (default: the cores this process
    may run on) for data parallelism over a batch of ``batch_size``: the largest divisor of
    ``batch_size`` not above ``cores``.

    Why: XLA:CPU's own threads hardly split the small matrix products of a laptop-sized
    model (``tiny``'s training step takes the same time on one core as on two), while one
    device per core runs a share of the batch on each core at once (docs/dctmodel.md,
    "Measured figures")."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cores = max(1, cores)
    return max(d for d in range(1, min(cores, batch_size) + 1) if batch_size % d == 0)


def train_cpu_devices(cfg) -> int:
    """The CPU devices a run of ``cfg`` trains on: ``train.cpu_devices``, or with 0 one per core
    (:func:`cpu_device_count`)."""
    return cfg.train.cpu_devices or cpu_device_count(cfg.train.batch_size)


def use_cpu_devices(n: int) -> bool:
    """Make JAX's CPU platform ``n`` devices; must run before JAX computes anything.

    Returns False (and changes nothing) when the device count is already chosen:
    ``XLA_FLAGS`` names ``--xla_force_host_platform_device_count``, ``jax_num_cpu_devices``
    is set, or JAX's backends are already running.  On a GPU or TPU machine the setting is
    harmless: the mesh is built over the accelerators."""
    if n < 1:
        raise ValueError(f"the CPU device count must be >= 1, got {n}")
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return False
    if jax.config.jax_num_cpu_devices not in (-1, n):  # type: ignore[attr-defined]  # not in the stubs
        return False
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:  # backends already initialised: too late to change
        return False
    return True


# ---------------------------------------------------------------------------
# Mesh and shardings
# ---------------------------------------------------------------------------


def make_mesh(model_axis: int = 1, devices=None) -> jax.sharding.Mesh:
    """``Mesh(("data", "model"))`` over ``devices`` (default: all); the model axis
    is the largest divisor of the device count not above ``model_axis``."""
    devices = list(devices if devices is not None else jax.devices())
    n = len(devices)
    m = max(d for d in range(1, max(1, min(model_axis, n)) + 1) if n % d == 0)
    auto = jax.sharding.AxisType.Auto
    return jax.make_mesh((n // m, m), ("data", "model"), axis_types=(auto, auto), devices=devices)


def param_spec(x, mesh) -> P:
    """FSDP: shard axis 0 of big matrices over "model"; everything else is replicated."""
    m = mesh.shape["model"]
    if m > 1 and getattr(x, "ndim", 0) >= 2 and x.shape[0] % m == 0 and x.size >= 1024:
        return P("model")
    return P()


def state_shardings(state, mesh):
    return jax.tree.map(lambda x: NamedSharding(mesh, param_spec(x, mesh)), state)


def batch_sharding(mesh) -> NamedSharding:
    return NamedSharding(mesh, P(("data", "model")))


def host_rows(mesh, batch_size: int) -> list[int]:
    """The rows of a global batch of ``batch_size`` that this process's devices hold, sorted.

    One process: every row.  With ``process_count() > 1`` each host builds only these
    (``data.sample_batch(rows=...)``); the hosts' rows together are the whole batch."""
    sh = batch_sharding(mesh)
    rows: set[int] = set()
    for idx in sh.addressable_devices_indices_map((batch_size,)).values():
        assert idx is not None  # a NamedSharding always names each device's index
        rows.update(range(batch_size)[idx[0]])
    return sorted(rows)


def put_batch(batch: dict, mesh, rows=None, batch_size: int | None = None) -> dict:
    """Host numpy batch -> global arrays sharded over the batch axis.

    ``rows=None``: ``batch`` is the whole global batch (on every host).  Otherwise it holds
    only rows ``rows`` (sorted; :func:`host_rows`) of a global batch of ``batch_size``, and
    they must include every row this process's devices hold."""
    sh = batch_sharding(mesh)
    if rows is not None and batch_size is None:
        raise ValueError("put_batch: rows need the global batch_size")
    arrays = {k: np.asarray(batch[k]) for k in BATCH_KEYS + ("chunk_index", "subpixels", "image") if k in batch}
    if jax.process_count() == 1 and (rows is None or list(rows) == list(range(batch_size or 0))):
        n = {v.shape[0] for v in arrays.values()}
        if rows is not None and n != {len(rows)}:
            raise ValueError(f"a host batch of {sorted(n)} rows given with {len(rows)} row indices")
        # Every row is this process's: one transfer call for the whole batch, instead of one
        # make_array_from_callback per array through the multi-host row lookup (tiny's batch
        # standalone: 0.45 ms; the old path was not timed apart from the step).
        return jax.device_put(arrays, sh)
    return {k: _global_array(v, sh, rows, batch_size) for k, v in arrays.items()}


def _global_array(v: np.ndarray, sh: NamedSharding, rows=None, total: int | None = None) -> jax.Array:
    if rows is None:
        return jax.make_array_from_callback(v.shape, sh, lambda idx: v[idx])
    rows = np.asarray(rows)
    if rows.shape != (v.shape[0],):
        raise ValueError(f"a host batch of {v.shape[0]} rows given with {rows.size} row indices")
    assert total is not None

    def local(idx):
        want = np.arange(total)[idx[0]]
        at = np.searchsorted(rows, want)
        if not (at < rows.size).all() or not (rows[np.minimum(at, rows.size - 1)] == want).all():
            raise ValueError(f"rows {want.tolist()} of the global batch are not among this host's rows")
        return v[(at,) + tuple(idx[1:])]

    return jax.make_array_from_callback((total, *v.shape[1:]), sh, local)
