"""Joining a multi-controller run: one Python process per host (or per GPU), all running the same program.

    python -m dctmodel.train --distributed ...            # TPU pod slice, SLURM: everything detected
    python -m dctmodel.train --coordinator 10.0.0.1:1234 --num-processes 2 --process-id 0 ...

After :func:`initialize`, ``jax.devices()`` lists the devices of every
process and :func:`dctmodel.train.train` builds its mesh over all of them;
the work directory must be one folder that every process sees (a shared file
system or a bucket), since orbax writes each checkpoint from all processes
together.  Only process 0 writes ``log.jsonl`` and prints (:func:`is_main`).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: Sequence[int] | None = None,
) -> None:
    """``jax.distributed.initialize``: joins the run of ``num_processes`` processes whose process 0
    listens on ``coordinator`` (``"HOST:PORT"``) as process ``process_id``, using the local GPUs
    ``local_device_ids`` (default: all, or see below).

    Arguments left None are detected by JAX from the cluster's environment (a
    TPU pod slice's metadata, SLURM's ``SLURM_*`` variables, Open MPI, ...).
    Under SLURM (or Open MPI) JAX then also gives each process the one GPU
    numbered by its local rank (``SLURM_LOCALID``): launch one task per GPU, or
    pass ``local_device_ids`` to give a one-task-per-node process all of them.
    Must run before anything else touches a JAX device.  A malformed argument
    is a ValueError naming it (before any network wait).
    """
    if coordinator is not None:
        host, colon, port = coordinator.rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"coordinator {coordinator!r}: expected HOST:PORT, e.g. 10.0.0.1:1234")
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"num_processes={num_processes}: expected >= 1")
    if process_id is not None:
        if process_id < 0:
            raise ValueError(f"process_id={process_id}: expected >= 0")
        if num_processes is not None and process_id >= num_processes:
            raise ValueError(f"process_id={process_id}: expected < num_processes={num_processes}")
    if local_device_ids is not None and (not local_device_ids or min(local_device_ids) < 0):
        raise ValueError(f"local_device_ids={list(local_device_ids)}: expected device numbers >= 0")
    jax.distributed.initialize(
        coordinator_address=coordinator,
        num_processes=num_processes,
        process_id=process_id,
        local_device_ids=None if local_device_ids is None else list(local_device_ids),
    )


def is_main() -> bool:
    """Whether this is process 0, the one that logs and prints (True without ``initialize``)."""
    return jax.process_index() == 0
