"""What a run reports: the one-line progress display and the metrics summed between two log records."""

from __future__ import annotations

import sys
import time
from collections import defaultdict

import jax
import numpy as np


class Progress:
    """One-line progress display on stderr (no dependency); shown by process 0 only in a
    multi-host run, where every process reaches the same steps."""

    def __init__(self, total: int, enabled: bool = True, start: int = 0):
        enabled = enabled and jax.process_index() == 0
        self.total, self.enabled, self.t0 = total, enabled and sys.stderr.isatty(), time.time()
        self.start = start  # steps restored from a checkpoint: not timed by this run
        self.plain = enabled and not sys.stderr.isatty()

    def eta(self, step: int) -> float:
        """Seconds left, from this run's own rate (steps since `start`)."""
        done = step - self.start
        return (time.time() - self.t0) * (self.total - step) / done if done > 0 else 0.0

    def update(self, step: int, text: str):
        if self.enabled:
            frac = step / max(1, self.total)
            bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
            eta = self.eta(step)
            sys.stderr.write(f"\r[{bar}] {step}/{self.total} {text} eta {eta:5.0f}s ")
            sys.stderr.flush()
        elif self.plain:
            print(f"step {step}/{self.total} {text}", file=sys.stderr, flush=True)

    def close(self):
        if self.enabled:
            sys.stderr.write("\n")


class Accumulator:
    """Sums step metrics between two log records (host side, after the step finished)."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.steps, self.loss, self.nats, self.tokens, self.wait, self.gnorm = 0, 0.0, np.zeros(3), 0.0, 0.0, 0.0
        self.chunk = defaultdict(list)

    def add(self, met, batch, wait, rows=None):
        """``met``: the step's metrics (global batch); ``batch``: the host batch, holding the
        global ``rows`` (None: all): the per-chunk bits are those of this host's rows."""
        met = jax.device_get(met)
        self.steps += 1
        self.loss += float(met["loss"])
        self.nats += met["nats"]
        self.tokens += float(met["tokens"])
        self.wait += wait
        self.gnorm += float(met["grad_norm"])
        bits = met["example_bits"] if rows is None else met["example_bits"][list(rows)]
        bpd = bits.sum(-1) / batch["subpixels"]
        for k, b in zip(batch["chunk_index"], bpd, strict=True):
            self.chunk[int(k)].append(float(b))

    def record(self, step, seconds, lr):
        n = max(self.tokens, 1.0)
        rec = {
            "step": step,
            "loss": self.loss / self.steps,
            "nats_channel": self.nats[0] / n,
            "nats_position": self.nats[1] / n,
            "nats_value": self.nats[2] / n,
            # Mean bits/subpixel contributed by chunk k (an unbiased estimate of its share of the image bpd).
            "bpd_per_chunk": {str(k): float(np.mean(v)) for k, v in sorted(self.chunk.items())},
            "tokens_per_s": self.tokens / max(seconds, 1e-9),
            "step_time": seconds / self.steps,
            "input_wait": self.wait / self.steps,
            "grad_norm": self.gnorm / self.steps,
            "lr": lr,
        }
        self.reset()
        return rec
