"""Training speed of the DCTransformer: forward, backward and optimiser, and the input pipeline.

    python benchmarks/model_train.py                                  # tiny and small on this machine
    python benchmarks/model_train.py --one-thread --cpu 1             # one pinned CPU thread (steadier)
    python benchmarks/model_train.py --ab HEAD~1 --one-thread --cpu 1 # old code against the working tree
    python benchmarks/model_train.py --configs tiny --ab 60f7ff0 --devices-a 1 --input-batches 0 \
        --set model.chunk_size=16 model.downsample_kernel=3 model.overlap=0 "model.value_spec=((1,2),)" \
        --set-b model.window_context=False model.position_pointer=False
        # issue 22's code against the working tree at today's tiny structure (REV lacks the last two);
        # add --heap-a default to run REV under glibc's malloc as it comes, as its trainer did
    python benchmarks/model_train.py --configs lsun --set train.batch_size=16 --input-batches 0   # on a GPU

For each config it times, after compilation, three jitted functions on the
same batch and parameters:

* ``forward``: the training loss (dropout on), no gradient;
* ``fwd+bwd``: the loss and its gradients (``Functions.grads``, in
  ``train.micro_batch`` slices where the preset sets them);
* ``step``: the trainer's whole step (``Functions._train_step``: forward,
  backward, gradient clipping, Adam, metrics).

They are called round-robin (``--rounds`` rounds of ``--reps`` calls each), so
a machine shared with other work slows all three alike, and the report gives
the medians, the ratios ``fwd+bwd / forward`` and ``step / forward`` (the
backward pass plus the optimiser cost ``step / forward - 1`` forward passes),
the training throughput in target tokens/s (``batch_size * chunk_size`` per
step, the paper's count) and XLA's FLOP count of the step.  It also times the
input pipeline (``data.sample_batch`` on one thread, cold and warm cache).

``--ab REV`` compares the ``dctmodel`` package of git revision ``REV`` (A,
extracted under ``build/ab-model/``) with the working tree's (B): each side
runs in its own child process, the children alternate for ``--ab-rounds``
rounds and the report gives each side's medians and B's speed-up.

``--devices N`` makes JAX's CPU N devices and shards the batch over them, as
``python -m dctmodel.train --cpu-devices`` does (default ``auto``: what the
trainer chooses, one device per core); ``--devices-a`` sets the A side's
count and ``--set-b`` overrides fields of the B side only (those REV's config
lacks).

``--heap`` sets how glibc's malloc serves XLA:CPU's per-call temporaries
(large blocks that glibc otherwise maps afresh, and page-faults, on every
call): ``hugepages`` (the default, and what ``python -m dctmodel.train``
does: ``dctmodel.train.hostmem``) backs them with 2 MB pages through the
tunable ``glibc.malloc.hugetlb=1``; ``default`` is glibc as it comes;
``keep`` keeps freed memory in one arena (``keep_heap``).  A tunable is read
at process start, so the benchmark starts itself again, and gives each
``--ab`` child its side's environment.  ``--heap-a`` defaults to ``--heap``;
the trainer before ``hostmem`` ran with ``--heap-a default``.

Paper presets read their images from a folder; here they use the built-in
scenes at the preset's resolution so no dataset is needed.
Prints a table and writes JSON (default ``benchmarks/results/model_train.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
METRICS = ("forward", "fwd+bwd", "step")


def keep_heap() -> bool:
    """glibc only, before JAX runs anything: serve every allocation from the main
    heap and never give freed memory back, so XLA's per-call temporary block is
    reused instead of being mmapped (and page-faulted) anew on every call.
    Returns whether the settings were applied."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 (not glibc: AttributeError)
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8
    return all(libc.mallopt(p, v) == 1 for p, v in ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1)))


HEAPS = ("hugepages", "default", "keep")


def heap_env(heap: str, environ) -> dict:
    """``environ`` with ``GLIBC_TUNABLES`` as ``--heap heap`` needs it: the hugetlb tunable
    added for ``hugepages`` (where the trainer would add it), removed otherwise."""
    from dctmodel.train.hostmem import OPT_OUT, TUNABLE, hugepage_env

    kept = [t for t in environ.get("GLIBC_TUNABLES", "").split(":") if t and not t.startswith(TUNABLE)]
    env = {k: v for k, v in environ.items() if k not in ("GLIBC_TUNABLES", OPT_OUT)}
    if kept:
        env["GLIBC_TUNABLES"] = ":".join(kept)
    return (hugepage_env(env) or env) if heap == "hugepages" else env


# The --ab child's dctmodel code root (a python/ directory).
CODE_ENV = "DCTMODEL_BENCH_CODE"


def use_code_from(root: str) -> None:
    """Makes ``dctmodel`` (and its submodules) import from ``root`` (a ``python/``
    directory), and checks that it did.

    PYTHONPATH alone is not enough: an editable install (scikit-build-core's)
    puts a finder on ``sys.meta_path`` that maps every module of the package
    to the working tree, ahead of ``sys.path``, so the A side of ``--ab`` ran
    the working tree's code. This finder goes first; ``dctsparse`` still
    comes from wherever the installed package is."""
    import importlib.abc
    import importlib.machinery

    class _Root(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "dctmodel":
                return importlib.machinery.PathFinder.find_spec(name, [root])
            if name.startswith("dctmodel."):
                return importlib.machinery.PathFinder.find_spec(name, path)
            return None

    sys.meta_path.insert(0, _Root())
    import dctmodel

    where = Path(dctmodel.__file__).resolve()
    if not where.is_relative_to(Path(root).resolve()):
        raise SystemExit(f"dctmodel came from {where}, not from {root}")


def preset(name: str, sets: list[str]):
    from dctmodel.config import get_config, override
    from dctmodel.train.cli import _parse_sets

    cfg = get_config(name)
    if cfg.data.source == "folder":
        cfg = override(cfg, **{"data.source": "scenes"})
    return override(cfg, **_parse_sets(sets))


def bench_input(cfg, n_batches: int) -> dict:
    from dctmodel.data import make_source, sample_batch

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
    return {"input_tokens_per_s_cold": n_batches * tok / cold, "input_tokens_per_s_warm": n_batches * tok / warm}


def compiled_fns(cfg) -> tuple[dict, dict]:
    """The three timed callables (no arguments) and facts about their compilation."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from dctmodel.data import make_source, sample_batch
    from dctmodel.train import functions, make_mesh, put_batch

    fns = functions(cfg)
    mesh = make_mesh(cfg.train.model_axis)
    batch = put_batch(sample_batch(cfg, make_source(cfg.data, "train"), cfg.train.seed, 0), mesh)
    state = fns.shard_state(fns.init(cfg.train.seed), mesh)
    params, step = state["params"], state["step"]

    def loss(params, batch, step):  # the loss of Functions._train_step
        key = jax.random.fold_in(jax.random.key(cfg.train.seed), step)
        logits = fns.model(params)(batch, deterministic=False, rngs=nnx.Rngs(dropout=key))
        return fns.token_nats(logits, batch).sum() / jnp.maximum(batch["weight"].sum(), 1.0)

    def on_mesh(f):  # the trainer passes its mesh (the gradient's reduction may depend on it)
        return functools.partial(f, mesh=mesh) if "mesh" in inspect.signature(f).parameters else f

    # The trainer's own gradient function (micro-batched when train.micro_batch is set);
    # revisions before it (--ab) take the gradient of the whole batch's loss.
    grad_fn = on_mesh(fns.grads) if hasattr(fns, "grads") else jax.value_and_grad(loss)
    t0 = time.perf_counter()
    fwd = jax.jit(loss).lower(params, batch, step).compile()
    vg = jax.jit(grad_fn).lower(params, batch, step).compile()
    # Not donated (unlike the trainer's step), so every call starts from the same state.
    train = jax.jit(on_mesh(fns._train_step)).lower(state, batch).compile()
    facts = {"compile_s": time.perf_counter() - t0}
    # FLOPs of the whole batch in one pass: XLA counts a scanned loop body once, so the
    # micro-batched step would report a fraction of its work.
    whole = (
        functions(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, micro_batch=0)))
        if hasattr(cfg.train, "micro_batch")
        else fns
    )
    cost = jax.jit(on_mesh(whole._train_step)).lower(state, batch).cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    facts["flops_per_step"] = float(cost.get("flops", float("nan"))) if cost else float("nan")
    mem = train.memory_analysis()
    facts["step_temp_mb"] = mem.temp_size_in_bytes / 1e6 if mem is not None else float("nan")
    calls = {
        "forward": lambda: fwd(params, batch, step),
        "fwd+bwd": lambda: vg(params, batch, step),
        "step": lambda: train(state, batch),
    }
    return calls, facts


def time_round_robin(calls: dict, rounds: int, reps: int) -> tuple[dict, dict]:
    """Seconds per call of each callable, ``rounds`` round-robin passes of ``reps`` calls,
    and the minor page faults per call of each (the process's, so other threads count too)."""
    import resource

    import jax

    for f in calls.values():  # warm-up
        jax.block_until_ready(f())
        jax.block_until_ready(f())
    times = {k: [] for k in calls}
    faults = dict.fromkeys(calls, 0)
    for _ in range(rounds):
        for k, f in calls.items():
            for _ in range(reps):
                f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                t0 = time.perf_counter()
                jax.block_until_ready(f())
                times[k].append(time.perf_counter() - t0)
                faults[k] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    return times, {k: v / (rounds * reps) for k, v in faults.items()}


def measure(args) -> list[dict]:
    """Raw timings per config (seconds, every call), in this process."""
    out = []
    for name in args.configs:
        cfg = preset(name, args.set)
        from dctmodel.model import count_params

        row = {
            "config": name,
            "params": count_params(cfg),
            "batch": cfg.train.batch_size,
            "chunk": cfg.model.chunk_size,
            "overlap": cfg.model.overlap,
        }
        calls, facts = compiled_fns(cfg)
        row.update(facts)
        row["times"], row["page_faults_per_call"] = time_round_robin(calls, args.rounds, args.reps)
        if args.input_batches:
            row.update(bench_input(cfg, args.input_batches))
        out.append(row)
    return out


def summarise(row: dict) -> dict:
    m = {k: statistics.median(row["times"][k]) for k in METRICS}
    tok = row["batch"] * row["chunk"]
    return {
        "forward_ms": m["forward"] * 1e3,
        "fwd_bwd_ms": m["fwd+bwd"] * 1e3,
        "step_ms": m["step"] * 1e3,
        "fwd_bwd_over_forward": m["fwd+bwd"] / m["forward"],
        "step_over_forward": m["step"] / m["forward"],
        "tokens_per_s": tok / m["step"],
        "calls": len(row["times"]["step"]),
    }


def print_table(rows: list[dict], label: str = "") -> None:
    hdr = (
        "config",
        "params",
        "B x C",
        "forward ms",
        "fwd+bwd ms",
        "step ms",
        "fwd+bwd/fwd",
        "step/fwd",
        "tok/s",
        "GFLOP/step",
        "faults/step",
    )
    print(" | ".join(("side",) + hdr if label else hdr))
    print(" | ".join("---" for _ in range(len(hdr) + bool(label))))
    for r in rows:
        s = r["summary"]
        cells = [
            r["config"],
            f"{r['params'] / 1e6:.2f}M",
            f"{r['batch']} x {r['chunk']}",
            f"{s['forward_ms']:.1f}",
            f"{s['fwd_bwd_ms']:.1f}",
            f"{s['step_ms']:.1f}",
            f"{s['fwd_bwd_over_forward']:.2f}",
            f"{s['step_over_forward']:.2f}",
            f"{s['tokens_per_s']:.0f}",
            f"{r['flops_per_step'] / 1e9:.2f}",
            f"{r['page_faults_per_call']['step']:.0f}",
        ]
        print(" | ".join(([r["side"]] if label else []) + cells))


def extract_rev(rev: str) -> Path:
    """``python/`` of git revision ``rev`` under ``build/ab-model/<sha>/``; returns that ``python`` dir."""
    sha = subprocess.check_output(["git", "rev-parse", "--short", rev], cwd=ROOT, text=True).strip()
    dest = ROOT / "build" / "ab-model" / sha
    if not (dest / "python" / "dctmodel").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", sha, "python/dctmodel"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "python"


def child_argv(args, heap: str, devices: int, extra_sets: list[str]) -> list[str]:
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--heap",
        heap,
        "--rounds",
        str(args.rounds),
        "--reps",
        str(args.reps),
        "--input-batches",
        "0",
        "--configs",
        *args.configs,
    ]
    if args.set or extra_sets:
        argv += ["--set", *args.set, *extra_sets]
    if args.one_thread:
        argv.append("--one-thread")
    if args.cpu is not None:
        argv += ["--cpu", str(args.cpu)]
    return argv + ["--devices", str(devices)]


def run_ab(args) -> list[dict]:
    old = extract_rev(args.ab)
    here = ROOT / "python"
    # Each side's dctmodel comes from its code root (use_code_from in the
    # child); dctsparse, and its compiled core, from the installed package.
    sides = {
        "A": (str(old), args.heap_a, args.devices_a, []),
        "B": (str(here), args.heap, args.devices, args.set_b),
    }
    merged: dict = {}
    for r in range(args.ab_rounds):
        for side, (path, heap, devices, sets) in sides.items():
            env = dict(heap_env(heap, os.environ), PYTHONPATH=str(ROOT))
            env[CODE_ENV] = path
            res = subprocess.run(
                child_argv(args, heap, devices, sets), env=env, check=True, capture_output=True, text=True
            )
            for row in json.loads(res.stdout.strip().splitlines()[-1]):
                key = (side, row["config"])
                if key not in merged:
                    merged[key] = dict(row, side=side, heap=heap, times={k: [] for k in METRICS})
                for k in METRICS:
                    merged[key]["times"][k] += row["times"][k]
            print(f"round {r + 1}/{args.ab_rounds} side {side} done", file=sys.stderr)
    return [merged[(s, c)] for c in args.configs for s in sides]


def resolve_devices(text, args) -> int:
    """``--devices``: a count, or ``auto``, the trainer's choice for the first config
    (``train.cpu_devices``, or one per core: ``dctmodel.train.sharding.train_cpu_devices``; the
    cores this process may use, after ``--cpu``)."""
    if str(text) != "auto":
        return int(text)
    from dctmodel.train.sharding import train_cpu_devices

    return train_cpu_devices(preset(args.configs[0], args.set))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", nargs="+", default=["tiny", "small"])
    ap.add_argument("--rounds", type=int, default=7, help="round-robin passes over forward/fwd+bwd/step")
    ap.add_argument("--reps", type=int, default=3, help="calls of each function per pass")
    ap.add_argument("--input-batches", type=int, default=50, help="0: skip the input pipeline")
    ap.add_argument("--set", nargs="*", action="extend", default=[], metavar="SECTION.FIELD=VALUE")
    ap.add_argument("--one-thread", action="store_true", help=f"XLA_FLAGS+='{ONE_THREAD}'")
    ap.add_argument("--cpu", type=int, default=None, help="pin the process to this CPU core")
    ap.add_argument(
        "--heap",
        choices=HEAPS,
        default="hugepages",
        help="glibc malloc: hugepages (the trainer's: glibc.malloc.hugetlb=1), default (as glibc comes), "
        "keep (keep_heap: freed memory kept, one arena); B side with --ab",
    )
    ap.add_argument("--ab", metavar="REV", default=None, help="compare REV's dctmodel (A) with the working tree (B)")
    ap.add_argument("--heap-a", choices=HEAPS, default=None, help="--heap of the A side (default: --heap)")
    ap.add_argument("--ab-rounds", type=int, default=3)
    ap.add_argument(
        "--devices",
        default="auto",
        help="CPU devices (the trainer's --cpu-devices; auto: as the trainer chooses for the first "
        "config's batch): the batch is sharded over them, one share per core; B side with --ab",
    )
    ap.add_argument("--devices-a", default=None, help="--devices of the A side (default: --devices)")
    ap.add_argument(
        "--set-b",
        nargs="*",
        action="extend",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="overrides for the B side only, after --set (fields REV's config does not have)",
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "model_train.json"))
    args = ap.parse_args(argv)
    args.heap_a = args.heap_a or args.heap
    if args.child and os.environ.get(CODE_ENV):
        use_code_from(os.environ[CODE_ENV])
    if argv is None and not args.child and not args.ab:
        # This process measures: start it again under its --heap's malloc tunables if they differ.
        from dctmodel.train.hostmem import restart

        env = heap_env(args.heap, os.environ)
        if env.get("GLIBC_TUNABLES") != os.environ.get("GLIBC_TUNABLES"):
            restart(env)

    # Before JAX starts: its threads and allocations are set up at the first computation.
    if args.one_thread:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + ONE_THREAD).strip()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    heap_kept = keep_heap() if args.heap == "keep" else False
    args.devices = resolve_devices(args.devices, args)
    args.devices_a = resolve_devices(args.devices_a, args) if args.devices_a else args.devices
    if not args.ab and args.devices != 1:
        import jax

        jax.config.update("jax_num_cpu_devices", args.devices)

    if args.child:
        print(json.dumps(measure(args)))
        return

    import jax

    dev = jax.devices()[0]
    meta = {
        "device": f"{len(jax.devices())} x {dev.device_kind} ({dev.platform})",
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "jax": jax.__version__,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "heap": args.heap,
        "heap_kept": heap_kept,
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
        "devices_b": args.devices,
        "devices_a": args.devices_a if args.ab else None,
        "command": " ".join(["python", "benchmarks/model_train.py"] + (argv if argv is not None else sys.argv[1:])),
    }
    rows = run_ab(args) if args.ab else measure(args)
    for r in rows:
        r["summary"] = summarise(r)
    print(
        f"\n{meta['device']} ({meta['cpu_model']}), {meta['cpus']} CPUs, jax {meta['jax']}, "
        f"XLA_FLAGS='{meta['xla_flags']}'"
    )
    print_table(rows, label="side" if args.ab else "")
    if args.ab:
        for c in args.configs:
            a, b = (next(r for r in rows if r["config"] == c and r["side"] == s)["summary"] for s in "AB")
            print(
                f"{c}: B/A step time {b['step_ms'] / a['step_ms']:.3f}, "
                f"throughput x{b['tokens_per_s'] / a['tokens_per_s']:.2f}"
                f" (A = {args.ab} heap={args.heap_a} devices={args.devices_a},"
                f" B = working tree heap={args.heap} devices={args.devices})"
            )
    elif args.input_batches:
        for r in rows:
            print(
                f"{r['config']}: input pipeline {r['input_tokens_per_s_cold']:.0f} tok/s cold, "
                f"{r['input_tokens_per_s_warm']:.0f} warm"
            )
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    print(f"wrote {args.out}")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
