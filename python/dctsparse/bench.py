"""Sizes of ``.dcts`` files against optimised JPEG, and the container coder's speed.

The measurement behind ``dctsparse bench`` and ``python -m benchmarks.container_size``.
It lives in the package, not in ``benchmarks/``, because the installed command
line runs it and ``benchmarks/`` is not installed.
"""

from __future__ import annotations

import io
import time

from . import codec, container


def bench_rows(images, qualities=(50, 75, 90), block_size: int = 8, repeat: int = 5) -> list[dict]:
    """Sizes of .dcts vs Pillow's optimised JPEG at the same quality, and coder speed.

    images: [(name, uint8 array)]. MB/s counts the image's raw bytes (H*W*P)
    per second of the container coder alone (list -> bytes, bytes -> list),
    best of ``repeat``.
    """
    from PIL import Image

    rows = []
    for name, img in images:
        for q in qualities:
            s = codec.encode(img, block_size=block_size, quality=q, subsampling="4:2:0")
            t_enc, t_dec = [], []
            for _ in range(repeat):
                t0 = time.perf_counter()
                data = container.to_bytes(s)
                t1 = time.perf_counter()
                back = container.from_bytes(data)
                t2 = time.perf_counter()
                t_enc.append(t1 - t0)
                t_dec.append(t2 - t1)
            assert back == s
            buf = io.BytesIO()
            pil = Image.fromarray(img)
            extra = {"subsampling": 2} if pil.mode == "RGB" else {}
            pil.save(buf, "JPEG", quality=q, optimize=True, **extra)
            raw = img.size
            rows.append(
                dict(
                    image=name,
                    quality=q,
                    coefficients=len(s),
                    dcts_bytes=len(data),
                    jpeg_bytes=buf.tell(),
                    ratio=len(data) / buf.tell(),
                    encode_mb_s=raw / min(t_enc) / 1e6,
                    decode_mb_s=raw / min(t_dec) / 1e6,
                    raw_bytes=raw,
                    encode_s=min(t_enc),
                    decode_s=min(t_dec),
                )
            )
    return rows


def format_bench(rows: list[dict]) -> str:
    """:func:`bench_rows`' rows as a table, with totals per quality and overall."""
    w = max([12] + [len(r["image"]) for r in rows])
    head = (
        f"{'image':<{w}} {'q':>3} {'coeffs':>8} {'.dcts B':>9} {'JPEG B':>9} {'ratio':>6} "
        f"{'enc MB/s':>9} {'dec MB/s':>9}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['image']:<{w}} {r['quality']:>3} {r['coefficients']:>8} "
            f"{r['dcts_bytes']:>9} {r['jpeg_bytes']:>9} {r['ratio']:>6.3f} "
            f"{r['encode_mb_s']:>9.1f} {r['decode_mb_s']:>9.1f}"
        )
    lines.append("-" * len(head))
    for q in sorted({r["quality"] for r in rows}):
        sel = [r for r in rows if r["quality"] == q]
        lines.append(_total_line(f"all q={q}", sel, w))
    lines.append(_total_line("all", rows, w))
    return "\n".join(lines)


def _total_line(label: str, rows: list[dict], w: int = 12) -> str:
    d = sum(r["dcts_bytes"] for r in rows)
    j = sum(r["jpeg_bytes"] for r in rows)
    raw = sum(r["raw_bytes"] for r in rows)
    enc = raw / sum(r["encode_s"] for r in rows) / 1e6
    dec = raw / sum(r["decode_s"] for r in rows) / 1e6
    n = sum(r["coefficients"] for r in rows)
    return f"{label:<{w + 4}} {n:>8} {d:>9} {j:>9} {d / j:>6.3f} {enc:>9.1f} {dec:>9.1f}"
