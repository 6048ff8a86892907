"""Size of .dcts files vs the JPEG Pillow writes with optimised Huffman tables.

    python benchmarks/container_size.py [--repeat 5] [--json out.json]

Same image, same quality, B=8, 4:2:0 (greyscale images have no chroma):
the .dcts file of the quantised coefficients against
``Image.save(..., "JPEG", quality=q, optimize=True, subsampling=2)``, which
quantises with the same IJG tables (SPEC section 4). Target ratio <= 1.0,
stretch 0.85 (where Lepton and JPEG XL's lossless JPEG transcoding sit).
Coder speed: raw image bytes (H*W*P) per second through the container coder
alone (SparseDCT -> bytes, bytes -> SparseDCT), best of --repeat, one thread.
"""

from __future__ import annotations

import argparse
import json
import platform

import numpy as np

import dctsparse
from dctsparse.bench import bench_rows, format_bench

IMAGES = ["astronaut", "chelsea", "coffee", "rocket", "camera", "immunohistochemistry", "hubble_deep_field"]


def natural_images(names):
    import skimage.data

    out = []
    for n in names:
        try:
            out.append((n, np.ascontiguousarray(getattr(skimage.data, n)())))
        except Exception as exc:  # some samples need a download (pooch); skip them offline
            print(f"skipping {n}: {type(exc).__name__}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", help="also write the rows here")
    a = ap.parse_args()
    rows = bench_rows(natural_images(IMAGES), (50, 75, 90), 8, a.repeat)
    print(
        f"dctsparse {dctsparse.__version__}, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    print(format_bench(rows))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
