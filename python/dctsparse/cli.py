"""The ``dctsparse`` command line (also ``python -m dctsparse``).

Every subcommand is a function of parsed arguments; :func:`main` turns any
error into a one-line message on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from . import viz

EXAMPLES = """\
examples:
  dctsparse encode photo.jpg -q 75 -b 8            # -> photo.dcts
  dctsparse decode photo.dcts -o photo.png
  dctsparse decode photo.dcts --fraction 0.1       # progressive: the first 10% of the list
  dctsparse info photo.dcts
  dctsparse preview photo.dcts                     # prefix strip + coefficient heatmap
  dctsparse convert photos/ encoded/ --jobs 4      # a whole folder, recursively
  dctsparse convert encoded/ pngs/ --to png
  dctsparse bench                                  # .dcts vs JPEG sizes, coder MB/s
  dctsparse encode-dataset imgs/ shards/ --long-side 384 -q 75 -b 8
  dctsparse verify-dataset shards/                 # every file and every image checked
"""

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm")


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


# ------------------------------------------------------------------ argument helpers


def _order(text: str):
    if text in ("frequency", "luma_first"):
        return text
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"order must be 'frequency', 'luma_first' or comma-separated channel ids, got {text!r}"
        ) from None


def _fraction(text: str) -> float:
    try:
        num, _, den = text.partition("/")
        f = float(num) / float(den) if den else float(num)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not a fraction: {text!r}") from None
    if not 0 <= f <= 1:
        raise argparse.ArgumentTypeError(f"fractions must be in [0, 1], got {text!r}")
    return f


def _add_encoding_args(p: argparse.ArgumentParser, dataset: bool = False) -> None:
    g = p.add_argument_group("encoding settings")
    g.add_argument("-q", "--quality", type=int, default=75, help="IJG quality 1-100 (default: 75)")
    g.add_argument("-b", "--block-size", type=int, default=8, help="DCT block size B, 2-64 (default: 8)")
    g.add_argument(
        "--subsampling", choices=["4:2:0", "4:4:4"], default="4:2:0", help="chroma subsampling (default: 4:2:0)"
    )
    g.add_argument(
        "--order",
        type=_order,
        default="frequency",
        help="list order: frequency, luma_first or comma-separated channel ids (default: frequency)",
    )
    g.add_argument("--clip", type=int, default=None, help="clip values to [-CLIP, CLIP] (default: none)")
    if not dataset:
        g.add_argument("--drop-alpha", action="store_true", help="drop an alpha channel instead of refusing the image")


def _encode_kwargs(a) -> dict:
    return dict(block_size=a.block_size, quality=a.quality, subsampling=a.subsampling, order=a.order, clip=a.clip)


def _open_image(path: str | Path):
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im.load()
        return ImageOps.exif_transpose(im)


def _load_or_encode(path: str, a):
    """A .dcts file, or any image encoded with the command's settings."""
    from . import codec, container

    with open(path, "rb") as f:
        head = f.read(8)
    if head == container.MAGIC:
        return container.load(path)
    return codec.encode(_open_image(path), drop_alpha=getattr(a, "drop_alpha", False), **_encode_kwargs(a))


def _bps(nbytes: int, s) -> float:
    return 8 * nbytes / (s.height * s.width * s.planes)


# ------------------------------------------------------------------ subcommands


def cmd_encode(a) -> None:
    from . import codec, container

    if a.output and len(a.inputs) > 1:
        raise CLIError("-o/--output needs a single input")
    for src in a.inputs:
        dst = a.output or str(Path(src).with_suffix(".dcts"))
        s = codec.encode(_open_image(src), drop_alpha=a.drop_alpha, **_encode_kwargs(a))
        n = container.save(s, dst)
        if not a.quiet:
            print(
                f"{src} -> {dst}: {s.width}x{s.height} {s.mode}, {len(s)} coefficients, "
                f"{n} bytes ({_bps(n, s):.3f} bits per subpixel)"
            )


def cmd_decode(a) -> None:
    from PIL import Image

    from . import codec, container

    if a.prefix is not None and a.fraction is not None:
        raise CLIError("give --prefix or --fraction, not both")
    s = container.load(a.input)
    n = len(s)
    if a.prefix is not None:
        n = min(max(a.prefix, 0), len(s))
    elif a.fraction is not None:
        n = int(round(a.fraction * len(s)))
    dst = a.output or str(Path(a.input).with_suffix(".png"))
    Image.fromarray(codec.decode(s[:n])).save(dst)
    if not a.quiet:
        print(f"{a.input} -> {dst}: {s.width}x{s.height} {s.mode}, {n} of {len(s)} coefficients")


def file_info(path: str) -> dict:
    """Header, file size and counts of a .dcts file (decodes the list)."""
    from . import container

    data = Path(path).read_bytes()
    h = container.info(data)
    s = container.from_bytes(data)
    bb = s.block_size**2
    names = ["Y", "Cb", "Cr"] if s.planes == 3 else ["Y"]
    per_plane = np.bincount(np.asarray(s.channel) // bb, minlength=s.planes)
    info = dict(h)
    info["order"] = h["order"] if isinstance(h["order"], str) else "custom permutation"
    info.update(
        file=path,
        grid=list(s.grid),
        coefficients_per_plane={n: int(c) for n, c in zip(names, per_plane, strict=True)},
        bits_per_subpixel=_bps(len(data), s),
        bits_per_coefficient=8 * len(data) / max(len(s), 1),
        fixed_length_bits_per_subpixel=s.bits_per_subpixel(),
        raw_bytes=s.height * s.width * s.planes,
        compression_ratio=s.height * s.width * s.planes / len(data),
    )
    return info


def cmd_info(a) -> None:
    infos = [file_info(p) for p in a.inputs]
    if a.json:
        print(json.dumps(infos if len(infos) > 1 else infos[0], indent=1))
        return
    for i in infos:
        order = i["order"]
        print(f"{i['file']}: .dcts version {i['version']}, {i['file_bytes']} bytes")
        print(f"  image        {i['width']}x{i['height']} {i['mode']}, block grid {i['grid'][0]}x{i['grid'][1]}")
        print(
            f"  settings     block_size={i['block_size']} quality={i['quality']} "
            f"subsampling={i['subsampling']} order={order} clip={i['clip']}"
        )
        per = ", ".join(f"{k} {v}" for k, v in i["coefficients_per_plane"].items())
        canon = "" if i["canonical"] else " (stored in a non-canonical order)"
        print(f"  coefficients {i['count']}{canon}: {per}")
        print(
            f"  size         {i['bits_per_subpixel']:.4f} bits per subpixel, "
            f"{i['bits_per_coefficient']:.2f} bits per coefficient, "
            f"{i['compression_ratio']:.1f}:1 vs raw "
            f"(fixed-length triples: {i['fixed_length_bits_per_subpixel']:.4f} bits per subpixel)"
        )


def cmd_preview(a) -> None:
    from PIL import Image

    s = _load_or_encode(a.input, a)
    stem = Path(a.input).with_suffix("")
    strip_path = a.output or f"{stem}_preview.png"
    heat_path = a.heatmap or f"{stem}_heatmap.png"
    Image.fromarray(viz.progressive_strip(s, viz.fraction_cuts(len(s), a.fractions))).save(strip_path)
    Image.fromarray(viz.coefficient_heatmap(s)).save(heat_path)
    if not a.quiet:
        fr = ", ".join(f"{f:g}" for f in a.fractions)
        print(f"prefix decodes ({fr} of {len(s)} coefficients) -> {strip_path}")
        print(f"coefficient heatmap (per block | per frequency and plane) -> {heat_path}")


def _convert_one(job: tuple) -> str | None:
    """Worker: (src, dst, to, kwargs, drop_alpha) -> None, or the error as one line."""
    src, dst, to, kwargs, drop_alpha = job
    tmp = f"{dst}.tmp-{os.getpid()}"
    try:
        from PIL import Image

        from . import codec, container

        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        if to == "dcts":
            s = codec.encode(_open_image(src), drop_alpha=drop_alpha, **kwargs)
            container.save(s, tmp)
        else:
            img = Image.fromarray(codec.decode(container.load(src)))
            img.save(tmp, format=Image.registered_extensions()["." + to])
        os.replace(tmp, dst)  # a file that exists is a finished one: re-runs skip it
        return None
    except Exception as exc:
        return f"{src}: {type(exc).__name__}: {exc}"
    finally:  # failed or interrupted (Ctrl-C is not an Exception): no half-written file stays
        if os.path.exists(tmp):
            os.remove(tmp)


def cmd_convert(a) -> None:
    from ._progress import Progress

    src, dst = Path(a.src_dir), Path(a.dst_dir)
    if not src.is_dir():
        raise CLIError(f"source directory {str(src)!r} does not exist")
    to = a.to.lower().lstrip(".")
    wanted = (".dcts",) if to != "dcts" else IMAGE_SUFFIXES
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in wanted)
    jobs, skipped = [], 0
    for p in files:
        out = (dst / p.relative_to(src)).with_suffix("." + to)
        if out.exists() and not a.overwrite:
            skipped += 1
            continue
        jobs.append((str(p), str(out), to, _encode_kwargs(a), a.drop_alpha))
    errors = []
    with Progress(len(jobs), desc="convert", enabled=not a.quiet) as bar:
        if a.jobs > 1 and len(jobs) > 1:
            import multiprocessing

            with multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn").Pool(
                min(a.jobs, len(jobs))
            ) as pool:
                for err in pool.imap_unordered(_convert_one, jobs, chunksize=2):
                    errors += [err] if err else []
                    bar.update()
        else:
            for job in jobs:
                err = _convert_one(job)
                errors += [err] if err else []
                bar.update()
    for e in errors:
        print(f"dctsparse: error: {e}", file=sys.stderr)
    if not a.quiet:
        print(
            f"converted {len(jobs) - len(errors)} files into {dst}"
            + (f", skipped {skipped} already there" if skipped else "")
            + (f", {len(errors)} failed" if errors else "")
        )
    if errors:
        raise CLIError(f"{len(errors)} of {len(jobs)} files failed")


def _bench_images(names: list[str]):
    out = []
    for n in names:
        if os.path.exists(n):
            out.append((Path(n).name, np.asarray(_open_image(n).convert("RGB"))))
            continue
        try:
            import skimage.data
        except ImportError:
            raise CLIError(f"{n!r} is not a file, and scikit-image (for its sample images) is not installed") from None
        if not hasattr(skimage.data, n):
            raise CLIError(f"{n!r} is neither a file nor a scikit-image sample image")
        out.append((n, np.ascontiguousarray(getattr(skimage.data, n)())))
    return out


DEFAULT_BENCH_IMAGES = ["astronaut", "chelsea", "coffee", "rocket", "camera"]


def cmd_bench(a) -> None:
    from .bench import bench_rows, format_bench

    rows = bench_rows(_bench_images(a.images or DEFAULT_BENCH_IMAGES), a.quality, a.block_size, a.repeat)
    if a.json:
        print(json.dumps(rows, indent=1))
    else:
        print(
            f"B={a.block_size}, 4:2:0 (greyscale images have none), JPEG: Pillow "
            f"optimize=True; MB/s: raw image bytes per second of the container coder"
        )
        print(format_bench(rows))


def cmd_encode_dataset(a) -> None:
    from .dataset import Settings, encode_dataset

    settings = Settings(
        block_size=a.block_size,
        quality=a.quality,
        long_side=a.long_side or None,
        subsampling=a.subsampling,
        order=a.order,
        clip=a.clip,
        mode=a.mode,
        upscale=not a.no_upscale,
    )
    m = encode_dataset(a.src_dir, a.out_dir, settings, shard_size=a.shard_size, jobs=a.jobs, progress=not a.quiet)
    if not a.quiet:
        print(
            f"{m['images']} images, {m['tokens']} tokens in {m['num_shards']} shards -> "
            f"{a.out_dir}"
            + (f" ({len(m['skipped'])} unreadable files skipped, listed in manifest.json)" if m["skipped"] else "")
        )


def cmd_verify_dataset(a) -> None:
    from .dataset import verify_dataset

    r = verify_dataset(a.dir, progress=not a.quiet)
    for p in r["problems"]:
        print(f"dctsparse: error: {p}", file=sys.stderr)
    n = len(r["problems"])
    summary = f"{a.dir}: {r['items']} images in {r['shards']} shards checked, {n} problem{'' if n == 1 else 's'}"
    if r["problems"]:
        raise CLIError(summary)
    if not a.quiet:
        print(summary)


def cmd_demo(a) -> None:
    from .demo import run

    run(out=a.out, image=a.image)


# ------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="dctsparse",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Sparse DCT image codec: images <-> coordinate lists of quantised DCT "
        "coefficients (Nash et al., ICML 2021), stored as .dcts files.",
        epilog=EXAMPLES,
    )
    parser.add_argument("--version", action="version", version=f"dctsparse {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, help, func):
        p = sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
        p.set_defaults(func=func)
        return p

    p = add("encode", "encode images (any format Pillow reads) into .dcts files", cmd_encode)
    p.add_argument("inputs", nargs="+", metavar="IMAGE")
    p.add_argument("-o", "--output", help="output path (single input; default: IMAGE.dcts)")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    _add_encoding_args(p)

    p = add("decode", "decode a .dcts file into an image (format from the extension)", cmd_decode)
    p.add_argument("input", metavar="FILE.dcts")
    p.add_argument("-o", "--output", help="output image (default: FILE.png)")
    p.add_argument("--prefix", type=int, help="decode only the first N coefficients")
    p.add_argument("--fraction", type=_fraction, help="decode only this fraction of the list (e.g. 0.1 or 1/8)")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")

    p = add("info", "show the header, coefficient counts and bits per subpixel of .dcts files", cmd_info)
    p.add_argument("inputs", nargs="+", metavar="FILE.dcts")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = add(
        "preview",
        "write a strip of progressive prefix decodes and a heatmap of where the coefficients land",
        cmd_preview,
    )
    p.add_argument("input", metavar="FILE", help="a .dcts file, or an image to encode first")
    p.add_argument("-o", "--output", help="strip PNG (default: FILE_preview.png)")
    p.add_argument("--heatmap", help="heatmap PNG (default: FILE_heatmap.png)")
    p.add_argument(
        "--fractions",
        type=_fraction,
        nargs="+",
        default=[1 / 64, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0],
        help="prefix lengths as fractions of the list (default: 1/64 1/16 1/8 1/4 1/2 1)",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    _add_encoding_args(p)

    p = add(
        "convert",
        "convert a folder recursively: images to .dcts, or .dcts to images (--to png), in parallel",
        cmd_convert,
    )
    p.add_argument("src_dir", metavar="SRC_DIR")
    p.add_argument("dst_dir", metavar="DST_DIR")
    p.add_argument(
        "--to",
        default="dcts",
        help="dcts (default: encode every image) or an image extension such as png, "
        "webp, jpg (decode every .dcts file)",
    )
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="redo files whose output exists (default: skip them, so an interrupted run resumes)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    _add_encoding_args(p)

    p = add("bench", "compare .dcts sizes with Pillow's optimised JPEG and time the coder", cmd_bench)
    p.add_argument(
        "images",
        nargs="*",
        metavar="IMAGE",
        help="image files or scikit-image sample names (default: " + " ".join(DEFAULT_BENCH_IMAGES) + ")",
    )
    p.add_argument("-q", "--quality", type=int, nargs="+", default=[50, 75, 90], help="qualities (default: 50 75 90)")
    p.add_argument("-b", "--block-size", type=int, default=8, help="block size (default: 8)")
    p.add_argument("--repeat", type=int, default=5, help="timing repeats, best kept (default: 5)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = add(
        "encode-dataset",
        "encode a folder of images into memory-mappable token shards for training (resumable)",
        cmd_encode_dataset,
    )
    p.add_argument("src_dir", metavar="SRC_DIR", help="folder of JPEG/PNG/WebP/... images, searched recursively")
    p.add_argument("out_dir", metavar="OUT_DIR", help="output folder (shards + manifest.json)")
    _add_encoding_args(p, dataset=True)
    p.add_argument(
        "--long-side",
        type=int,
        default=384,
        help="resize so the longer side has this many pixels, 0 to keep sizes (default: 384)",
    )
    p.add_argument("--no-upscale", action="store_true", help="leave images smaller than --long-side as they are")
    p.add_argument(
        "--mode", choices=["RGB", "L"], default="RGB", help="convert every image to this mode (default: RGB)"
    )
    p.add_argument("--shard-size", type=int, default=1024, help="images per shard (default: 1024)")
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")

    p = add(
        "verify-dataset",
        "check an encoded dataset: every file, and that every image decodes (exit status 1 on any problem)",
        cmd_verify_dataset,
    )
    p.add_argument("dir", metavar="DIR", help="a folder written by encode-dataset")
    p.add_argument("--quiet", action="store_true", help="no progress bar, and no summary when there is no problem")

    p = add(
        "demo",
        "encode a bundled natural image at several settings; print a table and write a progressive-decode strip",
        cmd_demo,
    )
    p.add_argument("--out", default="dctsparse_demo.png", help="PNG to write (default: %(default)s)")
    p.add_argument("--image", default="astronaut", help="name of a scikit-image sample image (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 error, 2 usage, 130 interrupt)."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("dctsparse: interrupted", file=sys.stderr)
        return 130
    except CLIError as exc:
        print(f"dctsparse: error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, OSError, AttributeError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"dctsparse: error: {msg}", file=sys.stderr)
        return 1
    except Exception as exc:  # never a traceback on the command line
        print(f"dctsparse: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
