"""``python -m dctmodel.sample``: samples of a checkpoint as a grid, a heatmap and progressive strips."""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys

import numpy as np

from ..checkpoint import load_params, resolve
from ..tokens import grid_of
from .conditioning import colorize_prefix, upsample_prefix
from .folder import sample_to_folder
from .pictures import as_rgb, decode_tokens, image_grid, location_heatmap, progressive_strip

DESCRIPTION = "Chunked sampling (section 3.3) with key/value caches, super-resolution and colorisation (4.3)."


def _read_image(path: str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m dctmodel.sample", description=DESCRIPTION)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--workdir", help="training work directory (latest checkpoint)")
    src.add_argument("--checkpoint", help="WORKDIR, WORKDIR/checkpoints or WORKDIR/checkpoints/STEP")
    ap.add_argument("--num", type=int, default=16)
    ap.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="samples drawn per compiled call (default: --num, at most 16); each finished batch "
        "is saved in OUT_tokens/, so an interrupted run (or, with the same --batch-size, "
        "a larger --num) continues where it stopped",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--label", type=int, nargs="*", default=None, help="class(es), cycled over the samples")
    ap.add_argument("--temperature", type=float, nargs="+", default=[1.0], help="one value or channel position value")
    ap.add_argument("--top-k", type=int, nargs="+", default=[0])
    ap.add_argument("--top-p", type=float, nargs="+", default=[1.0])
    ap.add_argument("--max-chunks", type=int, default=None)
    ap.add_argument(
        "--size",
        metavar="HxW",
        type=_size,
        default=None,
        help="image size in pixels (default: the config's square image_size); each side at most "
        "image_size, for models trained on images of several aspect ratios",
    )
    ap.add_argument("--method", choices=("cached", "recompute"), default="cached")
    cond = ap.add_mutually_exclusive_group()
    cond.add_argument("--upsample", metavar="IMG", help="super-resolution: condition on the DC channels of IMG")
    cond.add_argument("--colorize", metavar="IMG", help="colorisation (luma_first model): condition on IMG's luma")
    ap.add_argument("--strip-steps", type=int, default=8)
    ap.add_argument(
        "--out",
        default=None,
        help="PNG grid (default WORKDIR/samples.png); OUT_heatmap.png and OUT_progress.png are written next to it",
    )
    args = ap.parse_args(argv)
    try:
        _run(args)
    except (ValueError, OSError) as e:  # bad paths, images, checkpoints or settings: no traceback
        ap.exit(2, f"{ap.prog}: error: {e}\n")


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size takes HEIGHTxWIDTH in pixels, e.g. 32x24, got {text!r}") from None
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"--size sides must be positive, got {text!r}")
    return h, w


def _run(args):
    import time

    from PIL import Image

    # Everything the user named is checked before the checkpoint loads and the sampler compiles.
    cond_image = _read_image(args.upsample or args.colorize) if args.upsample or args.colorize else None
    cfg, params, step = load_params(args.workdir or args.checkpoint, who="sample")
    d = cfg.data
    one = lambda v: v[0] if len(v) == 1 else tuple(v)  # noqa: E731
    kw = dict(
        temperature=one(args.temperature),
        top_k=one(args.top_k),
        top_p=one(args.top_p),
        max_chunks=args.max_chunks,
        method=args.method,
    )
    size = (d.image_size, d.image_size)
    context, start = None, 0
    if args.size is not None:
        if args.upsample or args.colorize:
            raise ValueError("--size is set by the conditioning image with --upsample / --colorize")
        if max(args.size) > d.image_size:
            raise ValueError(
                f"--size {args.size[0]}x{args.size[1]}: each side must be at most the model's image_size={d.image_size}"
            )
        size = args.size
        kw.update(hw=grid_of(size[0], size[1], d.block_size, d.subsampling, d.planes))
    if args.upsample or args.colorize:
        make = upsample_prefix if args.upsample else colorize_prefix
        assert cond_image is not None  # read above for --upsample / --colorize
        prefix, hw, min_rank, context = make(cfg, cond_image)
        size, start = context.shape[:2], len(prefix)
        kw.update(prefix=prefix, hw=hw, min_rank=min_rank)
    base = args.out or os.path.join(resolve(args.workdir or args.checkpoint)[0], "samples.png")
    stem, ext = os.path.splitext(base)
    if ext.lower() not in Image.registered_extensions():
        raise ValueError(
            f"--out {base}: Pillow cannot tell an image format from {ext or 'no extension'!r}; name a .png file"
        )
    os.makedirs(os.path.dirname(os.path.abspath(base)), exist_ok=True)
    settings = dict(
        checkpoint=os.path.abspath(args.workdir or args.checkpoint),
        step=step,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        max_chunks=args.max_chunks,
        method=args.method,
        size=list(size),
        condition="upsample" if args.upsample else ("colorize" if args.colorize else None),
        # the image's pixels, not its path: a moved file is the same condition
        context=None if cond_image is None else hashlib.sha256(cond_image.tobytes()).hexdigest(),
    )
    t0 = time.time()
    try:
        bs = args.batch_size or max(1, min(args.num, 16))
        toks = sample_to_folder(
            cfg,
            params,
            stem + "_tokens",
            num=args.num,
            batch_size=bs,
            seed=args.seed,
            label=args.label or None,
            settings=settings,
            **kw,
        )
    except KeyboardInterrupt:
        print(f"interrupted: the finished batches are in {stem}_tokens/; the same command continues", file=sys.stderr)
        raise SystemExit(130) from None
    dt = time.time() - t0
    h, w = size
    imgs = [as_rgb(decode_tokens(cfg, t, h, w)) for t in toks]
    cols = math.ceil(math.sqrt(len(imgs)))
    shown = ([as_rgb(context)] if context is not None else []) + imgs
    Image.fromarray(image_grid(shown, cols)).save(base)
    Image.fromarray(image_grid([location_heatmap(cfg, t, h, w) for t in toks], cols)).save(stem + "_heatmap.png")
    strips = [progressive_strip(cfg, t, h, w, args.strip_steps, start) for t in toks]
    Image.fromarray(image_grid(strips, 1)).save(stem + "_progress.png")
    ntok = sum(len(t) - 1 - start for t in toks)
    print(
        f"checkpoint step {step}: {len(imgs)} samples, {np.mean([len(t) for t in toks]):.0f} tokens on "
        f"average, {ntok} in all, {dt:.1f} s (compile included) -> {base}, {stem}_heatmap.png, "
        f"{stem}_progress.png, tokens in {stem}_tokens/"
    )
