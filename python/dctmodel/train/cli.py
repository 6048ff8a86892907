"""``python -m dctmodel.train``: the command line of :func:`dctmodel.train.train`."""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys

import jax

from ..checkpoint import UnreadableCheckpoint
from ..config import check_config, get_config, override
from ..data import check_labels, make_source
from . import distributed
from .loop import check_resume, train
from .sharding import cpu_device_count, train_cpu_devices, use_cpu_devices

DESCRIPTION = "Training, evaluation and checkpointing of the DCTransformer."


def _parse_sets(items) -> dict:
    out = {}
    for it in items or []:
        k, eq, v = it.partition("=")
        if not eq:
            raise ValueError(f"--set {it!r}: expected SECTION.FIELD=VALUE")
        try:
            out[k] = _tuples(ast.literal_eval(v))
        except (ValueError, SyntaxError):
            out[k] = v  # a bare word is a string: data.source=folder
    return out


def _tuples(v):
    """Lists from the command line as tuples: configs are hashable (they key compiled steps)."""
    return tuple(_tuples(x) for x in v) if isinstance(v, (list, tuple)) else v


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers, e.g. 0,1,2,3") from None


def _cpu_devices(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 'auto' or a device count >= 1")
    return n


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m dctmodel.train", description=DESCRIPTION)
    ap.add_argument("--config", default="tiny", help="preset name (dctmodel.config.PRESETS)")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in workdir")
    ap.add_argument(
        "--set",
        nargs="*",
        action="extend",  # "--set a=1 --set b=2" applies both (argparse's default keeps only the last)
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override config fields (may be repeated)",
    )
    ap.add_argument("--stop-after", type=int, default=None, help="stop after this many total steps")
    ap.add_argument("--no-eval", action="store_true")
    ap.add_argument(
        "--cpu-devices",
        type=_cpu_devices,
        default=None,
        metavar="N|auto",
        help="on a CPU, train data-parallel on N devices, one per core (auto: as many as there are "
        "cores, reduced to a divisor of train.batch_size; default: the config's train.cpu_devices, "
        "where 0 means auto); 1: one device. "
        "Ignored when XLA_FLAGS sets --xla_force_host_platform_device_count, in multi-host runs, "
        "and on GPUs and TPUs",
    )
    mh = ap.add_argument_group(
        "multi-host",
        "one process per host (or per GPU), each started with the same command (docs/dctmodel.md, Multi-host); "
        "the workdir must be a folder that all of them see",
    )
    mh.add_argument(
        "--distributed",
        action="store_true",
        help="join a multi-host run (jax.distributed.initialize); on a TPU pod slice or under SLURM "
        "the flags below are detected and may be left out",
    )
    mh.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0 (implies --distributed)")
    mh.add_argument("--num-processes", type=int, metavar="N", help="processes in the run (implies --distributed)")
    mh.add_argument("--process-id", type=int, metavar="I", help="this process, 0..N-1 (implies --distributed)")
    mh.add_argument(
        "--local-device-ids",
        type=_ints,
        metavar="0,1,...",
        help="the local GPUs this process uses (implies --distributed); under SLURM JAX otherwise "
        "gives each process only the GPU of its local rank (one task per GPU)",
    )
    args = ap.parse_args(argv)
    joined = (args.coordinator, args.num_processes, args.process_id, args.local_device_ids)
    distributed_run = args.distributed or any(v is not None for v in joined)
    if distributed_run:
        try:
            distributed.initialize(*joined)
        except ValueError as e:
            ap.error(str(e))
    # Mistakes in the command are reported in one line before anything compiles.
    try:
        cfg = override(get_config(args.config), **_parse_sets(args.set))
        check_config(cfg)
        if not distributed_run:
            # Before anything runs on JAX: the device count is fixed when its backends start.
            n = args.cpu_devices
            if n is None:
                n = train_cpu_devices(cfg)  # checked against the batch by check_config
            elif n == "auto":
                n = cpu_device_count(cfg.train.batch_size)
            elif cfg.train.batch_size % n:
                raise ValueError(f"--cpu-devices {n}: must divide train.batch_size={cfg.train.batch_size}")
            use_cpu_devices(n)
        source, eval_source = make_source(cfg.data, "train"), make_source(cfg.data, "eval")
        check_labels(cfg, source)
        if args.resume:
            check_resume(cfg, args.workdir)
        os.makedirs(args.workdir, exist_ok=True)
    except (ValueError, OSError) as e:
        ap.error(str(e))
    say = distributed.is_main()  # the other processes of a multi-host run would repeat each line
    if say:
        print(
            f"config {cfg.name}: {cfg.steps} steps of {cfg.train.batch_size}x{cfg.model.chunk_size} tokens; "
            f"{len(jax.devices())} device(s) ({jax.devices()[0].platform})"
            + (f" in {jax.process_count()} processes" if jax.process_count() > 1 else ""),
            file=sys.stderr,
        )
    try:
        _, records = train(
            cfg,
            args.workdir,
            resume=args.resume,
            stop_after=args.stop_after,
            source=source,
            eval_source=eval_source,
            do_eval=not args.no_eval,
        )
    except UnreadableCheckpoint as e:  # every saved step damaged: nothing to resume from
        ap.exit(2, f"{ap.prog}: error: {e}\n")
    evals = [r for r in records if "eval" in r]
    if evals and say:
        last = evals[-1]["eval"]
        print(
            json.dumps(
                {
                    "step": evals[-1]["step"],
                    "bpd": last["bpd"],
                    "bpd_channel": last["bpd_channel"],
                    "bpd_position": last["bpd_position"],
                    "bpd_value": last["bpd_value"],
                }
            )
        )
