"""The DCTransformer's input pipeline per paper preset: host bytes and chunks/s, dense against sparse.

    python benchmarks/model_input.py                       # every paper preset, tiny and small
    python benchmarks/model_input.py --configs lsun --rows 32

Before (the dense path): each example's encoder input is the dense DCT image
``grid^2 * P*B*B`` int32, scattered on the host and copied to the device.
After (``data.sample_batch`` now): the example carries its prefix tokens
(``prefix`` int32 ``(Lp, 3)``, padded per batch to a power-of-two bucket) and
the jitted step scatters them on the device.  Per preset it reports

* tokens per image of the test images at the preset's settings;
* host bytes per example, before and after (all of the example's arrays);
* host-to-device bytes per step for the preset's global batch (what the
  prefetcher holds per batch too, ``train.prefetch`` times over);
* chunks/s per host core of the input pipeline, warm token cache, one
  thread: drawing rows and building them, before (plus the host scatter)
  and after.

Images: eight natural images of ``skimage.data`` resized to the preset's
``image_size`` (the scenes would give far fewer tokens than photographs).
What ``lsun`` needs: 403M parameters at 40% of an H100's dense bf16 peak
(989 TFLOP/s) and ``6 * params`` FLOPs per target token is ~165k target
tokens/s, 184 chunks of 896 per second per GPU (issue 18's budget).
Prints a table; writes JSON (default ``benchmarks/results/model_input.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PAPER = ("lsun", "ffhq", "imagenet", "openimages", "plant_leaves", "retinopathy", "clevr")
LSUN_CHUNKS_PER_GPU = 184  # see the module docstring


def test_images(size: int) -> list[np.ndarray]:
    """Eight natural RGB images, long side ``size`` (Lanczos)."""
    from PIL import Image
    from skimage import data

    out = []
    for name in ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "cat"):
        im = Image.fromarray(getattr(data, name)())
        s = size / max(im.size)
        out.append(np.asarray(im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.LANCZOS)))
    im = Image.fromarray(np.stack([data.camera()] * 3, axis=-1))
    out.append(np.asarray(im.resize((size, size), Image.LANCZOS)))
    return out


def dense_rows(cfg, batch: dict) -> dict:
    """The old host-side batch: the prefix scattered into dense DCT images on the host."""
    from dctmodel.tokens import dense_dct

    n = cfg.data.num_channels
    out = {k: v for k, v in batch.items() if k != "prefix"}
    out["dct"] = np.stack(
        [
            dense_dct(p[p[:, 0] < n], int((p[:, 0] < n).sum()), hb, wb, cfg.data.grid, n)
            for p, (hb, wb) in zip(batch["prefix"], batch["hw"], strict=True)
        ]
    )
    return out


def bench(name: str, rows: int, reps: int) -> dict:
    from dctmodel.config import get_config, override
    from dctmodel.data import ArraySource, sample_batch

    cfg = get_config(name)
    cfg = override(cfg, **{"data.source": "scenes"})  # the images are given below
    src = ArraySource(cfg.data, test_images(cfg.data.image_size))
    lengths = [len(src.tokens(i)[0]) for i in range(len(src))]  # encodes once: the cache is warm
    t_new, t_old, per_new, per_old = [], [], [], []
    for r in range(reps):
        t0 = time.perf_counter()
        b = sample_batch(cfg, src, 0, r, batch_size=rows)
        t1 = time.perf_counter()
        d = dense_rows(cfg, b)
        t2 = time.perf_counter()
        t_new.append(t1 - t0)
        t_old.append(t2 - t0)
        per_new.append(sum(v.nbytes for v in b.values()) / rows)
        per_old.append(sum(v.nbytes for v in d.values()) / rows)
        del d
    B = cfg.train.batch_size
    res = dict(
        config=name,
        image_size=cfg.data.image_size,
        grid=cfg.data.grid,
        channels=cfg.data.num_channels,
        tokens_per_image=statistics.mean(lengths),
        bytes_per_example_before=statistics.mean(per_old),
        bytes_per_example_after=statistics.mean(per_new),
        global_batch=B,
        h2d_bytes_per_step_before=statistics.mean(per_old) * B,
        h2d_bytes_per_step_after=statistics.mean(per_new) * B,
        chunks_per_s_core_before=rows / statistics.median(t_old),
        chunks_per_s_core_after=rows / statistics.median(t_new),
    )
    res["host_cores_per_gpu_for_lsun_rate_after"] = LSUN_CHUNKS_PER_GPU / res["chunks_per_s_core_after"]
    return res


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1024
    return ""


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", nargs="+", default=[*PAPER, "tiny", "small"])
    ap.add_argument("--rows", type=int, default=16, help="rows per timed batch")
    ap.add_argument("--reps", type=int, default=5, help="timed batches per config (median)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "model_input.json"))
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "python"))
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    results = []
    print(
        "| preset | tokens/image | bytes/example before | after | H2D per step before | after "
        "| chunks/s/core before | after |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.configs:
        r = bench(name, args.rows, args.reps)
        results.append(r)
        print(
            f"| {name} | {r['tokens_per_image']:.0f} | {_fmt_bytes(r['bytes_per_example_before'])} "
            f"| {_fmt_bytes(r['bytes_per_example_after'])} | {_fmt_bytes(r['h2d_bytes_per_step_before'])} "
            f"| {_fmt_bytes(r['h2d_bytes_per_step_after'])} | {r['chunks_per_s_core_before']:.0f} "
            f"| {r['chunks_per_s_core_after']:.0f} |",
            flush=True,
        )
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"machine": platform.processor() or platform.machine(), "results": results}, f, indent=1)
    print(f"lsun needs ~{LSUN_CHUNKS_PER_GPU} chunks/s per GPU (module docstring); wrote {args.out}")


if __name__ == "__main__":
    main()
