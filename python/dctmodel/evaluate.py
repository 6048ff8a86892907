"""Sample quality and compression of a trained DCTransformer, as Table 1 of the paper reports them.

    python -m dctmodel.evaluate --workdir runs/tiny                 # 256 samples against 500 held-out images
    python -m dctmodel.evaluate --workdir runs/tiny --num 1000 --num-real 2000 --temperature 0.9

Writes ``WORKDIR/eval_STEP.json`` (``eval_STEP_<settings hash>.json`` for other sampling
settings or seeds) and a record in ``WORKDIR/log.jsonl``:

* ``samples``: FID, sFID, precision/recall (k=3) and KID of ``--num`` samples
  against ``--num-real`` held-out images (:mod:`dctmodel.metrics`, features
  from :mod:`dctmodel.inception`; needs ``pip install "dctsparse[eval]"``);
* ``codec``: the same metrics for ``--num`` other held-out images passed
  through the preset's own codec settings: the best a perfect model of the
  token lists could score (its ceiling);
* ``bpd``: bits per subpixel on the first ``--bpd-images`` held-out images of
  the model, of the count baseline (:mod:`dctmodel.baseline`), of the
  ``.dcts`` file and of libjpeg's optimised JPEG at the preset's quality.

The samples are drawn with :func:`dctmodel.sample.sample_to_folder` into
``WORKDIR/eval_samples/STEP_<settings>/``, so an interrupted evaluation
continues where it stopped; features of real images are cached per (dataset,
codec settings, count) in ``$DCTMODEL_CACHE`` (default ``~/.cache/dctmodel``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import os
import sys
import time

import numpy as np

from . import metrics
from .config import Config

LN2 = float(np.log(2.0))


# ---------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------


def held_out_source(cfg: Config, count: int):
    """The eval split with at least ``count`` images where the source can make them (scenes)."""
    from .data import make_source

    data = cfg.data
    if data.source == "scenes":
        data = dataclasses.replace(data, num_eval=max(count, data.num_eval))
    return make_source(data, "eval")


def held_out_images(cfg: Config, start: int, count: int) -> list[np.ndarray]:
    """Held-out images ``start .. start+count-1`` as uint8 arrays (refused if the split is shorter)."""
    src = held_out_source(cfg, start + count)
    if len(src) < start + count:
        raise ValueError(f"the eval split has {len(src)} images; {start + count} are needed (lower --num-real / --num)")
    return [np.asarray(src.image(i)) for i in range(start, start + count)]


def through_codec(cfg: Config, img: np.ndarray) -> np.ndarray:
    import dctsparse

    d = cfg.data
    s = dctsparse.encode(
        img, block_size=d.block_size, quality=d.quality, subsampling=d.subsampling, order=d.order, clip=d.clip
    )
    return np.asarray(dctsparse.decode(s))


def _cache_dir() -> str:
    return os.environ.get("DCTMODEL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "dctmodel")


def _data_key(cfg: Config, what: str, start: int, count: int) -> str:
    from .inception import NETWORK_ID

    d = dataclasses.asdict(cfg.data)
    d.pop("num_train"), d.pop("num_eval")  # the images do not depend on them
    if what == "real":  # raw images do not depend on the codec either
        for k in ("block_size", "quality", "subsampling", "order", "clip"):
            d.pop(k)
    blob = json.dumps(dict(data=d, what=what, start=start, count=count, net=NETWORK_ID), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def cached_features(cfg: Config, what: str, start: int, count: int, progress: bool = True) -> dict:
    """Inception features of held-out images ``start ..`` (``what="real"``) or of the same
    images through the codec (``"codec"``), cached on disk."""
    from .inception import features

    path = os.path.join(_cache_dir(), "features", f"{_data_key(cfg, what, start, count)}.npz")
    if os.path.exists(path):
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    imgs = held_out_images(cfg, start, count)
    if what == "codec":
        imgs = [through_codec(cfg, im) for im in imgs]
    feats = features(_rgb_list(imgs), progress=f"{what} images" if progress else None)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}.npz"
    np.savez(tmp, **feats)
    os.replace(tmp, path)
    return feats


def _rgb_list(imgs: list[np.ndarray]) -> np.ndarray:
    out = [np.repeat(im[..., None], 3, axis=-1) if im.ndim == 2 else im for im in imgs]
    if len({im.shape for im in out}) != 1:
        raise ValueError("images of different sizes: FID here needs one image size per set")
    return np.stack(out)


# ---------------------------------------------------------------------------
# Bits per subpixel: model, count baseline, .dcts, JPEG
# ---------------------------------------------------------------------------


def jpeg_bits(img: np.ndarray, quality: int, subsampling: str) -> int:
    """Size in bits of libjpeg's optimised baseline JPEG (through Pillow) at ``quality``."""
    from PIL import Image

    buf = io.BytesIO()
    im = Image.fromarray(img)
    opts = dict(quality=quality, optimize=True)
    if im.mode == "RGB":
        opts["subsampling"] = 2 if subsampling == "4:2:0" else 0
    im.save(buf, format="JPEG", **opts)
    return 8 * len(buf.getvalue())


def compression_table(cfg: Config, params, num_images: int, fit_images: int) -> dict:
    """Bits per subpixel on the first ``num_images`` held-out images."""
    import dctsparse

    from .baseline import CountModel
    from .data import make_source
    from .train import evaluate, make_mesh

    d = cfg.data
    src = held_out_source(cfg, num_images)
    n = min(num_images, len(src))
    model = evaluate(cfg, params, src, make_mesh(1), num_images=n)
    train_src = make_source(d, "train")
    count = CountModel.fit(cfg, (train_src.tokens(i)[0] for i in range(min(fit_images, len(train_src)))))
    rows: dict[str, list] = {"count_baseline": [], "dcts": [], "jpeg": [], "fixed_length": []}
    for i in range(n):
        toks, _, subpix = src.tokens(i)
        img = np.asarray(src.image(i))
        s = dctsparse.encode(
            img, block_size=d.block_size, quality=d.quality, subsampling=d.subsampling, order=d.order, clip=d.clip
        )
        rows["count_baseline"].append(count.bits(toks) / subpix)
        rows["dcts"].append(8 * len(s.to_bytes()) / subpix)
        rows["jpeg"].append(jpeg_bits(img, d.quality, d.subsampling) / subpix)
        rows["fixed_length"].append(s.bits_per_subpixel())
    out = {
        "images": n,
        "model": model["bpd"],
        "model_channel": model["bpd_channel"],
        "model_position": model["bpd_position"],
        "model_value": model["bpd_value"],
    }
    out.update({k: float(np.mean(v)) for k, v in rows.items()})
    out["count_baseline_fit_images"] = min(fit_images, len(train_src))
    return out


# ---------------------------------------------------------------------------
# The whole evaluation
# ---------------------------------------------------------------------------


def sample_images(
    cfg: Config,
    params,
    folder: str,
    *,
    num: int,
    batch_size: int,
    seed: int,
    settings: dict,
    progress: bool = True,
    **kw,
) -> list[np.ndarray]:
    """``num`` samples (resumable, see :func:`dctmodel.sample.sample_to_folder`) decoded to uint8."""
    from .sample import decode_tokens, sample_to_folder

    toks = sample_to_folder(
        cfg, params, folder, num=num, batch_size=batch_size, seed=seed, settings=settings, progress=progress, **kw
    )
    side = cfg.data.image_size
    return [np.asarray(decode_tokens(cfg, t, side, side)) for t in toks]


def evaluate_samples(
    cfg: Config,
    params,
    workdir: str,
    step: int,
    *,
    num: int = 256,
    num_real: int = 500,
    batch_size: int = 16,
    seed: int = 0,
    bpd_images: int = 64,
    fit_images: int = 2000,
    temperature=1.0,
    top_k=0,
    top_p=1.0,
    progress: bool = True,
) -> dict:
    """Evaluate a trained model; returns the record written to ``WORKDIR/eval_STEP.json``
    (with a hash of the settings in the name when they are not the defaults)."""
    from .inception import network_path

    network_path()  # a missing extra is reported before anything is sampled
    t0 = time.time()
    sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p)
    settings = dict(step=step, seed=seed, **sampling)
    tag = hashlib.sha256(json.dumps(dict(settings, batch_size=batch_size), sort_keys=True).encode()).hexdigest()[:10]
    folder = os.path.join(workdir, "eval_samples", f"{step}_{tag}")
    default = (seed, temperature, top_k, top_p) == (0, 1.0, 0, 1.0)
    # One file per (step, sampling settings): another temperature must not overwrite the default's.
    path = os.path.join(workdir, f"eval_{step}.json" if default else f"eval_{step}_{tag}.json")
    imgs = sample_images(
        cfg, params, folder, num=num, batch_size=batch_size, seed=seed, settings=settings, progress=progress, **sampling
    )
    from .inception import features

    fake = features(_rgb_list(imgs), progress="samples" if progress else None)
    real = cached_features(cfg, "real", 0, num_real, progress)
    codec = cached_features(cfg, "codec", num_real, num, progress)  # other held-out images
    rec = {
        "step": step,
        "num": num,
        "num_real": num_real,
        "seed": seed,
        **sampling,
        "samples": metrics.all_metrics(real, fake),
        "codec": metrics.all_metrics(real, codec),
        "bpd": compression_table(cfg, params, bpd_images, fit_images),
        "seconds": round(time.time() - t0, 1),
        "samples_folder": folder,
        "path": path,
    }
    with open(path, "w") as f:
        json.dump(rec, f, indent=1)
    with open(os.path.join(workdir, "log.jsonl"), "a") as f:
        f.write(json.dumps({"step": step, "sample_eval": rec}) + "\n")
    return rec


def summary(rec: dict) -> str:
    s, c, b = rec["samples"], rec["codec"], rec["bpd"]
    return (
        f"step {rec['step']}: FID {s['fid']:.1f} (codec ceiling {c['fid']:.1f}), sFID {s['sfid']:.1f}, "
        f"precision {s['precision']:.3f}, recall {s['recall']:.3f}, KID {s['kid']:.4f}; "
        f"bpd model {b['model']:.4f}, count baseline {b['count_baseline']:.4f}, "
        f".dcts {b['dcts']:.4f}, JPEG {b['jpeg']:.4f} ({b['images']} held-out images)"
    )


def main(argv: list | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m dctmodel.evaluate", description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--workdir", help="training work directory (latest checkpoint)")
    src.add_argument("--checkpoint", help="WORKDIR, WORKDIR/checkpoints or WORKDIR/checkpoints/STEP")
    ap.add_argument("--num", type=int, default=256, help="samples (and codec-ceiling images)")
    ap.add_argument("--num-real", type=int, default=500, help="held-out images the samples are compared with")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bpd-images", type=int, default=64, help="held-out images for the bits-per-subpixel table")
    ap.add_argument("--fit-images", type=int, default=2000, help="training images the count baseline is fitted on")
    ap.add_argument("--temperature", type=float, nargs="+", default=[1.0], help="one value or channel position value")
    ap.add_argument("--top-k", type=int, nargs="+", default=[0])
    ap.add_argument("--top-p", type=float, nargs="+", default=[1.0])
    args = ap.parse_args(argv)
    try:
        from .checkpoint import load_params, resolve
        from .inception import network_path

        network_path()
        for name in ("num", "num_real", "batch_size", "bpd_images", "fit_images"):
            if getattr(args, name) < (2 if name in ("num", "num_real") else 1):
                raise ValueError(f"--{name.replace('_', '-')} is too small: {getattr(args, name)}")
        cfg, params, step = load_params(args.workdir or args.checkpoint, who="evaluate")
        workdir = resolve(args.workdir or args.checkpoint)[0]
    except (ValueError, OSError, ImportError) as e:
        ap.exit(2, f"{ap.prog}: error: {e}\n")
    one = lambda v: v[0] if len(v) == 1 else list(v)  # noqa: E731
    try:
        rec = evaluate_samples(
            cfg,
            params,
            workdir,
            step,
            num=args.num,
            num_real=args.num_real,
            batch_size=args.batch_size,
            seed=args.seed,
            bpd_images=args.bpd_images,
            fit_images=args.fit_images,
            temperature=one(args.temperature),
            top_k=one(args.top_k),
            top_p=one(args.top_p),
        )
    except KeyboardInterrupt:
        print("interrupted: finished sample batches are kept; the same command continues", file=sys.stderr)
        raise SystemExit(130) from None
    print(summary(rec))


if __name__ == "__main__":
    main()
