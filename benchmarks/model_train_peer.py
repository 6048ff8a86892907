"""Training step of dctmodel against the public PyTorch DCTransformer, at matched sizes, in one run.

    pip install torch einops            # the peer's own dependencies (not dctsparse's)
    git clone https://github.com/wushidiguo/DCTransformer /tmp/peer-dct
    python benchmarks/model_train_peer.py --peer /tmp/peer-dct                 # issue 22's comparison
    python benchmarks/model_train_peer.py --peer /tmp/peer-dct --set model.chunk_size=16
    python benchmarks/model_train_peer.py --peer /tmp/peer-dct --one-thread --cpu 1

The peer (wushidiguo/DCTransformer, ``dctransformer/model.py``) is imported from
the checkout given by ``--peer``; nothing is downloaded.  Both sides are built
from one ``dctmodel`` config (default: ``tiny`` with the peer's structure:
one attention and one MLP per block, one block per encoder and decoder, two in
the value decoder, no overlap, no structure masks, no pointer or window
context) and are given one batch of the same shape: ``batch_size`` rows of
``chunk_size`` target tokens and a dense DCT image of the preset's block grid.
The peer has biases and its own embeddings (so a few more parameters), its
encoder's convolution has kernel ``2 x stride`` (ours ``downsample_kernel``),
and it has no chroma subsampling in its dense image; these are small next to
the shared cost (attention and MLPs over the same sequence lengths and widths).

Each side times, after warm-up, the same three calls as
``benchmarks/model_train.py``: ``forward`` (the training loss, no gradient),
``fwd+bwd`` (the loss and its gradients) and ``step`` (the peer's own training
step: zero_grad, loss, backward, ``clip_grad_norm_(1)``, AdamW; ours:
``Functions._train_step``).  The sides run in alternating child processes for
``--ab-rounds`` rounds; the report gives medians, the ratios to the forward
pass and dctmodel's speed-up in target tokens/s (``batch x chunk`` per step).
``--one-thread`` gives each side one thread (``torch.set_num_threads(1)``, XLA's
one-thread flags); otherwise torch uses its default threads and JAX one device
with XLA's default threads.  Writes ``benchmarks/results/model_train_peer.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the repo root
from benchmarks.model_train import (  # noqa: E402
    METRICS,
    ONE_THREAD,
    ROOT,
    _cpu_model,
    compiled_fns,
    preset,
    time_round_robin,
)

# The peer's structure, in dctmodel's terms (issue 22's "matched structure").
MATCHED = [
    "model.chunk_size=64",
    "model.overlap=0",
    "model.downsample_kernel=1",
    "model.encoder_spec=((1,1),)",
    "model.channel_spec=((1,1),)",
    "model.position_spec=((1,1),)",
    "model.value_spec=((1,1),(1,1))",
    "model.structure_masks=False",
    "model.position_pointer=False",
    "model.window_context=False",
    "model.window_pointer=False",
    "model.dropout=0.0",
]


def peer_calls(cfg, peer: Path):
    """The peer's three timed callables for ``cfg``'s sizes, and its model (``torch.nn.Module``)."""
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, str(peer))
    # The peer's package imports matplotlib and torchvision (for its codec's plots and image
    # I/O), which its model never calls: empty stand-ins when they are not installed.
    for name in ("matplotlib", "matplotlib.pyplot", "torchvision"):
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
    try:
        from dctransformer.model import DCTransformer
    except ImportError as e:
        raise SystemExit(f"--peer {peer}: cannot import dctransformer.model ({e}); need torch and einops") from e

    m, d = cfg.model, cfg.data
    if len(set(m.channel_spec + m.position_spec + m.encoder_spec)) != 1 or len(set(m.value_spec)) != 1:
        raise SystemExit("the peer has one attention and one MLP per layer: use spec((1,1), ...) for every stack")
    side = d.grid * d.block_size  # the image side the block grid covers
    chunk, batch = m.chunk_size, cfg.train.batch_size
    torch.manual_seed(0)
    model = DCTransformer(
        resolution=(side, side),
        block_size=d.block_size,
        encoder_downsample=m.downsample_stride,
        nlayer=len(m.channel_spec),
        val_nlayer=len(m.value_spec),
        d_model=m.d_model,
        nheads=m.num_heads,
        chunk_size=chunk,
        max_nchunk=16,
        dropout=m.dropout,
    )
    model.train()
    gen = torch.Generator().manual_seed(0)
    # Token ids past the peer's three specials (0 pad, 1 start, 2 stop), as its data would be.
    ncls = (3 * d.block_size**2 + 3, d.grid**2 + 3, 32 * d.block_size**2 + 3)
    chunks = torch.stack([torch.randint(3, n, (batch, chunk), generator=gen) for n in ncls], dim=1)
    priors = torch.randint(-4, 5, (batch, 3 * d.block_size**2, d.grid, d.grid), generator=gen).float()
    chunk_ids = torch.randint(0, 16, (batch,), generator=gen)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def loss():
        logits = model(chunks, priors, chunk_ids)
        return sum(
            F.cross_entropy(lg.reshape(-1, n), chunks[:, i, :].reshape(-1), ignore_index=0)
            for i, (lg, n) in enumerate(zip(logits, ncls, strict=True))
        )

    def forward():
        with torch.no_grad():
            return loss()

    def fwd_bwd():
        model.zero_grad(set_to_none=True)
        loss().backward()

    def step():
        opt.zero_grad(set_to_none=True)
        loss().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return {"forward": forward, "fwd+bwd": fwd_bwd, "step": step}, model


def time_torch(calls: dict, rounds: int, reps: int) -> dict:
    for f in calls.values():  # warm-up
        f()
        f()
    times = {k: [] for k in calls}
    for _ in range(rounds):
        for k, f in calls.items():
            for _ in range(reps):
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
    return times


def child(args) -> dict:
    cfg = preset(args.config, MATCHED + args.set)
    row = {"batch": cfg.train.batch_size, "chunk": cfg.model.chunk_size}
    if args.child == "peer":
        import torch

        if args.one_thread:
            torch.set_num_threads(1)
        calls, model = peer_calls(cfg, Path(args.peer))
        row.update(params=sum(p.numel() for p in model.parameters()), torch=torch.__version__)
        row.update(threads=torch.get_num_threads(), times=time_torch(calls, args.rounds, args.reps))
    else:
        from dctmodel.model import count_params

        calls, facts = compiled_fns(cfg)
        times, _ = time_round_robin(calls, args.rounds, args.reps)
        row.update(params=count_params(cfg), flops_per_step=facts["flops_per_step"], times=times)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--peer", required=True, help="a checkout of wushidiguo/DCTransformer")
    ap.add_argument("--config", default="tiny", help="dctmodel preset giving the sizes (then the peer's structure)")
    ap.add_argument("--set", nargs="*", action="extend", default=[], metavar="SECTION.FIELD=VALUE")
    ap.add_argument("--rounds", type=int, default=4, help="round-robin passes over forward/fwd+bwd/step")
    ap.add_argument("--reps", type=int, default=3, help="calls of each function per pass")
    ap.add_argument("--ab-rounds", type=int, default=3, help="alternations of the two sides' processes")
    ap.add_argument("--one-thread", action="store_true", help="one thread each side")
    ap.add_argument("--cpu", type=int, default=None, help="pin both sides to this CPU core")
    ap.add_argument("--child", choices=("peer", "dctmodel"), default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "model_train_peer.json"))
    args = ap.parse_args(argv)
    if not (Path(args.peer) / "dctransformer" / "model.py").is_file():
        ap.error(f"--peer {args.peer}: no dctransformer/model.py there (a checkout of wushidiguo/DCTransformer)")

    if args.child:
        if args.one_thread:
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + ONE_THREAD).strip()
        if args.cpu is not None:
            os.sched_setaffinity(0, {args.cpu})
        print(json.dumps(child(args)))
        return

    base = [sys.executable, str(Path(__file__).resolve()), "--peer", args.peer, "--config", args.config]
    base += ["--rounds", str(args.rounds), "--reps", str(args.reps)]
    base += ["--set", *args.set] if args.set else []
    base += ["--one-thread"] if args.one_thread else []
    base += ["--cpu", str(args.cpu)] if args.cpu is not None else []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "python"), str(ROOT)]))
    rows: dict = {}
    for r in range(args.ab_rounds):
        for side in ("peer", "dctmodel"):
            res = subprocess.run(base + ["--child", side], env=env, check=True, capture_output=True, text=True)
            row = json.loads(res.stdout.strip().splitlines()[-1])
            if side not in rows:
                rows[side] = dict(row, times={k: [] for k in METRICS})
            for k in METRICS:
                rows[side]["times"][k] += row["times"][k]
            print(f"round {r + 1}/{args.ab_rounds} {side} done", file=sys.stderr)

    print(f"\n{_cpu_model()}, {os.cpu_count()} CPUs; config {args.config} + peer structure + {args.set or 'nothing'}")
    print("side | params | B x C | forward ms | fwd+bwd ms | step ms | fwd+bwd/fwd | step/fwd | tok/s")
    print(" | ".join(["---"] * 9))
    for side, row in rows.items():
        m = {k: statistics.median(row["times"][k]) * 1e3 for k in METRICS}
        row["summary"] = dict(
            forward_ms=m["forward"],
            fwd_bwd_ms=m["fwd+bwd"],
            step_ms=m["step"],
            tokens_per_s=row["batch"] * row["chunk"] / m["step"] * 1e3,
        )
        print(
            f"{side} | {row['params'] / 1e3:.0f}k | {row['batch']} x {row['chunk']} | {m['forward']:.1f} | "
            f"{m['fwd+bwd']:.1f} | {m['step']:.1f} | {m['fwd+bwd'] / m['forward']:.2f} | "
            f"{m['step'] / m['forward']:.2f} | {row['summary']['tokens_per_s']:.0f}"
        )
    ratio = rows["dctmodel"]["summary"]["tokens_per_s"] / rows["peer"]["summary"]["tokens_per_s"]
    print(f"dctmodel / peer throughput x{ratio:.2f}")
    meta = {"cpu_model": _cpu_model(), "cpus": os.cpu_count(), "one_thread": args.one_thread, "cpu": args.cpu}
    meta["command"] = " ".join(["python", "benchmarks/model_train_peer.py"] + (argv or sys.argv[1:]))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "rows": rows, "throughput_ratio": ratio}, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
