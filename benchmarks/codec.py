"""Codec speed, side by side with the peers, in one run.

    python -m benchmarks.codec            # full run (a few minutes)
    python -m benchmarks.codec --quick    # under a minute

Everything is single-threaded unless stated (the batch rows). Each figure is
the median of several repetitions, and for one image and quality every
codec and block size takes its turn within each repetition, so a slow spell
of the machine hits all of them alike: read ratios, not absolute MP/s.

Peers: libjpeg-turbo through Pillow and through simplejpeg (JPEG encode /
decode at the same quality with 4:2:0), dctsparse's own NumPy reference
(``dctsparse.reference``), and a plain copy of the image's bytes (the memory
limit). Results are printed as tables and written as JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

import dctsparse
from dctsparse import _core
from dctsparse import reference as R

from .images import NATURAL, natural, tiled


def timeit(fn, reps: int) -> float:
    """Median seconds of `reps` calls (after one warm-up call)."""
    return interleaved({"fn": fn}, reps)["fn"]


def interleaved(fns: dict, reps: int) -> dict:
    """name -> median seconds of `reps` calls, the callables taking turns in
    each repetition (after one warm-up call each), so a slow spell of the
    machine hits all of them alike and their ratios hold."""
    for fn in fns.values():
        fn()
    ts = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            ts[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in ts.items()}


def peers(img: np.ndarray, q: int) -> dict:
    """name -> (encode callable, decode callable) for JPEG at quality q, 4:2:0."""
    out = {}
    pil = Image.fromarray(img)

    def pil_enc():
        buf = io.BytesIO()
        pil.save(buf, "JPEG", quality=q, subsampling=2)
        return buf.getvalue()

    jpg = pil_enc()
    out["libjpeg-turbo (Pillow)"] = (pil_enc, lambda: np.asarray(Image.open(io.BytesIO(jpg))))
    try:
        import simplejpeg

        out["libjpeg-turbo (simplejpeg)"] = (
            lambda: simplejpeg.encode_jpeg(img, quality=q, colorspace="RGB", colorsubsampling="420"),
            lambda: simplejpeg.decode_jpeg(jpg),
        )
    except ImportError:
        pass
    dst = np.empty_like(img)
    out["memcpy (image bytes)"] = (lambda: np.copyto(dst, img), lambda: np.copyto(dst, img))
    return out


def reference_codec(img, b, q):
    d = R.encode_dct_image(img, b, q, "4:2:0")
    return R.to_list(d, "frequency"), d


def bench_image(name, img, blocks, qualities, reps, with_reference) -> list[dict]:
    mp = img.shape[0] * img.shape[1] / 1e6
    rows = []
    for q in qualities:
        fns, lists = {}, {}
        for b in blocks:
            lists[b] = s = dctsparse.encode(img, block_size=b, quality=q)
            fns[(b, "dctsparse encode")] = lambda b=b, q=q: dctsparse.encode(img, block_size=b, quality=q)
            fns[(b, "dctsparse decode")] = lambda s=s: dctsparse.decode(s)
        if 8 in blocks:  # JPEG is B=8 only; the peers are the same for every B
            for pname, (enc, dec) in peers(img, q).items():
                fns[(8, f"{pname} encode")] = enc
                fns[(8, f"{pname} decode")] = dec
        times = interleaved(fns, reps)
        for b in blocks:
            row = dict(image=name, megapixels=mp, block_size=b, quality=q, triples=len(lists[b]))
            row.update({what: mp / t for (bb, what), t in times.items() if bb == b})
            if with_reference and b == 8:  # one run each: the reference takes seconds
                _, d = reference_codec(img, b, q)
                # timed at once, but bound anyway: a closure reading loop variables
                # is a bug waiting for the call to move
                row["numpy reference encode"] = mp / timeit(lambda b=b, q=q: reference_codec(img, b, q), 1)
                row["numpy reference decode"] = mp / timeit(
                    lambda b=b, q=q, d=d: R.decode_dct_image(d, img.shape[0], img.shape[1], b, q), 1
                )
            rows.append(row)
    return rows


def stage_breakdown(img, b, q, reps) -> dict:
    s = dctsparse.encode(img, block_size=b, quality=q)
    seq = s.channel_sequence
    enc = [dict(_core.profile_encode(img, b, q, True, 0, seq)) for _ in range(reps)]
    dec = [
        dict(_core.profile_decode(s.channel, s.position, s.value, s.height, s.width, 3, b, q, True, 0))
        for _ in range(reps)
    ]
    mp = img.shape[0] * img.shape[1] / 1e6
    med = lambda runs: {k: mp / statistics.median(r[k] for r in runs) for k in runs[0]}  # noqa: E731
    return {"encode": med(enc), "decode": med(dec)}


def batch_speedup(images, reps) -> dict:
    items = dctsparse.encode_batch(images)
    t = interleaved(
        {
            "e1": lambda: dctsparse.encode_batch(images, threads=1),
            "e2": lambda: dctsparse.encode_batch(images, threads=2),
            "d1": lambda: dctsparse.decode_batch(items, threads=1),
            "d2": lambda: dctsparse.decode_batch(items, threads=2),
        },
        reps,
    )
    return {
        "encode 2 threads / 1 thread": t["e1"] / t["e2"],
        "decode 2 threads / 1 thread": t["d1"] / t["d2"],
        "images": len(images),
    }


def fmt_table(rows: list[dict], cols: list[str]) -> str:
    head = f"{'image':>10} {'B':>3} {'q':>3} " + " ".join(f"{c[:26]:>26}" for c in cols)
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = " ".join(f"{r[c]:>26.1f}" if c in r else f"{'':>26}" for c in cols)
        lines.append(f"{r['image']:>10} {r['block_size']:>3} {r['quality']:>3} {cells}")
    return "\n".join(lines)


def targets(rows, breakdown_b8, batch) -> list[tuple[str, float, float]]:
    """(what, measured ratio, target) on the tiled image at q=75."""
    big = {r["block_size"]: r for r in rows if r["image"] == "tiled2048" and r["quality"] == 75}
    b8 = big[8]
    turbo = "libjpeg-turbo (simplejpeg)" if "libjpeg-turbo (simplejpeg) encode" in b8 else "libjpeg-turbo (Pillow)"
    out = [
        ("encode / libjpeg-turbo JPEG encode", b8["dctsparse encode"] / b8[f"{turbo} encode"], 2.0),
        ("decode / libjpeg-turbo JPEG decode", b8["dctsparse decode"] / b8[f"{turbo} decode"], 1.5),
    ]
    if "numpy reference encode" in b8:
        out += [
            ("encode / NumPy reference", b8["dctsparse encode"] / b8["numpy reference encode"], 20.0),
            ("decode / NumPy reference", b8["dctsparse decode"] / b8["numpy reference decode"], 20.0),
        ]
    for b in (16, 32):
        if b in big:
            out.append((f"B={b} encode / B=8 encode", big[b]["dctsparse encode"] / b8["dctsparse encode"], 0.6))
            out.append((f"B={b} decode / B=8 decode", big[b]["dctsparse decode"] / b8["dctsparse decode"], 0.6))
    out.append(("batch encode, 2 threads / 1", batch["encode 2 threads / 1 thread"], 1.8))
    out.append(("batch decode, 2 threads / 1", batch["decode 2 threads / 1 thread"], 1.8))
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer settings and repetitions (< 1 minute)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions per figure (median)")
    ap.add_argument("--out", default="benchmarks/results/codec.json", help="JSON output path")
    args = ap.parse_args(argv)
    quick = args.quick
    reps = args.reps or (3 if quick else 7)
    blocks = (8, 16, 32) if quick else (4, 8, 16, 32)
    qualities = (75,) if quick else (50, 75, 90)

    info = dctsparse.simd_info()
    print(
        f"dctsparse {dctsparse.__version__}, SIMD level {info['level']} "
        f"(available: {', '.join(info['available'])}), {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; single-threaded, median of {reps}; MP/s (megapixels per second)"
    )
    rows = []
    big = tiled(2048)
    rows += bench_image("tiled2048", big, blocks, qualities, reps, with_reference=True)
    for name in NATURAL[:1] if quick else NATURAL:
        rows += bench_image(name, natural(name), blocks, qualities, reps, with_reference=False)

    cols = [
        "dctsparse encode",
        "libjpeg-turbo (simplejpeg) encode",
        "libjpeg-turbo (Pillow) encode",
        "numpy reference encode",
        "memcpy (image bytes) encode",
    ]
    print("\nencode, image -> coordinate list (JPEG peers: image -> JPEG bytes), MP/s")
    print(fmt_table(rows, cols))
    print("\ndecode, coordinate list -> RGB (JPEG peers: bytes -> RGB), MP/s")
    print(fmt_table(rows, [c.replace("encode", "decode") for c in cols]))

    breakdown = {b: stage_breakdown(big, b, 75, reps) for b in (8, 16, 32)}
    print("\nper stage (unfused, tiled2048, q=75), MP/s of the stage alone")
    for b, bd in breakdown.items():
        for direction in ("encode", "decode"):
            stages = ", ".join(f"{k} {v:.0f}" for k, v in bd[direction].items())
            print(f"  B={b:<2} {direction}: {stages}")

    batch_imgs = [natural(n) for n in NATURAL] * (2 if quick else 4)
    batch = batch_speedup(batch_imgs, max(3 * reps, 21))  # ~20 ms a call: cheap to repeat
    print(
        f"\nbatch of {batch['images']} natural images: encode x{batch['encode 2 threads / 1 thread']:.2f}, "
        f"decode x{batch['decode 2 threads / 1 thread']:.2f} with 2 threads vs 1"
    )

    print("\ntargets (tiled2048, B=8 unless stated, q=75, 4:2:0):")
    tg = targets(rows, breakdown[8], batch)
    for what, got, want in tg:
        print(f"  {what:<40} {got:7.2f}x   target >= {want}x   {'met' if got >= want else 'NOT met'}")

    result = dict(
        simd=info,
        reps=reps,
        quick=quick,
        rows=rows,
        breakdown={str(k): v for k, v in breakdown.items()},
        batch=batch,
        targets=[dict(what=w, ratio=g, target=t) for w, g, t in tg],
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"\nwritten {out}")
    return result


if __name__ == "__main__":
    main()
