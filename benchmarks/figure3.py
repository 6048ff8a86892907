"""The paper's figure 3: bits per image subpixel of the dense and the sparse
DCT representation as a function of quality.

    python -m benchmarks.figure3 [--out benchmarks/results/figure3.png] [--quick]

(a) the natural images that ship with scikit-image; (b) a generated sparse
scene set (CLEVR-like shaded shapes on a flat background, from
``dctmodel.scenes``, numpy only). B=8, 4:2:0, frequency order.

Bit-counting rule (``SparseDCT.bits_per_subpixel``): fixed-length codes, no
entropy coding, as in the paper's comparison. A sparse triple costs
ceil(log2 P*B*B) + ceil(log2 Hb*Wb) + ceil(log2 2*vmax) bits; the dense form
stores every coefficient of every block (chroma blocks once under 4:2:0) at
ceil(log2 2*vmax+1) bits, with vmax the largest |value| of the image.
Subpixels are H*W*3.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import dctsparse

from .images import NATURAL, natural


def scenes(n: int, size: int = 256) -> list[np.ndarray]:
    from dctmodel.scenes import render_scene

    return [render_scene(0, i, size) for i in range(n)]


def curve(images, qualities) -> dict:
    dense, sparse = [], []
    for q in qualities:
        ss = [dctsparse.encode(im, block_size=8, quality=q) for im in images]
        dense.append(float(np.mean([s.bits_per_subpixel(dense=True) for s in ss])))
        sparse.append(float(np.mean([s.bits_per_subpixel() for s in ss])))
    return {"quality": list(qualities), "dense": dense, "sparse": sparse}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="benchmarks/results/figure3.png")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    qualities = list(range(5, 101, 5))
    sets = {
        "natural (skimage.data)": [natural(n) for n in NATURAL],
        "generated scenes (CLEVR-like)": scenes(8 if args.quick else 32),
    }
    result = {name: curve(ims, qualities) for name, ims in sets.items()}
    for name, c in result.items():
        print(f"{name}: q, dense bps, sparse bps")
        for q, d, s in zip(c["quality"], c["dense"], c["sparse"], strict=True):
            print(f"  {q:3d} {d:6.3f} {s:6.3f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: wrote the JSON only")
        return result
    fig, axes = plt.subplots(1, len(result), figsize=(5 * len(result), 3.6), sharey=True)
    for ax, (name, c) in zip(np.atleast_1d(axes), result.items(), strict=True):
        ax.plot(c["quality"], c["dense"], "o-", ms=3, label="dense")
        ax.plot(c["quality"], c["sparse"], "o-", ms=3, label="sparse")
        ax.set_title(name)
        ax.set_xlabel("DCT quality")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("bits per image subpixel")
    np.atleast_1d(axes)[0].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"written {out} and {out.with_suffix('.json')}")
    return result


if __name__ == "__main__":
    main()
