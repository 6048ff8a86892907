"""Two training runs compared step by step on the same batches: is a model variant's loss lower?

    python benchmarks/model_paired.py runs/tiny runs/variant            # B minus A, per window
    python benchmarks/model_paired.py runs/tiny runs/variant --windows 0 2000 4500 9000

A training batch is a pure function of ``(train.seed, step, row)`` and of the settings that
build it (the data, the chunk size and overlap, chunk selection, the length filter, the
target), so a variant trained with the same of those sees exactly the batches of the
reference run, and the losses each run logs every ``train.log_every`` steps pair up step by
step.  A variant's effect then shows in a few thousand steps (a few minutes of ``tiny``),
without the seed band of separate runs (~0.0002 held-out bpd, ~10 FID for ``tiny``) to beat.
What is left is the variant's own noise: new parameters shift the initial values of the
others, so differences of a few thousandths of a nat can come from that alone.

Prints, per window of steps, the mean of each logged loss term in both runs and the mean
difference ``B - A`` with its standard error over the window's logged steps (the loss of
neighbouring logs is correlated, so read the error as a lower bound).  Refuses runs whose
batches differ (``--force`` compares them anyway).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

TERMS = ("loss", "nats_channel", "nats_position", "nats_value")

# Settings that decide a training batch's rows (data.sample_batch): the whole data section,
# these fields of train and of model.
BATCH_TRAIN = ("seed", "batch_size", "chunk_policy", "chunk_power", "chunk_pmin", "length_filter_lmax", "target")
BATCH_MODEL = ("chunk_size", "overlap")


def load_log(workdir: Path) -> dict[int, dict]:
    """The training records of ``workdir/log.jsonl`` by step (evaluation records left out)."""
    out = {}
    with open(workdir / "log.jsonl") as f:
        for line in f:
            rec = json.loads(line)
            if "step" in rec and all(k in rec for k in TERMS):
                out[int(rec["step"])] = rec
    return out


def batch_settings(cfg: dict) -> dict:
    """The batch-building settings of a config as a dict (``dataclasses.asdict``, or a
    workdir's ``config.json``)."""
    return {
        "data": cfg["data"],
        "train": {k: cfg["train"].get(k) for k in BATCH_TRAIN},
        "model": {k: cfg["model"].get(k) for k in BATCH_MODEL},
    }


def run_settings(workdir: Path) -> dict:
    return batch_settings(json.loads((workdir / "config.json").read_text()))


def differing(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted names of the fields whose values differ between two nested dicts."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += differing(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: {va!r} vs {vb!r}")
    return out


def compare(a: dict[int, dict], b: dict[int, dict], windows: list[int]) -> list[dict]:
    """Per window ``[lo, hi)`` of steps and loss term: both runs' means over the steps both
    logged, the mean paired difference ``B - A`` and its standard error."""
    steps = sorted(set(a) & set(b))
    rows = []
    for lo, hi in zip(windows[:-1], windows[1:], strict=True):
        s = [t for t in steps if lo <= t < hi]
        if not s:
            continue
        for term in TERMS:
            d = [b[t][term] - a[t][term] for t in s]
            mean = sum(d) / len(d)
            var = sum((x - mean) ** 2 for x in d) / (len(d) - 1) if len(d) > 1 else float("nan")
            rows.append(
                {
                    "steps": f"{lo}-{hi}",
                    "logs": len(s),
                    "term": term,
                    "a": sum(a[t][term] for t in s) / len(s),
                    "b": sum(b[t][term] for t in s) / len(s),
                    "b_minus_a": mean,
                    "stderr": math.sqrt(var / len(d)),
                }
            )
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path, help="reference run's workdir")
    ap.add_argument("b", type=Path, help="variant run's workdir")
    ap.add_argument("--windows", type=int, nargs="+", default=[500, 1500, 3000, 4500, 6000, 7500, 9001])
    ap.add_argument("--force", action="store_true", help="compare runs whose batches differ")
    args = ap.parse_args(argv)
    if len(args.windows) < 2 or sorted(args.windows) != args.windows:
        ap.error("--windows: two or more increasing step bounds")
    diff = differing(run_settings(args.a), run_settings(args.b))
    if diff and not args.force:
        print("the runs' batches differ, so their losses do not pair up (--force to compare anyway):", file=sys.stderr)
        for line in diff:
            print("  " + line, file=sys.stderr)
        return 2
    rows = compare(load_log(args.a), load_log(args.b), args.windows)
    if not rows:
        print("no logged step in common within the windows", file=sys.stderr)
        return 2
    print(f"A = {args.a}, B = {args.b} (nats per token; B - A +- its standard error over the logged steps)")
    print("steps | logs | term | A | B | B - A")
    print("--- | --- | --- | --- | --- | ---")
    for r in rows:
        print(
            f"{r['steps']} | {r['logs']} | {r['term']} | {r['a']:.4f} | {r['b']:.4f} | "
            f"{r['b_minus_a']:+.4f} +- {r['stderr']:.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
