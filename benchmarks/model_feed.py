"""What the input pipeline costs the trainer: its loop fed from batches built beforehand,
against the same loop fed by ``data.Prefetcher``, alternating in one process.

    python benchmarks/model_feed.py                       # tiny, cold scenes, then warm
    python benchmarks/model_feed.py --config small --rounds 6 --steps 100

Both sides run the trainer's loop as ``dctmodel.train.loop`` does: dispatch a
step, then read the previous step's metrics (``Accumulator.add``), so the
device works while the host waits.  On a CPU the host's work (building rows,
rendering scenes on first use, ``put_batch``, the loop) shares the cores with
XLA's threads, so a cheaper pipeline shows up as a faster step, not only as
less waiting.  Blocks of ``--steps`` steps alternate for ``--rounds`` rounds
(the two sides see a machine in the same state); the report gives the median
milliseconds a step of each side and their ratio.

``cold``: the pipeline's source starts with an empty token cache, as a run
does (every scene is rendered on its first draw); ``warm``: every image's
tokens are cached first.  The built-beforehand side reuses one set of
batches, so it never renders.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def run_loop(fns, state, mesh, feed):
    """The trainer's loop over ``feed`` (``(step, batch)`` pairs); returns ``(state, ms a step)``."""
    from dctmodel.train.progress import Accumulator

    acc, pending, n = Accumulator(), None, 0
    t0 = time.perf_counter()
    for _, batch in feed:
        state, met = fns.train_step(state, batch, mesh)
        if pending is not None:
            acc.add(*pending)
        pending, n = (met, batch, 0.0, None), n + 1
    if pending is not None:
        acc.add(*pending)
    return state, (time.perf_counter() - t0) / max(n, 1) * 1e3


def measure(config: str, steps: int, rounds: int, warm: bool) -> dict:
    from dctmodel.config import get_config
    from dctmodel.data import Prefetcher, make_source, sample_batch
    from dctmodel.train.sharding import make_mesh, train_cpu_devices, use_cpu_devices
    from dctmodel.train.steps import functions

    cfg = get_config(config)
    use_cpu_devices(train_cpu_devices(cfg))
    fns, mesh = functions(cfg), make_mesh(cfg.train.model_axis)
    state = fns.shard_state(fns.init(cfg.train.seed), mesh)
    first = make_source(cfg.data, "train", cfg.train.cache_mb)
    built = [(s, sample_batch(cfg, first, cfg.train.seed, s)) for s in range(steps)]
    source = make_source(cfg.data, "train", cfg.train.cache_mb)
    if warm:
        for i in range(len(source)):
            source.tokens(i)
    state, _ = run_loop(fns, state, mesh, built[:5])  # compile
    times: dict = {"built": [], "pipeline": []}
    start = 10**6  # steps no block has drawn: a cold source renders as a run's early steps do
    for r in range(rounds):
        state, ms = run_loop(fns, state, mesh, built)
        times["built"].append(ms)
        feed = Prefetcher(cfg, source, cfg.train.seed, start, start + steps, depth=cfg.train.prefetch)
        try:
            state, ms = run_loop(fns, state, mesh, feed)
        finally:
            feed.close()
        times["pipeline"].append(ms)
        start += steps
        print(f"round {r + 1}/{rounds}: built {times['built'][-1]:.1f} ms, pipeline {ms:.1f} ms", file=sys.stderr)
    med = {k: float(np.median(v)) for k, v in times.items()}
    return {
        "config": config,
        "cache": "warm" if warm else "cold",
        "steps_per_block": steps,
        "rounds": rounds,
        "built_ms": med["built"],
        "pipeline_ms": med["pipeline"],
        "pipeline_over_built": med["pipeline"] / med["built"],
        "blocks": times,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--steps", type=int, default=150, help="steps per block")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--cache", choices=["cold", "warm", "both"], default="both")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "model_feed.json"))
    args = ap.parse_args(argv)
    if args.steps < 1 or args.rounds < 1:
        ap.error("--steps and --rounds must be >= 1")
    rows = [
        measure(args.config, args.steps, args.rounds, warm)
        for warm in {"cold": [False], "warm": [True], "both": [False, True]}[args.cache]
    ]
    for r in rows:
        print(
            f"{r['config']} ({r['cache']} scenes): built beforehand {r['built_ms']:.1f} ms a step, "
            f"pipeline {r['pipeline_ms']:.1f} ms: x{r['pipeline_over_built']:.3f}"
        )
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(rows, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    from dctmodel.train.hostmem import reexec_with_hugepages

    reexec_with_hugepages()  # as the trainer runs (glibc's malloc on huge pages)
    main()
