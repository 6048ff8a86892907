"""Training throughput of the DCTransformer and of its input pipeline.

    python benchmarks/model_train.py                       # tiny and small on this machine
    python benchmarks/model_train.py --configs lsun --steps 10 --set train.batch_size=16   # on a GPU

For each config it measures, after compilation:

* the train step: median step time over ``--steps`` steps and the training
  throughput in target tokens/s (``batch_size * chunk_size`` per step, the
  paper's token count; the weighted count, which excludes padding past the
  stop token, is reported too), the step's FLOPs from XLA's cost analysis and,
  on a GPU/TPU, the model FLOPs utilisation against ``--peak-tflops``;
* the input pipeline (``data.sample_batch`` on one thread): batches/s and
  tokens/s with a cold cache (every image rendered and encoded) and a warm one,
  so it can be compared with the model's rate.

Paper presets read their images from a folder; here they use the built-in
scenes at the preset's resolution so no dataset is needed.
Prints a table and writes JSON (default ``benchmarks/results/model_train.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import jax

from dctmodel.config import get_config, override
from dctmodel.data import make_source, sample_batch
from dctmodel.model import count_params
from dctmodel.train import functions, make_mesh, put_batch
from dctmodel.train.cli import _parse_sets


def bench_input(cfg, n_batches: int) -> dict:
    src = make_source(cfg.data, "train")
    t0 = time.perf_counter()
    for s in range(n_batches):
        sample_batch(cfg, src, 0, s)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s in range(n_batches):  # same steps again: every image is now cached
        sample_batch(cfg, src, 0, s)
    warm = time.perf_counter() - t0
    tok = cfg.train.batch_size * cfg.model.chunk_size
    return {"input_batches_per_s_cold": n_batches / cold, "input_tokens_per_s_cold": n_batches * tok / cold,
            "input_batches_per_s_warm": n_batches / warm, "input_tokens_per_s_warm": n_batches * tok / warm}


def bench_train(cfg, steps: int, peak_tflops: float | None) -> dict:
    mesh = make_mesh(cfg.train.model_axis)
    fns = functions(cfg)
    src = make_source(cfg.data, "train")
    batches = [sample_batch(cfg, src, cfg.train.seed, s) for s in range(steps + 2)]
    state = fns.shard_state(fns.init(cfg.train.seed), mesh)
    train_fn = fns._for_mesh(mesh).train
    t0 = time.perf_counter()
    compiled = train_fn.lower(state, put_batch(batches[0], mesh)).compile()
    compile_s = time.perf_counter() - t0
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get("flops", float("nan"))) if cost else float("nan")
    for b in batches[:2]:  # warm-up
        state, met = fns.train_step(state, b, mesh)
    jax.block_until_ready(state)
    times, weighted = [], 0.0
    for b in batches[2:]:
        t0 = time.perf_counter()
        state, met = fns.train_step(state, b, mesh)
        jax.block_until_ready(met["loss"])
        times.append(time.perf_counter() - t0)
        weighted += float(b["weight"].sum())
    step = statistics.median(times)
    tok = cfg.train.batch_size * cfg.model.chunk_size
    out = {"compile_s": compile_s, "step_time_s": step, "step_time_mean_s": statistics.mean(times),
           "tokens_per_s": tok / step, "weighted_tokens_per_s": weighted / sum(times),
           "flops_per_step": flops, "achieved_tflops": flops / step / 1e12}
    if peak_tflops:
        out["mfu"] = out["achieved_tflops"] / peak_tflops
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", nargs="+", default=["tiny", "small"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--input-batches", type=int, default=50)
    ap.add_argument("--set", nargs="*", default=[], metavar="SECTION.FIELD=VALUE")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="device peak for MFU (e.g. 989 for H100 SXM bf16 dense)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  "model_train.json"))
    args = ap.parse_args(argv)
    dev = jax.devices()[0]
    meta = {"device": f"{len(jax.devices())} x {dev.device_kind} ({dev.platform})", "cpus": os.cpu_count(),
            "machine": platform.processor() or platform.machine(), "jax": jax.__version__,
            "command": " ".join(["python", "benchmarks/model_train.py"] + (argv if argv is not None else sys.argv[1:]))}
    rows = []
    for name in args.configs:
        cfg = get_config(name)
        if cfg.data.source == "folder":
            cfg = override(cfg, **{"data.source": "scenes"})
        cfg = override(cfg, **_parse_sets(args.set))
        row = {"config": name, "params": count_params(cfg), "batch": cfg.train.batch_size,
               "chunk": cfg.model.chunk_size, "overlap": cfg.model.overlap, "bf16": cfg.train.bf16}
        row.update(bench_input(cfg, args.input_batches))
        row.update(bench_train(cfg, args.steps, args.peak_tflops))
        row["input_keeps_up_warm"] = row["input_tokens_per_s_warm"] > row["tokens_per_s"]
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)

    print(f"\n{meta['device']}, {meta['cpus']} CPUs, jax {meta['jax']}")
    hdr = ("config", "params", "batch x chunk", "step ms", "train tok/s", "GFLOP/step", "input tok/s cold",
           "input tok/s warm")
    print(" | ".join(hdr))
    print(" | ".join("---" for _ in hdr))
    for r in rows:
        print(" | ".join([r["config"], f"{r['params'] / 1e6:.2f}M", f"{r['batch']} x {r['chunk']}",
                          f"{r['step_time_s'] * 1e3:.1f}", f"{r['tokens_per_s']:.0f}",
                          f"{r['flops_per_step'] / 1e9:.2f}", f"{r['input_tokens_per_s_cold']:.0f}",
                          f"{r['input_tokens_per_s_warm']:.0f}"]))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
