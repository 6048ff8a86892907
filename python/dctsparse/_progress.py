"""A dependency-free progress bar for the command line (tqdm-like, on stderr).

Redraws in place on a terminal; elsewhere (logs, CI, pipes) it prints a line
at most every ``log_every`` seconds and at the end, so logs stay readable.
"""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(
        self, total: int, desc: str = "", unit: str = "img", enabled: bool = True, stream=None, log_every: float = 10.0
    ):
        self.total, self.desc, self.unit = int(total), desc, unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.n = 0
        self.t0 = self._last = time.monotonic()
        self.log_every = log_every

    def update(self, k: int = 1) -> None:
        self.n += k
        now = time.monotonic()
        if self.tty and (now - self._last > 0.1 or self.n >= self.total):
            self._draw(now, end="\r")
            self._last = now
        elif self.enabled and not self.tty and now - self._last > self.log_every:
            self._draw(now, end="\n")
            self._last = now

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic(), end="\n")

    def _draw(self, now: float, end: str) -> None:
        rate = self.n / max(now - self.t0, 1e-9)
        frac = self.n / self.total if self.total else 1.0
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        eta = (self.total - self.n) / rate if rate > 0 else 0.0
        self.stream.write(f"{self.desc} [{bar}] {self.n}/{self.total} {self.unit} {rate:.1f}/s eta {eta:.0f}s   {end}")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
