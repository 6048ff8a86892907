"""What the training loops share: Ctrl-C handling, a log that a resume trims,
and the check that a resume keeps the run's config.

Ctrl-C: the first one asks the loop to stop after its running step (so it
can checkpoint and return), a second aborts at once.

    with stop_on_sigint() as stop:
        for step in ...:
            ...                      # one step
            if stop.requested:
                break                # checkpoint, then return
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

import jax


class StopRequest:
    """The SIGINT handler; ``requested`` turns True on the first Ctrl-C."""

    def __init__(self, what: str = "this step with a checkpoint"):
        self.requested = False
        self.what = what

    def __call__(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt  # a step or a compilation that hangs can still be left
        self.requested = True
        print(f"\nCtrl-C: stopping after {self.what} (Ctrl-C again to abort now)", file=sys.stderr, flush=True)


@contextlib.contextmanager
def stop_on_sigint(what: str = "this step with a checkpoint") -> Iterator[StopRequest]:
    """Installs a :class:`StopRequest` as the SIGINT handler for the block and
    restores the caller's handler after it; ``what`` completes the message
    "stopping after ...".  Python only lets the main thread set handlers;
    called from another thread, the request never turns True (Ctrl-C goes to
    the main thread as usual)."""
    stop = StopRequest(what)
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    old = signal.signal(signal.SIGINT, stop)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, old)


class JsonLog:
    """Append-only JSON lines.

    ``resume_step=None`` starts an empty log; otherwise records after the
    restored step are dropped (a run killed after logging a step but before
    its checkpoint would log that step twice), as is a line torn by the kill.

    In a multi-host run (``jax.distributed``) only process 0 touches the file:
    every process logs the same records, and the others would repeat each line.
    """

    def __init__(self, path: str, resume_step: int | None):
        self.path = path
        self.enabled = jax.process_index() == 0
        if not self.enabled:
            return
        if resume_step is None:
            open(path, "w").close()
        elif os.path.exists(path):
            with open(path) as f:
                keep = [ln for ln in f if _step_of(ln, resume_step + 1) <= resume_step]
            with open(path, "w") as f:
                f.writelines(keep)

    def write(self, record: dict):
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


def _step_of(line: str, bad: int) -> int:
    """The record's step (0 if it has none), or ``bad`` for a blank or torn line."""
    try:
        rec = json.loads(line)
    except ValueError:
        return bad
    return int(rec.get("step", 0)) if isinstance(rec, dict) else bad


def check_resume_config(config_path: str, now: dict, may_change: Callable[[str], bool]) -> None:
    """Refuse to resume a run whose saved ``config.json`` differs from ``now``
    (the config as a dict of sections and top-level values) in a field that
    ``may_change(name)`` (dotted: ``"model.d_model"``, ``"steps"``) says is
    fixed.  Called before config.json is rewritten: otherwise a failed restore,
    or one into a different model, would leave the work directory unresumable."""
    if not os.path.exists(config_path):
        return
    with open(config_path) as f:
        saved = json.load(f)
    now = json.loads(json.dumps(now))  # tuples as lists, as they were saved
    pairs = []
    for key, value in now.items():
        if isinstance(value, dict):
            pairs += [(f"{key}.{k}", saved.get(key, {}).get(k), v) for k, v in value.items()]
        else:
            pairs.append((key, saved.get(key), value))
    diff = [name for name, old, new in pairs if old != new and not may_change(name)]
    if diff:
        raise ValueError(
            f"cannot resume in {os.path.dirname(config_path) or '.'}: it was trained with another "
            f"config ({', '.join(diff)} differ from its config.json); resume with that config "
            f"or use a new workdir"
        )
