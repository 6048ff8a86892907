"""Train HR-VQVAE or a baseline (VQ-VAE, VQ-VAE-2) on generated scenes or image patches.

    python -m dctmodel.hrvqvae_train --model hrvqvae --layers 2 --m 8 --steps 300 --workdir runs/hrvq
    python -m dctmodel.hrvqvae_train --preset gpu --model hrvqvae --layers 3 --m 8 --workdir runs/hrvq3

(``python -m dctmodel.hrvqvae`` is the same command.)  Prints progress and
writes the work directory of ``dctmodel.hrvqvae.train``: ``config.json``,
``log.jsonl`` and orbax checkpoints in ``checkpoints/`` every
``train.checkpoint_every`` steps and on Ctrl-C.  Running the same command
again resumes with the run's own config.json and ends bit for bit where an
uninterrupted run would (flags that change the model or data are refused).
Every run ends by writing ``reconstructions.png``: 8 held-out images in the
top row, their reconstructions below.  ``--prior-steps N`` then fits the
PixelCNN prior on the training codes (checkpointed the same way, in
``prior/checkpoints/``) and writes ``samples.png`` (16 samples, 2 rows of 8).
Presets (``--preset``, ``hrvqvae.config.PRESETS``): ``cpu`` (default) and ``gpu``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import jax

from .. import checkpoint as ckpt
from ..loop import check_resume_config
from .config import PRESETS, check_config, config_from_dict, may_change_on_resume, override
from .train import RECONSTRUCTIONS, SAMPLES, saved_steps, train

# Each flag and the config fields it sets.
FIELDS = {
    "model": ("model.model",),
    "layers": ("model.layers",),
    "m": ("model.m",),
    "codebook_size": ("model.codebook_size",),
    "update": ("model.update",),
    "data": ("data.source",),
    "size": ("data.image_size",),
    "steps": ("train.steps",),
    "batch_size": ("train.batch_size",),
    "lr": ("train.learning_rate",),
    "prior_steps": ("train.prior_steps",),
    "seed": ("data.seed", "train.seed"),
}


def parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    p.add_argument("--model", choices=["hrvqvae", "vqvae", "vqvae2"])
    p.add_argument("--layers", type=int)
    p.add_argument("--m", type=int)
    p.add_argument("--codebook-size", type=int, help="flat baselines; default m**layers")
    p.add_argument("--update", choices=["ema", "grad"])
    p.add_argument("--no-restart", action="store_true")
    p.add_argument("--data", choices=["scenes", "patches"])
    p.add_argument("--size", type=int, help="image side (pixels)")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="train.learning_rate")
    p.add_argument("--prior-steps", type=int)
    p.add_argument("--seed", type=int, help="data.seed and train.seed")
    p.add_argument("--workdir", required=True)
    return p


def main(argv=None, prog: str = "python -m dctmodel.hrvqvae") -> int:
    p = parser(prog)
    a = p.parse_args(argv)
    resuming = bool(saved_steps(a.workdir))
    sets = {}
    for flag, names in FIELDS.items():
        if getattr(a, flag) is not None:
            sets.update(dict.fromkeys(names, getattr(a, flag)))
    if a.no_restart:
        sets["model.restart"] = False
    # Mistakes in the command are reported in one line before anything compiles or is written.
    try:
        # A resumed run starts from its own config; the flags given then change it.
        base = config_from_dict(ckpt.read_config(a.workdir, "dctmodel.hrvqvae")) if resuming else PRESETS[a.preset]
        cfg = override(base, **sets)
        check_config(cfg)
        if resuming:
            check_resume_config(ckpt.config_path(a.workdir), dataclasses.asdict(cfg), may_change_on_resume)
        os.makedirs(a.workdir, exist_ok=True)
    except (ValueError, OSError) as e:
        p.error(str(e))
    v = cfg.model
    print(
        f"{v.model}: layers={v.layers} m={v.m} update={v.update} "
        f"bits/image={v.bits_per_image(cfg.data.image_size, cfg.data.image_size):.0f} devices={jax.devices()}",
        flush=True,
    )
    try:
        _, res = train(cfg, a.workdir)
    except ckpt.UnreadableCheckpoint as e:  # every saved step damaged: nothing to resume from
        p.exit(2, f"{p.prog}: error: {e}\n")
    except KeyboardInterrupt:
        print(f"interrupted: the checkpoints in {a.workdir} are written; the same command continues", file=sys.stderr)
        return 130
    if res["step"] < cfg.train.steps:
        print(
            f"stopped at step {res['step']} of {cfg.train.steps} with a checkpoint; the same command continues",
            file=sys.stderr,
        )
        return 130
    print(
        f"final eval: mse={res['mse']:.6f} psnr={res['psnr']:.2f} dB dead per layer={[u['dead'] for u in res['usage']]}"
    )
    pictures = [RECONSTRUCTIONS] + ([SAMPLES] if cfg.train.prior_steps and v.model != "vqvae2" else [])
    print("wrote " + " and ".join(os.path.join(a.workdir, f) for f in pictures))
    return 0
