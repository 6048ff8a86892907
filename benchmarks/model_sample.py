"""Sampling speed of the DCTransformer: key/value caches vs recomputing the window per variable.

    python benchmarks/model_sample.py                                   # small preset, CPU
    python benchmarks/model_sample.py --cached 128 896 --recompute 16 32 64 128 --batch 2

Both paths run the same jitted ``lax.while_loop`` sampler (``dctmodel.sample``)
on the ``small`` preset (random initial weights: speed does not depend on
them) with ``model.chunk_size`` set to each C (overlap O = 32 as in the
preset), one chunk of exactly C steps per sample (``early_exit=False``,
so every row runs every step whatever it draws).  A "token" is one
channel + position + value draw.  tokens/s = batch * C / wall time of one
call, after a first (compiling) call.

* cached: encoder and cross-attention K/V once per chunk, the O overlap steps
  in one parallel pass, then one decoder step per variable over the caches;
* recompute: encoder once per chunk, then for every variable the decoders it
  needs (channel: 1, position: 2, value: 3) over the whole O + C window.

The recompute path at C = 896 takes too long on a 2-core CPU; it is measured
at smaller C and extrapolated to C = 896, clearly labelled, two ways.  The
per-token time is ``t(S) = c + a*S + b*S^2`` with ``a, b >= 0`` (fixed loop
overhead, linear layers over the ``S = O + C`` window, attention), which is
convex in S, so the secant through the two largest measured S extrapolated to
the target is a lower bound on ``t`` there (an upper bound on recompute
tokens/s, so a lower bound on the speed-up); the least-squares fit of
``c + a*S + b*S^2`` is the estimate.  Writes
``benchmarks/results/model_sample.json``; ``--extrapolate-only`` redoes the
extrapolation from that file without measuring.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import numpy as np

from dctmodel.config import get_config, override
from dctmodel.sample import sample_tokens
from dctmodel.train import functions


def measure(cfg, params, method: str, batch: int, reps: int) -> dict:
    C = cfg.model.chunk_size
    kw = dict(num=batch, seed=0, max_tokens=C, max_chunks=1, method=method, early_exit=False)
    t0 = time.perf_counter()
    sample_tokens(cfg, params, **kw)
    first = time.perf_counter() - t0
    times = []
    for r in range(reps):
        t0 = time.perf_counter()
        sample_tokens(cfg, params, **dict(kw, seed=r + 1))
        times.append(time.perf_counter() - t0)
    t = float(np.median(times))
    return {
        "method": method,
        "C": C,
        "S": C + cfg.model.overlap,
        "batch": batch,
        "seconds": t,
        "first_call_seconds": first,
        "tokens_per_s": batch * C / t,
        "ms_per_step": 1e3 * t / C,
    }


def report(out: dict, T: int, overlap: int) -> None:
    """Print measured speed-ups and the clearly labelled extrapolation to C = T (into ``out``)."""
    rows = out["rows"]
    rec = sorted((r for r in rows if r["method"] == "recompute"), key=lambda r: r["S"])
    cached = {r["C"]: r for r in rows if r["method"] == "cached"}
    for r in rec:
        if r["C"] in cached:
            print(f"speed-up at C={r['C']}: {cached[r['C']]['tokens_per_s'] / r['tokens_per_s']:.1f}x (measured)")
    if len(rec) < 3 or T not in cached or T in {r["C"] for r in rec}:
        return
    S_t = T + overlap
    S = np.array([r["S"] for r in rec], float)
    t = np.array([1.0 / r["tokens_per_s"] for r in rec])  # seconds per token
    lower = t[-1] + (t[-1] - t[-2]) / (S[-1] - S[-2]) * (S_t - S[-1])  # secant: convex t
    coef, *_ = np.linalg.lstsq(np.stack([np.ones_like(S), S, S**2], 1), t, rcond=None)
    fit = float(coef @ np.array([1.0, S_t, S_t**2]))
    c_rate = cached[T]["tokens_per_s"]
    out["extrapolated"] = {
        "C": T,
        "S": S_t,
        "from_C": [r["C"] for r in rec],
        "recompute_tokens_per_s_upper_bound": 1 / lower,
        "recompute_tokens_per_s_fit": 1 / fit,
        "fit_c_a_b": coef.tolist(),
        "cached_tokens_per_s_measured": c_rate,
        "speedup_lower_bound": c_rate * lower,
        "speedup_fit": c_rate * fit,
    }
    print(
        f"C={T}: cached {c_rate:.1f} tokens/s MEASURED; recompute EXTRAPOLATED from C={[r['C'] for r in rec]}: "
        f"<= {1 / lower:.2f} tokens/s (secant bound), ~{1 / fit:.2f} tokens/s (c+a*S+b*S^2 fit) "
        f"-> speed-up >= {c_rate * lower:.0f}x (bound), ~{c_rate * fit:.0f}x (fit)"
    )


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="small")
    ap.add_argument("--cached", type=int, nargs="*", default=[16, 32, 64, 128, 896])
    ap.add_argument("--recompute", type=int, nargs="*", default=[16, 32, 64, 128])
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--target-c", type=int, default=896)
    ap.add_argument("--extrapolate-only", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "model_sample.json"))
    args = ap.parse_args(argv)
    if args.extrapolate_only:
        with open(args.out) as f:
            out = json.load(f)
        report(out, args.target_c, get_config(out["config"]).model.overlap)
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)
        return
    dev = jax.devices()[0]
    device = (
        f"{dev.platform}: {getattr(dev, 'device_kind', '')} ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores)"
    )
    print(f"device {device}; jax {jax.__version__}; config {args.config}; batch {args.batch}")
    rows = []
    for method, cs in (("cached", args.cached), ("recompute", args.recompute)):
        for C in cs:
            cfg = override(get_config(args.config), **{"model.chunk_size": C, "model.dropout": 0.0})
            params = functions(cfg).init(0)["params"]
            r = measure(cfg, params, method, args.batch, args.reps)
            rows.append(r)
            print(
                f"{method:9s} C={C:4d} S={r['S']:4d}: {r['tokens_per_s']:9.1f} tokens/s "
                f"({r['ms_per_step']:8.2f} ms/step, first call {r['first_call_seconds']:.1f} s)",
                flush=True,
            )
    out = {"device": device, "config": args.config, "batch": args.batch, "rows": rows}
    report(out, args.target_c, get_config(args.config).model.overlap)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
