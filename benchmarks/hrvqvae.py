"""HR-VQVAE beside the flat VQ-VAE and the sparse DCT: search cost, rate-distortion, codebook collapse.

    python -m benchmarks.hrvqvae --quick      # ~3 min on 2 CPU cores
    python -m benchmarks.hrvqvae              # longer training, larger m sweep

1. Search cost (the paper's Table 2 analogue): time to quantise N latent
   vectors with the tree search (n*m words visited) and a flat codebook of
   m**n words, searched by one matmul (``flat_quantize``) and by the same
   gather code as the tree with one layer.  Median of repeats after compile.
2. Rate-distortion on the same test scenes: MSE / PSNR vs bits per image for
   HR-VQVAE (n*log2(m) bits per latent position), the flat VQ-VAE (log2 K)
   and dctsparse at several qualities (fixed-length triples,
   ``s.bits_per_subpixel() * H*W*3``).
3. Codebook collapse (the paper's figure 6 analogue): words used, perplexity
   and MSE as m grows, HR-VQVAE (n=2, branching m) vs a flat VQ-VAE with
   the same m**2 leaves.  Words are data-initialised at the first step and
   never restarted afterwards here, as in the paper's baselines: restarts are
   a fix for collapse, and this measures the collapse itself.

Writes ``benchmarks/results/hrvqvae.json`` and ``hrvqvae.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from dctmodel import hrvqvae as H
from dctmodel.hrvqvae.train import train

OUT = os.path.join(os.path.dirname(__file__), "results")


def _time(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # compile
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def search_cost(shapes, n_vectors: int, dim: int, repeats: int) -> list[dict]:
    rng = np.random.default_rng(0)
    z = jnp.asarray(rng.normal(size=(n_vectors, dim)), jnp.float32)
    tree = jax.jit(lambda z, books: H.tree_quantize(z, books).leaf)
    flat_gather = jax.jit(lambda z, book: H.tree_quantize(z, [book]).leaf)
    flat_mm = jax.jit(H.flat_quantize)
    rows = []
    for n, m in shapes:
        books = [jnp.asarray(rng.normal(size=(m**level, m, dim)), jnp.float32) for level in range(n)]
        flat = H.combined_codebook(books)
        row = dict(
            n=n,
            m=m,
            leaves=m**n,
            visited_tree=n * m,
            visited_flat=m**n,
            tree_ms=1e3 * _time(tree, z, books, repeats=repeats),
            flat_matmul_ms=1e3 * _time(flat_mm, z, flat, repeats=repeats),
            flat_gather_ms=1e3 * _time(flat_gather, z, flat[None], repeats=repeats),
        )
        rows.append(row)
        print(
            f"  n={n} m={m:3d} leaves={m**n:6d}  visited {n * m:3d} vs {m**n:6d}"
            f"   tree {row['tree_ms']:8.2f} ms   flat matmul {row['flat_matmul_ms']:8.2f} ms"
            f"   flat (same code as tree) {row['flat_gather_ms']:8.2f} ms",
            flush=True,
        )
    return rows


def dct_points(images: np.ndarray, qualities) -> list[dict]:
    import dctsparse

    rows = []
    u8 = (images * 255).round().astype(np.uint8)
    for q in qualities:
        bits, errs = [], []
        for img in u8:
            s = dctsparse.encode(img, block_size=8, quality=q)
            rec = dctsparse.decode(s).astype(np.float32) / 255.0
            bits.append(s.bits_per_subpixel() * img.shape[0] * img.shape[1] * 3)
            errs.append(float(np.mean((rec - img / 255.0) ** 2)))
        mse = float(np.mean(errs))
        rows.append(dict(method="dctsparse", quality=q, bits_per_image=float(np.mean(bits)), mse=mse, psnr=H.psnr(mse)))
    return rows


def train_point(name: str, vq: H.VQConfig, base: H.Config, train_x, test_x) -> dict:
    cfg = dataclasses.replace(base, model=vq)
    t = time.perf_counter()
    _, res = train(cfg, None, verbose=False, train_images=train_x, test_images=test_x)
    size = base.data.image_size
    row = dict(
        method=name,
        layers=vq.layers,
        m=vq.m,
        leaves=vq.flat_size,
        update=vq.update,
        bits_per_image=vq.bits_per_image(size, size),
        mse=res["mse"],
        psnr=res["psnr"],
        used=[u["used"] for u in res["usage"]],
        words=[u["words"] for u in res["usage"]],
        dead=[u["dead"] for u in res["usage"]],
        perplexity=[u["perplexity"] for u in res["usage"]],
        train_s=time.perf_counter() - t,
        steps=cfg.train.steps,
    )
    print(
        f"  {name:8s} n={vq.layers} m={vq.m:4d} leaves={vq.flat_size:5d} bits/img={row['bits_per_image']:6.0f}"
        f"  mse={row['mse']:.5f} psnr={row['psnr']:6.2f} dB  used/words per layer="
        f"{'/'.join(f'{a}/{b}' for a, b in zip(row['used'], row['words'], strict=True))}"
        f"  perplexity={'/'.join(f'{p:.1f}' for p in row['perplexity'])}  ({row['train_s']:.0f} s)",
        flush=True,
    )
    return row


def plot(res: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    for method, marker in (("dctsparse", "o-"), ("hrvqvae", "s"), ("vqvae", "^")):
        pts = sorted((r for r in res["rate_distortion"] if r["method"] == method), key=lambda r: r["bits_per_image"])
        if pts:
            ax[0].plot([p["bits_per_image"] for p in pts], [p["psnr"] for p in pts], marker, label=method)
    ax[0].set(
        xlabel="bits per image",
        ylabel="PSNR (dB)",
        xscale="log",
        title=f"rate-distortion, {res['settings']['image_size']}px scenes",
    )
    ax[0].legend()
    s = res["search"]
    labels = [f"n={r['n']} m={r['m']}" for r in s]
    xs = np.arange(len(s))
    ax[1].bar(xs - 0.27, [r["tree_ms"] for r in s], 0.27, label="tree (n*m visited)")
    ax[1].bar(xs, [r["flat_matmul_ms"] for r in s], 0.27, label="flat m^n, matmul")
    ax[1].bar(xs + 0.27, [r["flat_gather_ms"] for r in s], 0.27, label="flat m^n, same code")
    ax[1].set_xticks(xs, labels, rotation=30)
    ax[1].set(ylabel="ms per quantisation", yscale="log", title=f"search, {res['settings']['search_vectors']} vectors")
    ax[1].legend(fontsize=8)
    for method, marker in (("hrvqvae", "s-"), ("vqvae", "^-")):
        pts = sorted((r for r in res["collapse"] if r["method"] == method), key=lambda r: r["leaves"])
        ax[2].plot([p["leaves"] for p in pts], [p["mse"] for p in pts], marker, label=f"{method} MSE")
    ax[2].set(xlabel="leaves (m^2)", ylabel="test MSE", xscale="log", title="codebook size (fig. 6 analogue)")
    ax2 = ax[2].twinx()
    for method, marker in (("hrvqvae", "s--"), ("vqvae", "^--")):
        pts = sorted((r for r in res["collapse"] if r["method"] == method), key=lambda r: r["leaves"])
        ax2.plot(
            [p["leaves"] for p in pts],
            [p["used"][-1] / p["words"][-1] for p in pts],
            marker,
            alpha=0.5,
            label=f"{method} leaves used",
        )
    ax2.set(ylabel="fraction of leaves used", ylim=(0, 1.05))
    ax[2].legend(loc="upper left", fontsize=8)
    ax2.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small settings, ~3 minutes on 2 CPU cores")
    p.add_argument("--out", default=OUT)
    a = p.parse_args(argv)
    quick = a.quick
    size = 32
    steps = 150 if quick else 600
    base = H.Config(
        data=H.DataConfig(image_size=size, num_train=512 if quick else 2048, num_eval=64 if quick else 256),
        train=H.TrainConfig(batch_size=32, steps=steps, log_every=10**9, eval_every=0, checkpoint_every=0),
    )
    shapes = [(2, 8), (3, 8), (4, 8), (2, 16), (3, 16)] + ([] if quick else [(2, 64), (3, 32)])
    settings = dict(
        quick=quick,
        image_size=size,
        steps=steps,
        train_images=base.data.num_train,
        test_images=base.data.num_eval,
        batch_size=base.train.batch_size,
        search_vectors=4096,
        dim=base.model.dim,
        channels=base.model.channels,
        device=str(jax.devices()[0]),
        machine=platform.machine(),
        cpus=os.cpu_count(),
    )
    print(f"settings: {settings}")
    res = dict(settings=settings)

    print("1. search cost: quantise 4096 vectors of D=16 (median ms)")
    res["search"] = search_cost(shapes, 4096, 16, repeats=10 if quick else 30)

    train_x, test_x = H.load_images(base.data, "train"), H.load_images(base.data, "eval")
    print(f"2. rate-distortion on {len(test_x)} test scenes at {size}px ({steps} training steps, latent 8x8)")
    rd = []
    rd_models = [
        ("hrvqvae", H.VQConfig(model="hrvqvae", layers=2, m=8)),
        ("vqvae", H.VQConfig(model="vqvae", layers=2, m=8)),
        ("hrvqvae", H.VQConfig(model="hrvqvae", layers=3, m=8)),
    ]
    if not quick:
        rd_models += [
            ("vqvae", H.VQConfig(model="vqvae", layers=3, m=8)),
            ("hrvqvae", H.VQConfig(model="hrvqvae", layers=4, m=8)),
        ]
    for name, vq in rd_models:
        rd.append(train_point(name, vq, base, train_x, test_x))
    for row in dct_points(test_x, [5, 10, 25, 50, 75, 90]):
        rd.append(row)
        print(
            f"  dctsparse q={row['quality']:3d} bits/img={row['bits_per_image']:8.0f}  mse={row['mse']:.5f}"
            f" psnr={row['psnr']:6.2f} dB"
        )
    res["rate_distortion"] = rd

    ms = [4, 8, 16] if quick else [4, 8, 16, 32, 64]
    csteps = 100 if quick else 600
    print(f"3. codebook collapse: n=2, m in {ms}, {csteps} steps, no restarts after the data init")
    cbase = H.override(base, **{"train.steps": csteps})
    res["collapse"] = []
    for m in ms:
        for name in ("hrvqvae", "vqvae"):
            vq = H.VQConfig(model=name, layers=2, m=m, restart_after=csteps + 1)
            res["collapse"].append(train_point(name, vq, cbase, train_x, test_x))

    os.makedirs(a.out, exist_ok=True)
    tag = "hrvqvae_quick" if quick else "hrvqvae"
    with open(os.path.join(a.out, f"{tag}.json"), "w") as f:
        json.dump(res, f, indent=1)
    plot(res, os.path.join(a.out, f"{tag}.png"))
    print(f"wrote {os.path.join(a.out, tag)}.json and .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
