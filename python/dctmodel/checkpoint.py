"""Work directories and their orbax checkpoints: the one place that reads or writes them.

A work directory holds ``config.json`` (the run's config as JSON),
``checkpoints/STEP/`` (orbax, one folder per saved step) and whatever the
trainer logs next to them (``log.jsonl``).  Everything here is generic over the
saved pytree except :func:`load_params`, which rebuilds a DCTransformer's
parameters.

    mngr = open_manager(workdir, keep=2)
    save(mngr, step, state)                 # any pytree of arrays
    state = restore(mngr, like=state)       # newest readable, into like's structure and shardings
    tree = restore(mngr, step=400)          # as saved (no template needed)
    state, step = restore_newest(mngr, like=state, who="resume", set_aside=True)
    mngr.close()

A damaged step (array files missing or truncated, ``default/`` or its
``_METADATA`` or OCDBT manifest gone or garbled, an empty step folder) is an
:class:`UnreadableCheckpoint` with a one-line reason when asked for by number;
asked for the newest, the next older step is tried, and each unreadable one is
reported in one line on stderr.  A damaged step is never deleted; a resumed run
(``set_aside``) renames it out of orbax's way.

orbax stores dict keys as strings and sequences as lists; :func:`save` and
:func:`restore` turn the int keys of ``nnx.List`` and the tuples/NamedTuples of
optax states into that form and back, so a restored pytree equals the saved one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import re
import socket
import sys
import time
import warnings
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
    with _without_step_metadata_warnings():
        return ocp.CheckpointManager(
            os.path.abspath(os.path.join(workdir, CHECKPOINTS)),
            options=opts,
            item_handlers=ocp.StandardCheckpointHandler(),
        )


def saved_steps(mngr) -> list[int]:
    """The steps saved in ``mngr``'s folder, ascending."""
    return sorted(mngr.all_steps() or [])


def save(mngr, step: int, tree) -> None:
    """Saves ``tree`` (a pytree of arrays) as ``step``; orbax refuses a step whose folder exists
    (StepAlreadyExistsError), even an empty or damaged one."""
    import orbax.checkpoint as ocp

    mngr.save(int(step), args=ocp.args.StandardSave(_to_saveable(tree)), force=True)
    mngr.wait_until_finished()


class UnreadableCheckpoint(ValueError):
    """A saved step orbax cannot read (files missing, truncated or garbled), or no readable step at all;
    ``reason`` is the short why of one step."""

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason


def restore(mngr, like=None, step: int | None = None, *, sharding: jax.sharding.Sharding | None = None):
    """Checkpoint ``step``, or the newest readable one (:func:`restore_newest`); None when the folder holds none.

    ``like``: a pytree of arrays with the saved structure; the result has its
    structure, dtypes and shardings.  Without it the tree comes back as saved
    (string keys, lists), every array placed with ``sharding`` (default:
    replicated over all devices).  A ``step`` that was not saved is a
    ValueError naming the saved steps; one that cannot be read is an
    :class:`UnreadableCheckpoint` naming it (no fallback: it was asked for).
    """
    if step is None:
        found = restore_newest(mngr, like, sharding=sharding)
        return None if found is None else found[0]
    saved = saved_steps(mngr)
    if step not in saved:
        raise ValueError(f"no checkpoint of step {step} in {mngr.directory}; saved steps: {saved or 'none'}")
    return _read(mngr, step, like, sharding)


def restore_newest(
    mngr, like=None, *, sharding: jax.sharding.Sharding | None = None, who: str = "checkpoint", set_aside: bool = False
) -> tuple[Any, int] | None:
    """``(tree, step)`` of the newest step that can be read (as :func:`restore`); None when none is saved.

    Steps are tried newest first; each unreadable one is reported in one line
    on stderr starting with ``who``.  ``set_aside``: a caller that goes on to
    save steps (a resumed run) moves the unreadable ones out of orbax's sight
    (:func:`_set_aside`).  No readable step at all is an
    :class:`UnreadableCheckpoint` naming the folder, and then nothing is moved.
    """
    bad: list[tuple[int, str]] = []
    for step in reversed(saved_steps(mngr)):
        try:
            tree = _read(mngr, step, like, sharding)
        except UnreadableCheckpoint as e:
            bad.append((step, e.reason))
            continue
        tried = [s for s, _ in bad] + [step]
        for (s, why), next_step in zip(bad, tried[1:], strict=True):
            kept = f", moved aside to {_set_aside(mngr, s)}" if set_aside else ""
            print(
                f"{who}: checkpoint step {s} in {mngr.directory} is unreadable ({why}){kept}; trying step {next_step}",
                file=sys.stderr,
                flush=True,
            )
        return tree, step
    if bad:
        raise UnreadableCheckpoint(
            f"no readable checkpoint in {mngr.directory}: " + "; ".join(f"step {s}: {why}" for s, why in bad)
        )
    return None


def _read(mngr, step: int, like, sharding):
    """Checkpoint ``step`` (saved) as :func:`restore` describes; UnreadableCheckpoint when orbax cannot read it."""
    import orbax.checkpoint as ocp

    abstract = (
        None
        if like is None
        else jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), _to_saveable(like))
    )
    try:
        with _loops_that_drain(), _without_step_metadata_warnings():
            if abstract is None:  # as saved: the step's own metadata gives shapes and dtypes
                abstract = _as_saved(mngr.item_metadata(step).tree, sharding)
            restored = mngr.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as e:  # orbax and tensorstore raise anything from KeyError to bare Exception
        why = _why_unreadable(os.path.join(str(mngr.directory), str(step)), e)
        # from None: orbax's chain is hundreds of lines of TensorStore specs
        raise UnreadableCheckpoint(f"checkpoint step {step} in {mngr.directory} is unreadable ({why})", why) from None
    return restored if like is None else _from_saveable(restored, like)


def _as_saved(metadata, sharding: jax.sharding.Sharding | None):
    """Abstract arrays of a step's metadata tree, placed with ``sharding`` (default: replicated)."""
    if sharding is None:
        mesh = jax.make_mesh((len(jax.devices()),), ("all",), axis_types=(jax.sharding.AxisType.Auto,))
        sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    return jax.tree.map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=sharding), metadata, is_leaf=_is_array_metadata
    )


def _why_unreadable(folder: str, error: BaseException) -> str:
    """A short reason why orbax could not read the step ``folder``: the first of the files orbax
    needs that is missing or garbled, else the innermost message of ``error``."""
    try:
        damaged = _damaged_file(folder)
    except OSError:  # an unlistable folder: orbax's message says more
        damaged = None
    return damaged or _innermost_message(error)


def _damaged_file(folder: str) -> str | None:
    item = os.path.join(folder, "default")
    if not os.path.isdir(item):
        return "the folder is empty" if os.path.isdir(folder) and not os.listdir(folder) else "default/ is missing"
    try:
        with open(os.path.join(item, "_METADATA"), "rb") as f:
            json.loads(f.read())
    except FileNotFoundError:
        return "default/_METADATA is missing"
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return f"default/_METADATA is not readable JSON ({e})".split("\n")[0]
    ocdbt = any(name.startswith("ocdbt.process_") for name in os.listdir(item))
    if ocdbt and not os.path.isfile(os.path.join(item, "manifest.ocdbt")):
        return "default/manifest.ocdbt (the OCDBT index) is missing"
    return None


def _innermost_message(error: BaseException) -> str:
    """The first line of the innermost cause of ``error``, without TensorStore's specs and paths."""
    while error.__cause__ is not None:
        error = error.__cause__
    text = str(error).split("\n")[0].split(" See full TensorStore details")[0].split(" [tensorstore_spec")[0]
    text = re.sub(r' in OCDBT database at local file "[^"]*"', "", text) or type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _set_aside(mngr, step: int) -> str:
    """Renames unreadable step ``step``'s folder to ``STEP.unreadable-TIME`` beside it; returns the new name.

    A resumed run saves that step number again: orbax refuses to save over an
    existing step (StepAlreadyExistsError, hours into the run) and counts it
    among the ``keep`` newest, deleting good steps in its place.  Refusing to
    resume instead would leave the user to move it by hand; deleting it would
    lose what may still be recovered.  So it is moved to a name orbax does not
    list as a step (not all digits, no ``_N`` suffix) and the files stay.

    In a multi-host run every process finds the step unreadable and gets here:
    process 0 alone renames it, the others wait for it and then look up the
    name it chose, the newest by ctime (each renaming would fail on the folder another
    just moved).
    """
    folder = str(mngr.directory)
    if jax.process_index() == 0:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        name, n = f"{step}.unreadable-{stamp}", 1
        while os.path.exists(os.path.join(folder, name)):
            n += 1
            name = f"{step}.unreadable-{stamp}-{n}"
        os.rename(os.path.join(folder, str(step)), os.path.join(folder, name))
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"dctmodel.checkpoint: step {step} set aside")
        if jax.process_index() != 0:
            moved = [e for e in os.scandir(folder) if e.name.startswith(f"{step}.unreadable-")]
            name = max(moved, key=lambda e: e.stat().st_ctime_ns).name if moved else f"{step}.unreadable-*"
    with _without_step_metadata_warnings():
        mngr.reload()
    return name


class _StepMetadataWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not ("orbax" in record.pathname and "_CHECKPOINT_METADATA" in record.getMessage())


@contextlib.contextmanager
def _without_step_metadata_warnings():
    """Drops orbax's log lines about a step's missing or garbled ``_CHECKPOINT_METADATA`` meanwhile.

    That file holds only a commit time and metrics, which nothing here uses; a
    step without it still restores, and a damaged step is reported once, in
    its own line, by :func:`restore_newest`, not in two or three of orbax's.
    """
    quiet = _StepMetadataWarnings()
    logging.getLogger("absl").addFilter(quiet)
    try:
        yield
    finally:
        logging.getLogger("absl").removeFilter(quiet)


@contextlib.contextmanager
def _loops_that_drain():
    """Event loops made meanwhile finish their pending tasks before they close.

    orbax (0.12) runs a restore in a fresh event loop and closes it as soon as
    one array read fails, the other reads still pending; these then print
    thousands of lines ("Task exception was never retrieved", "Event loop is
    closed") whenever they finish or are collected, long after the one-line
    report.  Finishing them first (at most the rest of one checkpoint's reads,
    and only when one failed) keeps all of that inside the restore.
    """
    if not hasattr(asyncio, "set_event_loop_policy"):  # to be removed from Python (3.16): orbax's loops as they are
        yield
        return
    with warnings.catch_warnings():  # the policy API is deprecated from Python 3.14
        warnings.simplefilter("ignore", DeprecationWarning)
        before = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(_draining_policy())
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_event_loop_policy(before)


def _draining_policy():
    class Draining(asyncio.DefaultEventLoopPolicy):
        def new_event_loop(self):
            loop = super().new_event_loop()
            close = loop.close

            def drain_then_close():
                # Finished rather than cancelled: a cancelled read's TensorStore callback still
                # comes later, into the closed loop.
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                if pending and not loop.is_running() and not loop.is_closed():
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                close()

            loop.close = drain_then_close  # type: ignore[method-assign]
            return loop

    return Draining()


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
    """``workdir/config.json`` from a (nested) dataclass or a dict; the folder must exist.

    Written whole under another name, then renamed: in a multi-host run every
    process writes the same file while the others may be reading it (a resume's
    config check), and none may see it empty or half written.
    """
    data = dataclasses.asdict(config) if dataclasses.is_dataclass(config) and not isinstance(config, type) else config
    path = config_path(workdir)
    tmp = f"{path}.{socket.gethostname()}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):  # json.dump failed: no litter beside config.json
            os.remove(tmp)


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


def load_params(path: str, who: str = "checkpoint"):
    """``(cfg, params, step)`` of a DCTransformer from a work directory, its ``checkpoints/``
    folder or one ``checkpoints/STEP`` folder (``config.json`` is found in the work directory).

    A work directory or ``checkpoints/`` folder gives its newest readable step
    (unreadable ones reported in a line starting with ``who``, never moved); an
    unreadable ``checkpoints/STEP`` is an :class:`UnreadableCheckpoint`.

    ``params`` is the pure dict :func:`dctmodel.model.model_from_params` takes.
    """
    from .config import config_from_dict
    from .model import abstract_params

    workdir, step = resolve(path)
    cfg = config_from_dict(read_config(workdir))
    mngr = open_manager(workdir, cfg.train.keep_checkpoints)
    try:
        # A step the path names is read or refused; otherwise the newest readable one is used.
        found = (restore(mngr, step=step), step) if step is not None else restore_newest(mngr, who=who)
    finally:
        mngr.close()
    if found is None:
        raise ValueError(f"no checkpoint in {os.path.join(workdir, CHECKPOINTS)}")
    state = found[0]
    return cfg, _from_saveable(state["params"], abstract_params(cfg)), int(jax.device_get(state["step"]))
