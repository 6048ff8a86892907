"""The run loop: ``train(cfg, workdir)`` steps, logs, evaluates and checkpoints until done or stopped.

Batches are a pure function of ``(seed, step)`` (``data.sample_batch``), so
``resume=True`` from a checkpoint at step ``k`` reproduces an uninterrupted
run bit for bit.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

import jax
import numpy as np

from .. import checkpoint as ckpt
from ..config import Config, check_config
from ..data import Prefetcher, Source, check_labels, make_source
from ..loop import JsonLog, check_resume_config, stop_on_sigint
from .evaluation import evaluate
from .optim import like_state, lr_schedule, per_parameter
from .progress import Accumulator, Progress
from .sharding import host_rows, make_mesh
from .steps import functions


def save_checkpoint(mngr, state):
    ckpt.save(mngr, int(jax.device_get(state["step"])), checkpoint_layout(state))


def checkpoint_layout(state):
    """``state`` as checkpoints hold it: the optimiser's moments per parameter, whether or not
    the run keeps them as flat vectors (``optim.flat_state``)."""
    return {**state, "opt": jax.jit(per_parameter)(state["opt"], state["params"])}


def check_resume(cfg: Config, workdir: str) -> None:
    """Refuses (ValueError) to resume ``workdir`` with a ``cfg`` whose data or model section differs
    from its config.json; the train section (schedule, logging) may change."""
    check_resume_config(
        ckpt.config_path(workdir), dataclasses.asdict(cfg), lambda name: name.split(".")[0] not in ("data", "model")
    )


def train(
    cfg: Config,
    workdir: str,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    devices=None,
    source: Source | None = None,
    eval_source: Source | None = None,
    progress: bool = True,
    do_eval: bool = True,
) -> tuple[dict, list[dict]]:
    """Train ``cfg`` in ``workdir``; returns ``(final state, log records of this call)``.

    ``stop_after``: stop (with a checkpoint) once that many total steps are done,
    as if interrupted; the LR schedule still targets ``cfg.steps``.
    Ctrl-C (SIGINT, when called from the main thread) also stops after the
    running step with a checkpoint; rerun with ``resume=True``.  A second
    Ctrl-C raises KeyboardInterrupt without that checkpoint.  Any other error
    during the loop (an unreadable image, a failing evaluation) is raised
    after a checkpoint of the last finished step is written.
    """
    check_config(cfg)
    os.makedirs(workdir, exist_ok=True)
    if resume:
        check_resume(cfg, workdir)  # before config.json is rewritten
    ckpt.write_config(workdir, cfg)
    mesh = make_mesh(cfg.train.model_axis, devices)
    fns = functions(cfg)
    source = source or make_source(cfg.data, "train", cfg.train.cache_mb)
    eval_source = eval_source or make_source(cfg.data, "eval", cfg.train.cache_mb)
    check_labels(cfg, source)

    state = fns.shard_state(fns.init(cfg.train.seed), mesh)
    mngr = ckpt.open_manager(workdir, cfg.train.keep_checkpoints)
    start = 0
    if resume:
        # Unreadable newer steps are moved aside: this run saves those step numbers again.
        restored = ckpt.restore_newest(mngr, checkpoint_layout(state), who="resume", set_aside=True)
        if restored is not None:
            state = fns.shard_state({**restored[0], "opt": jax.jit(like_state)(restored[0]["opt"], state["opt"])}, mesh)
            start = int(jax.device_get(state["step"]))
        else:
            print(
                f"resume: no checkpoint in {os.path.join(workdir, 'checkpoints')}; starting at step 0",
                file=sys.stderr,
                flush=True,
            )
    log = JsonLog(os.path.join(workdir, "log.jsonl"), start if resume else None)
    records: list[dict] = []

    def emit(rec):
        log.write(rec)
        records.append(rec)

    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    bar = Progress(cfg.steps, progress, start)
    # The caller's SIGINT handler is back before the final checkpoint.
    with stop_on_sigint() as stop:
        # Each process builds only the rows its devices hold (all of them in a one-process run).
        rows = host_rows(mesh, cfg.train.batch_size)
        feed = Prefetcher(
            cfg, source, cfg.train.seed, start, end, depth=cfg.train.prefetch, rows=rows, workers=cfg.train.workers
        )
        acc = Accumulator()
        t_last = time.time()
        step = start
        stopping = False
        try:
            t_wait = time.time()
            # A step's metrics are read after the next step is dispatched, so the device works
            # while the host waits for them and turns them into numbers (tiny: ~5-10% of a step).
            pending = None
            for step_i, batch in feed:
                wait = time.time() - t_wait
                state, met = fns.train_step(state, batch, mesh, rows)
                if pending is not None:
                    acc.add(*pending)
                pending = (met, batch, wait, rows)
                step = step_i + 1
                stopping = _stop_everywhere(stop)
                # A stop request logs the steps since the last record, which would otherwise be lost.
                if step % cfg.train.log_every == 0 or step == end or stopping:
                    acc.add(*pending)
                    pending = None
                    rec = acc.record(step, time.time() - t_last, float(lr_schedule(cfg)(step - 1)))
                    t_last = time.time()
                    emit(rec)
                    bar.update(step, f"loss {rec['loss']:.3f} tok/s {rec['tokens_per_s']:.0f}")
                if cfg.train.checkpoint_every and step % cfg.train.checkpoint_every == 0:
                    save_checkpoint(mngr, state)
                if do_eval and cfg.train.eval_every and step % cfg.train.eval_every == 0 and step < cfg.steps:
                    emit({"step": step, "eval": evaluate(cfg, state["params"], eval_source, mesh)})
                if stopping:
                    break
                t_wait = time.time()
        except Exception:
            # An unreadable image or a failing evaluation hours into a run: keep the steps
            # done (the state is that of the last finished step), then report the error.
            if step > start:
                _save_before_raising(mngr, state, workdir)
            raise
        finally:
            feed.close()
            bar.close()
    _save_if_new(mngr, state)
    if do_eval and step >= cfg.steps and not stopping:
        emit({"step": step, "eval": evaluate(cfg, state["params"], eval_source, mesh)})
    mngr.close()
    return state, records


def _stop_everywhere(stop) -> bool:
    """Whether any process got a Ctrl-C: every process of a multi-process run must leave the
    loop after the same step (the checkpoint and the steps are collectives), so one that stopped
    alone would leave the others waiting in the next step's all-reduce.  One small all-gather
    per step, and only with several processes."""
    if jax.process_count() == 1:
        return stop.requested
    from jax.experimental import multihost_utils

    return bool(np.asarray(multihost_utils.process_allgather(np.bool_(stop.requested))).any())


def _save_if_new(mngr, state) -> int:
    """Checkpoints ``state`` unless its step is saved already; returns the step."""
    step = int(jax.device_get(state["step"]))
    if step not in ckpt.saved_steps(mngr):
        save_checkpoint(mngr, state)
    return step


def _save_before_raising(mngr, state, workdir: str) -> None:
    try:
        step = _save_if_new(mngr, state)
        print(
            f"\ntraining stopped by an error at step {step}; a checkpoint of it is in "
            f"{os.path.join(workdir, 'checkpoints')}: fix the cause and --resume",
            file=sys.stderr,
            flush=True,
        )
    except Exception:  # the original error matters more than this one
        pass
