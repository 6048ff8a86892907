"""Work directories and their orbax checkpoints: the one place that reads or writes them.

A work directory holds ``config.json`` (the run's config as JSON),
``checkpoints/STEP/`` (orbax, one folder per saved step) and whatever the
trainer logs next to them (``log.jsonl``).  Everything here is generic over the
saved pytree except :func:`load_params`, which rebuilds a DCTransformer's
parameters.

    mngr = open_manager(workdir, keep=2)
    save(mngr, step, state)                 # any pytree of arrays
    state = restore(mngr, like=state)       # latest, into like's structure and shardings
    tree = restore(mngr, step=400)          # as saved (no template needed)
    mngr.close()

orbax stores dict keys as strings and sequences as lists; :func:`save` and
:func:`restore` turn the int keys of ``nnx.List`` and the tuples/NamedTuples of
optax states into that form and back, so a restored pytree equals the saved one.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax

CHECKPOINTS = "checkpoints"
CONFIG = "config.json"


# ---------------------------------------------------------------------------
# orbax
# ---------------------------------------------------------------------------

def open_manager(workdir: str, keep: int):
    """An orbax ``CheckpointManager`` over ``workdir/checkpoints`` (made if missing) that keeps
    the ``keep`` latest steps; synchronous, so a step is on disk when :func:`save` returns."""
    import orbax.checkpoint as ocp

    opts = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False, create=True)
    # The handler is named so that a checkpoint's metadata (shapes, dtypes) can be read without a template.
    return ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, CHECKPOINTS)), options=opts,
                                 item_handlers=ocp.StandardCheckpointHandler())


def saved_steps(mngr) -> list[int]:
    """The steps saved in ``mngr``'s folder, ascending."""
    return sorted(mngr.all_steps() or [])


def save(mngr, step: int, tree) -> None:
    """Saves ``tree`` (a pytree of arrays) as ``step``, replacing a checkpoint of that step."""
    import orbax.checkpoint as ocp

    mngr.save(int(step), args=ocp.args.StandardSave(_to_saveable(tree)), force=True)
    mngr.wait_until_finished()


def restore(mngr, like=None, step: int | None = None, *, sharding: jax.sharding.Sharding | None = None):
    """The latest checkpoint (or ``step``'s); None when the folder holds none.

    ``like``: a pytree of arrays with the saved structure; the result has its
    structure, dtypes and shardings.  Without it the tree comes back as saved
    (string keys, lists), every array placed with ``sharding`` (default:
    replicated over all devices).  A ``step`` that was not saved is a
    ValueError naming the saved steps.
    """
    import orbax.checkpoint as ocp

    saved = saved_steps(mngr)
    if step is not None and step not in saved:
        raise ValueError(f"no checkpoint of step {step} in {mngr.directory}; saved steps: {saved or 'none'}")
    step = mngr.latest_step() if step is None else step
    if step is None:
        return None
    if like is not None:
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                                _to_saveable(like))
    else:
        if sharding is None:
            mesh = jax.make_mesh((len(jax.devices()),), ("all",), axis_types=(jax.sharding.AxisType.Auto,))
            sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
        abstract = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=sharding),
                                mngr.item_metadata(step).tree, is_leaf=_is_array_metadata)
    restored = mngr.restore(step, args=ocp.args.StandardRestore(abstract))
    return restored if like is None else _from_saveable(restored, like)


def _is_array_metadata(x) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def _to_saveable(tree):
    # orbax stores dict keys as strings; nnx.List gives int keys, so stringify them both ways.
    if isinstance(tree, dict):
        return {str(k): _to_saveable(v) for k, v in tree.items()}
    if hasattr(tree, "_fields"):
        return type(tree)(*(_to_saveable(v) for v in tree))
    if isinstance(tree, (list, tuple)):
        return type(tree)(_to_saveable(v) for v in tree)
    return tree


def _from_saveable(saved, like):
    """``saved`` (string keys, lists: what orbax gives back) in the structure of ``like``."""
    if isinstance(like, dict):
        return {k: _from_saveable(saved[str(k)], v) for k, v in like.items()}
    if hasattr(like, "_fields"):
        return type(like)(*(_from_saveable(s, v) for s, v in zip(saved, like, strict=False)))
    if isinstance(like, (list, tuple)):
        return type(like)(_from_saveable(s, v) for s, v in zip(saved, like, strict=False))
    return saved


# ---------------------------------------------------------------------------
# Work directories
# ---------------------------------------------------------------------------

def config_path(workdir: str) -> str:
    return os.path.join(workdir, CONFIG)


def write_config(workdir: str, config: Any) -> None:
    """``workdir/config.json`` from a (nested) dataclass or a dict; the folder must exist."""
    data = dataclasses.asdict(config) if dataclasses.is_dataclass(config) and not isinstance(config, type) else config
    with open(config_path(workdir), "w") as f:
        json.dump(data, f, indent=1)


def read_config(workdir: str, made_by: str = "dctmodel.train") -> dict:
    """``workdir/config.json`` as a dict; ValueError (naming ``made_by``) when there is none."""
    if not os.path.isfile(config_path(workdir)):
        raise ValueError(f"{workdir} has no {CONFIG}: not a work directory of {made_by}")
    with open(config_path(workdir)) as f:
        return json.load(f)


def resolve(path: str) -> tuple[str, int | None]:
    """``(workdir, step)`` of a work directory, its ``checkpoints/`` folder or one
    ``checkpoints/STEP`` folder; ``step`` is None (the latest) unless the path names one."""
    path = os.path.abspath(path)
    base, parent = os.path.basename(path), os.path.dirname(path)
    if base.isdigit() and os.path.basename(parent) == CHECKPOINTS:
        return os.path.dirname(parent), int(base)
    return (parent if base == CHECKPOINTS else path), None


def load_params(path: str):
    """``(cfg, params, step)`` of a DCTransformer from a work directory, its ``checkpoints/``
    folder or one ``checkpoints/STEP`` folder (``config.json`` is found in the work directory).

    ``params`` is the pure dict :func:`dctmodel.model.model_from_params` takes.
    """
    from .config import config_from_dict
    from .model import abstract_params

    workdir, step = resolve(path)
    cfg = config_from_dict(read_config(workdir))
    mngr = open_manager(workdir, cfg.train.keep_checkpoints)
    try:
        state = restore(mngr, step=step)
    finally:
        mngr.close()
    if state is None:
        raise ValueError(f"no checkpoint in {os.path.join(workdir, CHECKPOINTS)}")
    return cfg, _from_saveable(state["params"], abstract_params(cfg)), int(jax.device_get(state["step"]))
