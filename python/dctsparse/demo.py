"""``python -m dctsparse demo``: the codec on a bundled natural image.

Prints, for several block sizes and qualities, the number of triples, the
bits per image subpixel of the dense and the sparse form, and the PSNR; then
writes a strip of progressive prefix decodes like the paper's figure 2g.
"""

from __future__ import annotations

import time

import numpy as np

from . import viz
from .codec import decode, encode


def load_image(name: str = "astronaut") -> tuple[np.ndarray, str]:
    """A natural RGB image from scikit-image (ships with the package, no download),
    or a generated test card when scikit-image is not installed."""
    try:
        import skimage.data

        return np.ascontiguousarray(getattr(skimage.data, name)()), f"skimage.data.{name}"
    except ImportError:
        y, x = np.mgrid[0:256, 0:256]
        img = np.stack([x, y, 255 - (x + y) // 2], -1).astype(np.uint8)
        img[96:160, 96:160] = (230, 40, 40)
        return img, "generated test card (pip install scikit-image for a natural image)"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def table(img: np.ndarray, block_sizes=(8, 16, 32), qualities=(25, 50, 75, 90)) -> list[dict]:
    rows = []
    for b in block_sizes:
        for q in qualities:
            t0 = time.perf_counter()
            s = encode(img, block_size=b, quality=q)
            t1 = time.perf_counter()
            out = decode(s)
            t2 = time.perf_counter()
            rows.append(
                dict(
                    block_size=b,
                    quality=q,
                    triples=len(s),
                    dense_bps=s.bits_per_subpixel(dense=True),
                    sparse_bps=s.bits_per_subpixel(),
                    psnr=psnr(out, img),
                    encode_ms=1e3 * (t1 - t0),
                    decode_ms=1e3 * (t2 - t1),
                )
            )
    return rows


def format_table(rows: list[dict]) -> str:
    head = (
        f"{'B':>3} {'q':>4} {'triples':>9} {'dense bps':>10} {'sparse bps':>11} {'PSNR dB':>8} "
        f"{'enc ms':>7} {'dec ms':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['block_size']:>3} {r['quality']:>4} {r['triples']:>9} {r['dense_bps']:>10.3f} "
            f"{r['sparse_bps']:>11.3f} {r['psnr']:>8.2f} {r['encode_ms']:>7.1f} {r['decode_ms']:>7.1f}"
        )
    return "\n".join(lines)


def progressive_strip(
    img: np.ndarray,
    fractions=(1 / 64, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0),
    block_size: int = 8,
    quality: int = 75,
    order: str = "frequency",
) -> np.ndarray:
    """uint8 (H, len(fractions) * (W + gap) - gap, 3): ``img`` encoded with these
    settings, then decodes of growing prefixes of its list (:func:`viz.progressive_strip`)."""
    s = encode(img, block_size=block_size, quality=quality, order=order)
    return viz.progressive_strip(s, viz.fraction_cuts(len(s), fractions))


def run(out: str = "dctsparse_demo.png", image: str = "astronaut") -> None:
    from PIL import Image

    img, source = load_image(image)
    print(f"image: {source}, {img.shape[1]}x{img.shape[0]}, 4:2:0, frequency order")
    print(format_table(table(img)))
    strip = progressive_strip(img)
    Image.fromarray(strip).save(out)
    print(f"progressive prefix decodes (1/64, 1/16, 1/8, 1/4, 1/2, all of the list) -> {out}")
