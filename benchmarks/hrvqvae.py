"""HR-VQVAE beside the flat VQ-VAE, VQ-VAE-2 and the sparse DCT: search cost, rate-distortion, codebook collapse.

    python -m benchmarks.hrvqvae              # models trained to a plateau, FID of reconstructions: ~35 CPU min
    python -m benchmarks.hrvqvae --quick      # about 4 min, no FID; its VQ points are training-limited

Every VQ model has the same encoder and decoder (16x16 scenes, two stride-2
convs: latent 4x4, D=16, 32 channels), the same 2048 training scenes, batch 32,
learning rate 2e-3, and is trained until it reaches the plateau criterion
(:class:`Plateau`): the held-out MSE, measured every ``every`` steps on 256
validation scenes that are neither training nor test scenes, has not improved
by more than ``tol`` (relative) over the last ``patience`` evaluations; or the
step cap ``max_steps``, whichever comes first.  Each row says which one
stopped it.  Test figures are on 256 other scenes.

1. Search cost (the paper's Table 2 analogue): time to quantise N latent
   vectors with the tree search (n*m words visited) and a flat codebook of
   m**n words, searched by one matmul (``flat_quantize``) and by the same
   gather code as the tree with one layer.  Median of repeats after compile.
2. Rate-distortion on the test scenes: PSNR against bits per image for
   HR-VQVAE, the flat VQ-VAE and VQ-VAE-2 (fixed-length codes, n*log2(m) bits
   per latent position; and the empirical entropy of the test codes,
   log2 of the leaf perplexity per position, summed over positions), and
   dctsparse over qualities (bits as the ``.dcts`` file size, as that file's
   payload, i.e. less the bits of a file with no triples (at 16 px the empty
   file, 53 bytes, outweighs every VQ code here), and as fixed-length
   triples, ``s.bits_per_subpixel() * H*W*3``).  Equal-bits
   table: each VQ point against the DCT's PSNR at the same bits, interpolated
   linearly in log(bits) between the two nearest qualities (never
   extrapolated: outside the DCT's range the cell is empty).  Beside PSNR,
   the FID of reconstructions: Inception-v3 features (``dctmodel.inception``,
   the network ``dctmodel.evaluate`` uses) of the first ``--fid-images`` test
   scenes (128, the same set for every point; 16 px images, resized to 299 px
   by the network's input step) against those of their reconstructions by
   each VQ model and at each DCT quality, interpolated in log(bits) as PSNR
   is.  With 128 images a side FID is biased upward (its estimate of each
   covariance of 2048 features has rank < 128), so only differences between
   points of this benchmark mean anything.
3. Codebook collapse (the paper's figure 6 analogue): words used, perplexity
   and MSE as m grows, HR-VQVAE (n=2, branching m) against a flat VQ-VAE with
   the same m**2 words, with this project's dead-word restarts and without
   them (words are data-initialised at the first step and never restarted
   afterwards, as in the paper's baselines).

Writes ``benchmarks/results/hrvqvae.json`` and ``hrvqvae.png`` (``hrvqvae_quick.*`` with --quick).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from dctmodel import hrvqvae as H
from dctmodel.hrvqvae import train as T

OUT = os.path.join(os.path.dirname(__file__), "results")
VALIDATION_SEED = 7777  # scene seed of the validation images: load_images uses 1000 + 2*seed (+1)


@dataclasses.dataclass(frozen=True)
class Plateau:
    """Reduce-on-plateau training with a step cap.

    The held-out MSE is measured every ``every`` steps.  A plateau: the best of
    the last ``patience`` evaluations is not below (1 - tol) x the best before
    them (in the current phase).  Phase 1 runs at the configured learning rate
    until a plateau or ``phase1_cap`` steps; phase 2 at ``drop`` x that rate
    until a plateau or ``max_steps`` in all."""

    every: int = 150
    patience: int = 3
    tol: float = 0.01
    phase1_cap: int = 1500
    # 2400 left 6 of 16 models at the cap with the validation MSE still falling by 1-2%
    # per 450 steps; with 3600 phase 2 has 14 evaluations to level off.
    max_steps: int = 3600
    drop: float = 0.1

    def reached(self, curve: list[float]) -> bool:
        """curve: the held-out MSE at each evaluation of the phase so far, in order."""
        if len(curve) <= self.patience:
            return False
        before, last = min(curve[: -self.patience]), min(curve[-self.patience :])
        return last > (1.0 - self.tol) * before


def _time(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # compile
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def to_uint8(images) -> np.ndarray:
    """float (N, S, S, 3) in [0, 1] (clipped) -> uint8, as the images were before /255."""
    return (np.clip(np.asarray(images), 0.0, 1.0) * 255).round().astype(np.uint8)


def recon_fid(real: dict | None, recon_u8: np.ndarray) -> float | None:
    """FID between ``real`` (Inception features of the reference images, or None: no FID)
    and uint8 (N, S, S, 3) reconstructions of the same images."""
    if real is None:
        return None
    from dctmodel import metrics
    from dctmodel.inception import features

    return metrics.fid(real["pool"], features(recon_u8)["pool"])


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


def dct_points(images: np.ndarray, qualities, real: dict | None = None) -> list[dict]:
    """dctsparse at each quality on float32 (N, S, S, 3) images: mean bits per image
    (``.dcts`` bytes x 8; its payload, that minus the bits of a file with no
    triples, i.e. magic, header and checksum; and fixed-length triples), the
    MSE / PSNR on [0, 1] and, given ``real`` (features of the first K images),
    the FID of the first K reconstructions."""
    import dctsparse

    rows = []
    u8 = (images * 255).round().astype(np.uint8)
    for q in qualities:
        grey = dctsparse.encode(np.full(u8.shape[1:], 128, np.uint8), block_size=8, quality=q)
        if len(grey.value):
            raise AssertionError("a mid-grey image should have no triples")
        empty = 8 * len(grey.to_bytes())
        file_bits, triple_bits, errs, recs = [], [], [], []
        for img in u8:
            s = dctsparse.encode(img, block_size=8, quality=q)
            recs.append(np.asarray(dctsparse.decode(s)))
            rec = recs[-1].astype(np.float32) / 255.0
            file_bits.append(8 * len(s.to_bytes()))
            triple_bits.append(s.bits_per_subpixel() * img.shape[0] * img.shape[1] * 3)
            errs.append(float(np.mean((rec - img / 255.0) ** 2)))
        mse = float(np.mean(errs))
        rows.append(
            dict(
                method="dctsparse",
                quality=q,
                file_bits=float(np.mean(file_bits)),
                empty_file_bits=empty,
                payload_bits=float(np.mean(file_bits)) - empty,
                triple_bits=float(np.mean(triple_bits)),
                mse=mse,
                psnr=H.psnr(mse),
                fid=recon_fid(real, np.stack(recs[: 0 if real is None else len(real["pool"])])),
            )
        )
    return rows


def interpolate(points: list[tuple[float, float | None]], bits: float) -> float | None:
    """PSNR (or FID) at ``bits`` on a curve of (bits, value) points, linear in log(bits)
    between the nearest two; None outside the points' range (no extrapolation) or where
    the curve has no values (FID not computed)."""
    if any(v is None for _, v in points):
        return None
    pts = sorted(points)
    xs = [math.log(b) for b, _ in pts]
    if not pts or not xs[0] <= math.log(bits) <= xs[-1]:
        return None
    return float(np.interp(math.log(bits), xs, [p for _, p in pts if p is not None]))


def entropy_bits(vq: H.VQConfig, usage: list[dict], size: int) -> float:
    """Bits per image if each quantiser's codes were entropy-coded at their empirical
    (zeroth-order) entropy: log2 of the last layer's perplexity times the positions."""
    side = size // 2**vq.downsample
    positions = [(side // 2) ** 2, side**2] if vq.model == "vqvae2" else [side**2]  # vqvae2: (top, bottom)
    total = 0.0
    for qi, pos in enumerate(positions):
        last = max((u for u in usage if u["quantizer"] == qi), key=lambda u: u["layer"])
        total += pos * math.log2(last["perplexity"])
    return total


def train_to_plateau(
    name: str, vq: H.VQConfig, base: H.Config, crit: Plateau, train_x, val_x, test_x, real=None, **extra
) -> dict:
    """Trains one model until ``crit`` stops it; the test figures of its final state (with
    ``real``, the features of the first K test images: the FID of their reconstructions)."""
    cfg = dataclasses.replace(base, model=vq)
    H.check_config(cfg)
    model, _ = T.make_model(cfg)
    # The library's optimiser is plain Adam; the same, with the rate as state so that phase 2 can lower it.
    opt = nnx.Optimizer(
        model, optax.inject_hyperparams(optax.adam)(learning_rate=cfg.train.learning_rate), wrt=nnx.Param
    )
    key = jax.random.key(cfg.train.seed)
    curve: list[float] = []  # validation MSE, all phases
    stopped: list[str] = []
    phase_start, step = 0, 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for step in range(1, crit.max_steps + 1):
        idx = np.random.default_rng([cfg.train.seed, step]).integers(0, len(train_x), cfg.train.batch_size)
        T.train_step(model, opt, jnp.asarray(train_x[idx]), jax.random.fold_in(key, step))
        if step % crit.every:
            continue
        curve.append(T.evaluate(model, val_x)["mse"])
        plateau = crit.reached(curve[phase_start:])
        if not stopped and (plateau or step >= crit.phase1_cap):
            stopped.append(f"{'plateau' if plateau else 'cap'}@{step}")
            opt.opt_state.hyperparams["learning_rate"][...] = cfg.train.learning_rate * crit.drop
            phase_start = len(curve)
        elif stopped and plateau:
            stopped.append(f"plateau@{step}")
            break
    if len(stopped) < 2:
        stopped.append(f"cap@{step}")
    cpu_train, wall_train = time.process_time() - cpu0, time.perf_counter() - wall0
    res = T.evaluate(model, test_x)
    fid = None
    if real is not None:
        k = len(real["pool"])
        recon = [to_uint8(T._reconstruct(model, test_x[i : min(i + 64, k)])) for i in range(0, k, 64)]
        fid = recon_fid(real, np.concatenate(recon))
    size = base.data.image_size
    top = {u["quantizer"]: u["layer"] for u in res["usage"]}  # usage lists layers in order
    last = [u for u in res["usage"] if u["layer"] == top[u["quantizer"]]]
    row = dict(
        method=name,
        layers=vq.layers,
        m=vq.m,
        leaves=vq.flat_size,
        restart_after=vq.restart_after,
        bits_per_image=vq.bits_per_image(size, size),
        entropy_bits=entropy_bits(vq, res["usage"], size),
        mse=res["mse"],
        psnr=res["psnr"],
        fid=fid,
        used=[u["used"] for u in last],
        words=[u["words"] for u in last],
        perplexity=[u["perplexity"] for u in last],
        usage=res["usage"],
        steps=step,
        stopped="/".join(stopped),
        capped=stopped[-1].startswith("cap"),
        val_curve=curve,
        cpu_s=cpu_train,  # training only; the FID's Inception pass is in the run's total
        wall_s=wall_train,
        **extra,
    )
    restarts = "restarts" if extra.get("restarts", True) else "no-restart"
    print(
        f"  {name:8s} n={vq.layers} m={vq.m:3d} words={vq.flat_size:5d} {restarts}"
        f"  bits/img={row['bits_per_image']:4.0f} (entropy {row['entropy_bits']:5.1f})"
        f"  mse={row['mse']:.5f} psnr={row['psnr']:6.2f} dB{'' if fid is None else f' FID {fid:5.1f}'}"
        f"  leaves used={'/'.join(map(str, row['used']))}"
        f" of {'/'.join(map(str, row['words']))} perplexity={'/'.join(f'{p:.1f}' for p in row['perplexity'])}"
        f"  {row['steps']} steps ({row['stopped']}), {row['cpu_s']:.0f} s CPU / {row['wall_s']:.0f} s wall",
        flush=True,
    )
    return row


def equal_bits(rd: list[dict], dct: list[dict]) -> list[dict]:
    """Each VQ point beside the DCT's PSNR and FID at the same bits (file, payload and triple
    counts), and at its entropy bits."""
    rows = []
    for r in rd:
        row = dict(
            method=r["method"],
            layers=r["layers"],
            m=r["m"],
            bits=r["bits_per_image"],
            entropy_bits=r["entropy_bits"],
            psnr=r["psnr"],
            fid=r["fid"],
            stopped=r["stopped"],
        )
        for metric in ("psnr", "fid"):
            for count in ("file", "payload", "triples"):
                curve = [(d["triple_bits" if count == "triples" else f"{count}_bits"], d[metric]) for d in dct]
                row[f"dct_{count}_{metric}"] = interpolate(curve, r["bits_per_image"])
                row[f"dct_{count}_{metric}_at_entropy"] = interpolate(curve, r["entropy_bits"])
        rows.append(row)
    return rows


def _fmt(x: float | None, spec: str = "5.2f") -> str:
    return " " * (int(spec.split(".")[0]) - 1) + "-" if x is None else format(x, spec)


def print_equal_bits(rows: list[dict], metric: str = "psnr") -> None:
    cols = ("file", "payload", "triples")
    spec, name = ("5.2f", " PSNR") if metric == "psnr" else ("5.1f", "  FID")
    print(
        f"  model           bits {name} | DCT: .dcts payload triples | entropy bits | DCT: .dcts payload triples"
        " | stopped by"
    )
    for r in rows:
        label = f"{r['method']} n={r['layers']} m={r['m']}"
        fixed = "  ".join(_fmt(r[f"dct_{c}_{metric}"], spec) for c in cols)
        ent = "  ".join(_fmt(r[f"dct_{c}_{metric}_at_entropy"], spec) for c in cols)
        print(
            f"  {label:15s} {r['bits']:4.0f} {_fmt(r[metric], spec)} |   {fixed}   |    {r['entropy_bits']:5.1f}     |"
            f"   {ent}   | {r['stopped']}"
        )


def fid_panel(res: dict, ax) -> None:
    """FID of reconstructions against bits: the DCT's three bit counts, the VQ models' fixed bits."""
    dct = sorted(res["dct"], key=lambda r: r["file_bits"])
    for key, style, color, label in (
        ("file_bits", "o-", "k", ".dcts bits"),
        ("payload_bits", "o:", "k", ".dcts payload"),
        ("triple_bits", "o--", "gray", "triple bits"),
    ):
        ax.plot([d[key] for d in dct], [d["fid"] for d in dct], style, color=color, label=f"dctsparse, {label}")
    for method, marker, color in (("hrvqvae", "s", "C0"), ("vqvae", "^", "C1"), ("vqvae2", "D", "C2")):
        pts = sorted((r for r in res["rate_distortion"] if r["method"] == method), key=lambda r: r["bits_per_image"])
        ax.plot([p["bits_per_image"] for p in pts], [p["fid"] for p in pts], marker + "-", color=color, label=method)
    s = res["settings"]
    ax.set(
        xlabel="bits per image",
        ylabel=f"FID of reconstructions ({s['fid_images']} test scenes)",
        xscale="log",
        title=f"FID of reconstructions, {s['image_size']}px (lower is better)",
    )
    ax.legend(fontsize=7)


def plot(res: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    has_fid = res["dct"][0].get("fid") is not None
    fig, axes = plt.subplots(2, 3 if has_fid else 2, figsize=(19 if has_fid else 13, 9.5))
    if has_fid:
        fid_panel(res, axes[0, 2])
        axes[1, 2].axis("off")
    ax = axes[0, 0]
    dct = sorted(res["dct"], key=lambda r: r["file_bits"])
    ax.plot([d["file_bits"] for d in dct], [d["psnr"] for d in dct], "o-", color="k", label="dctsparse, .dcts bits")
    ax.plot(
        [d["payload_bits"] for d in dct], [d["psnr"] for d in dct], "o:", color="k", label="dctsparse, .dcts payload"
    )
    ax.plot(
        [d["triple_bits"] for d in dct], [d["psnr"] for d in dct], "o--", color="gray", label="dctsparse, triple bits"
    )
    for method, marker, color in (("hrvqvae", "s", "C0"), ("vqvae", "^", "C1"), ("vqvae2", "D", "C2")):
        pts = sorted((r for r in res["rate_distortion"] if r["method"] == method), key=lambda r: r["bits_per_image"])
        if pts:
            ax.plot(
                [p["bits_per_image"] for p in pts], [p["psnr"] for p in pts], marker + "-", color=color, label=method
            )
            ax.plot(
                [p["entropy_bits"] for p in pts],
                [p["psnr"] for p in pts],
                marker,
                color=color,
                mfc="none",
                label=f"{method}, entropy bits",
            )
    s = res["settings"]
    ax.set(
        xlabel="bits per image",
        ylabel="test PSNR (dB)",
        xscale="log",
        title=f"rate-distortion, {s['image_size']}px scenes",
    )
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    sc = res["search"]
    xs = np.arange(len(sc))
    ax.bar(xs - 0.27, [r["tree_ms"] for r in sc], 0.27, label="tree (n*m visited)")
    ax.bar(xs, [r["flat_matmul_ms"] for r in sc], 0.27, label="flat m^n, matmul")
    ax.bar(xs + 0.27, [r["flat_gather_ms"] for r in sc], 0.27, label="flat m^n, same code")
    ax.set_xticks(xs, [f"n={r['n']} m={r['m']}" for r in sc], rotation=30)
    ax.set(ylabel="ms per quantisation", yscale="log", title=f"search, {s['search_vectors']} vectors")
    ax.legend(fontsize=8)
    styles = {
        ("hrvqvae", True): ("s-", "C0"),
        ("vqvae", True): ("^-", "C1"),
        ("hrvqvae", False): ("s--", "C0"),
        ("vqvae", False): ("^--", "C1"),
    }
    for (method, restarts), (marker, color) in styles.items():
        pts = sorted(
            (r for r in res["collapse"] if r["method"] == method and r["restarts"] == restarts),
            key=lambda r: r["leaves"],
        )
        label = f"{method}, {'restarts' if restarts else 'no restarts'}"
        leaves = [p["leaves"] for p in pts]
        axes[1, 0].plot(leaves, [p["mse"] for p in pts], marker, color=color, label=label)
        axes[1, 1].plot(leaves, [p["perplexity"][-1] for p in pts], marker, color=color, label=f"{label}: perplexity")
    axes[1, 0].set(xlabel="words / leaves (m^2)", ylabel="test MSE", xscale="log", title="codebook size: MSE (fig. 6)")
    axes[1, 0].legend(fontsize=8)
    ms = sorted({r["leaves"] for r in res["collapse"]})
    axes[1, 1].plot(ms, ms, ":", color="gray", label="all words equally used")
    axes[1, 1].set(
        xlabel="words / leaves (m^2)",
        ylabel="leaf perplexity on test codes",
        xscale="log",
        yscale="log",
        title="codebook size: usage (fig. 6)",
    )
    axes[1, 1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer models and steps, about 4 minutes; training-limited")
    p.add_argument("--out", default=OUT)
    p.add_argument(
        "--fid-images",
        type=int,
        default=None,
        help="test scenes the FID of reconstructions uses (default 128; 0 with --quick: no FID)",
    )
    a = p.parse_args(argv)
    quick = a.quick
    fid_images = (0 if quick else 128) if a.fid_images is None else a.fid_images
    if fid_images == 1 or fid_images < 0:
        p.error("--fid-images must be 0 (no FID) or >= 2")
    size = 16
    crit = Plateau(phase1_cap=300, max_steps=450) if quick else Plateau()
    base = H.Config(
        data=H.DataConfig(image_size=size, num_train=2048, num_eval=256),
        train=H.TrainConfig(batch_size=32, learning_rate=2e-3),
    )
    shapes = [(2, 8), (3, 8), (4, 8), (2, 16), (3, 16)] + ([] if quick else [(2, 64), (3, 32)])
    settings = dict(
        quick=quick,
        image_size=size,
        latent=size // 2**base.model.downsample,
        plateau=dataclasses.asdict(crit),
        train_images=base.data.num_train,
        validation_images=256,
        test_images=base.data.num_eval,
        batch_size=base.train.batch_size,
        learning_rate=base.train.learning_rate,
        search_vectors=4096,
        fid_images=fid_images,
        dim=base.model.dim,
        channels=base.model.channels,
        device=str(jax.devices()[0]),
        machine=platform.machine(),
        cpus=os.cpu_count(),
        date=datetime.date.today().isoformat(),
    )
    print(f"settings: {settings}")
    if quick:
        print(
            f"NOTE --quick: every VQ model stops at {crit.max_steps} steps or earlier, far short of its plateau;"
            " its points are training-limited and say nothing about the models' rate-distortion."
        )
    res: dict = dict(settings=settings)
    cpu0, wall0 = time.process_time(), time.perf_counter()

    print("1. search cost: quantise 4096 vectors of D=16 (median ms)")
    res["search"] = search_cost(shapes, 4096, 16, repeats=10 if quick else 30)

    train_x, test_x = H.load_images(base.data, "train"), H.load_images(base.data, "eval")
    val_x = H.scene_images(256, size, VALIDATION_SEED)
    real = None
    if fid_images:
        from dctmodel.inception import features

        if fid_images > len(test_x):
            p.error(f"--fid-images {fid_images} is more than the {len(test_x)} test scenes")
        real = features(to_uint8(test_x[:fid_images]))
        print(
            f"   FID of reconstructions: the first {fid_images} test scenes ({size} px) against their reconstructions"
            " (biased upward by the small set: compare points of this run only)"
        )
    else:
        print("   no FID of reconstructions (--fid-images 0)")

    def point(name: str, restarts: bool = True, fid: bool = False, **kw) -> dict:
        late: dict = {} if restarts else {"restart_after": crit.max_steps + 1}  # data init only, never restarted
        vq = H.VQConfig(model=name, **kw, **late)
        return train_to_plateau(name, vq, base, crit, train_x, val_x, test_x, real if fid else None, restarts=restarts)

    print(
        f"2. rate-distortion on {len(test_x)} test scenes at {size}px"
        f" (latent {settings['latent']}x{settings['latent']})"
    )
    print(f"   plateau criterion: {crit}")
    rd_shapes = [("hrvqvae", 1, 8), ("hrvqvae", 2, 8), ("vqvae", 2, 8), ("vqvae2", 2, 8)]  # vqvae2: 64 words a level
    if not quick:
        rd_shapes += [("hrvqvae", 3, 8), ("vqvae", 3, 8), ("hrvqvae", 2, 16), ("vqvae", 2, 16)]
    rd = [point(name, layers=n, m=m, fid=True) for name, n, m in rd_shapes]
    res["rate_distortion"] = rd
    res["dct"] = dct_points(test_x, [1, 2, 3, 5, 8, 12, 20, 35, 50, 75, 90], real)
    for d in res["dct"]:
        print(
            f"  dctsparse q={d['quality']:3d} bits/img: .dcts {d['file_bits']:6.0f} (payload {d['payload_bits']:6.0f}),"
            f" triples {d['triple_bits']:6.0f}"
            f"  mse={d['mse']:.5f} psnr={d['psnr']:6.2f} dB" + ("" if d["fid"] is None else f" FID {d['fid']:6.1f}"),
            flush=True,
        )
    res["equal_bits"] = equal_bits(rd, res["dct"])
    print("   equal bits: each VQ point's test PSNR beside the DCT's, interpolated in log(bits) (dB)")
    print_equal_bits(res["equal_bits"])
    if real is not None:
        print(f"   equal bits: FID of reconstructions ({fid_images} test scenes), the same way")
        print_equal_bits(res["equal_bits"], "fid")

    ms = [4, 8] if quick else [4, 8, 16]
    print(f"3. codebook collapse: n=2, m in {ms}, with restarts and without (data init only)")
    res["collapse"] = []
    for m in ms:
        for name in ("hrvqvae", "vqvae"):
            for restarts in (True, False):
                done = [
                    r for r in rd if restarts and r["method"] == name and r["layers"] == 2 and r["m"] == m
                ]  # the rate-distortion sweep trained it already
                res["collapse"].append(done[0] if done else point(name, restarts=restarts, layers=2, m=m))

    res["cpu_s"], res["wall_s"] = time.process_time() - cpu0, time.perf_counter() - wall0
    models = list({id(r): r for r in rd + res["collapse"]}.values())  # the collapse sweep reuses some
    print(
        f"total: {res['cpu_s']:.0f} s CPU, {res['wall_s']:.0f} s wall; {sum(r['capped'] for r in models)} of"
        f" {len(models)} VQ models stopped by the step cap, not the plateau"
        + (" (--quick: training-limited)" if quick else "")
    )
    os.makedirs(a.out, exist_ok=True)
    tag = "hrvqvae_quick" if quick else "hrvqvae"
    with open(os.path.join(a.out, f"{tag}.json"), "w") as f:
        json.dump(res, f, indent=1)
    plot(res, os.path.join(a.out, f"{tag}.png"))
    print(f"wrote {os.path.join(a.out, tag)}.json and .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
