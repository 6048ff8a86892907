"""The device mesh, the shardings of the train state and batches, and host batches to devices.

A ``Mesh(("data", "model"))`` shards the batch over every device and, when
``train.model_axis > 1``, each large parameter's first axis over "model"
(FSDP; XLA inserts the all-gathers).
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

BATCH_KEYS = ("dct", "inp", "tgt", "weight", "hw", "label")


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


def put_batch(batch: dict, mesh) -> dict:
    """Host numpy batch (identical on every host) -> global arrays sharded over the batch axis."""
    sh = batch_sharding(mesh)
    out: dict = {}
    for k in BATCH_KEYS + ("chunk_index", "subpixels", "image"):
        if k in batch:
            out[k] = _global_array(np.asarray(batch[k]), sh)
    return out


def _global_array(v: np.ndarray, sh: NamedSharding) -> jax.Array:
    return jax.make_array_from_callback(v.shape, sh, lambda idx: v[idx])
