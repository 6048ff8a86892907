"""Configuration of an HR-VQVAE run: frozen dataclasses, presets, checks.

Laid out as the DCTransformer's (``dctmodel.config``): a ``Config`` of three
sections, ``data`` (the images), ``model`` (the autoencoder, ``VQConfig``)
and ``train`` (optimisation and the run loop), with the same field names
where they mean the same (``image_size``, ``num_train``, ``num_eval``,
``seed``, ``batch_size``, ``learning_rate``, ``log_every``, ``eval_every``,
``checkpoint_every``, ``keep_checkpoints``).  Change fields with
:func:`override` (``override(cfg, **{"model.m": 16, "train.steps": 50})``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Tuple

from ..config_base import check_types, from_dict, override, requirement
from .data import PATCH_MAX

__all__ = [
    "VQConfig",
    "DataConfig",
    "TrainConfig",
    "Config",
    "PRESETS",
    "check_config",
    "override",
    "config_from_dict",
    "may_change_on_resume",
]


@dataclass(frozen=True)
class VQConfig:
    """A VQ autoencoder.  ``layers``/``m`` give the tree (HR-VQVAE) or, for the
    flat baselines, a codebook of ``codebook_size or m**layers`` words."""

    model: str = "hrvqvae"  # "hrvqvae" | "vqvae" | "vqvae2"
    layers: int = 2  # n
    m: int = 8  # words per codebook
    codebook_size: int = 0  # flat baselines; 0 -> m**layers (same leaves, same bits)
    dim: int = 16  # D, latent channels
    channels: int = 32  # conv width
    downsample: int = 2  # stride-2 convs: latent side = image side / 2**downsample
    res_blocks: int = 1
    beta0: float = 0.25  # eq. 5, combined commitment
    betas: Tuple[float, ...] = (0.25,)  # eq. 6 per layer; the last value repeats
    update: str = "ema"  # "ema" | "grad"
    decay: float = 0.99  # EMA decay (also for the usage counts in "grad" mode)
    eps: float = 1e-5
    restart_after: int = 20  # a word not picked for this many steps is restarted
    restart: bool = True

    def beta(self, i: int) -> float:
        return float(self.betas[min(i, len(self.betas) - 1)])

    @property
    def flat_size(self) -> int:
        return int(self.codebook_size or self.m**self.layers)

    def bits_per_position(self) -> float:
        """Bits of one latent position's code (fixed-length)."""
        if self.model == "hrvqvae":
            return self.layers * math.log2(self.m)
        return math.log2(self.flat_size)

    def bits_per_image(self, height: int, width: int) -> float:
        f = 2**self.downsample
        h, w = height // f, width // f
        bits = h * w * self.bits_per_position()
        if self.model == "vqvae2":
            bits += (h // 2) * (w // 2) * math.log2(self.flat_size)
        return bits


@dataclass(frozen=True)
class DataConfig:
    """The images (``hrvqvae.data``): square, float32 in [0, 1]."""

    source: str = "scenes"  # "scenes" (dctmodel.scenes) or "patches" (crops of skimage's photos)
    image_size: int = 32  # side in pixels
    num_train: int = 1024  # training images
    num_eval: int = 128  # held-out images (other scene seeds / crop seeds)
    seed: int = 0  # which images (train and eval are disjoint)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and the run loop; ``prior_steps`` > 0 then fits the PixelCNN prior."""

    batch_size: int = 32
    steps: int = 300
    learning_rate: float = 2e-3
    seed: int = 0  # initial weights, batches and restart keys
    log_every: int = 25
    eval_every: int = 100  # 0: only at the end
    checkpoint_every: int = 100  # 0: only at the end (and on Ctrl-C); also the prior's
    keep_checkpoints: int = 2
    prior_steps: int = 0


@dataclass(frozen=True)
class Config:
    name: str = "cpu"
    data: DataConfig = field(default_factory=DataConfig)
    model: VQConfig = field(default_factory=VQConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


PRESETS = {
    # 32x32 scenes, latent 8x8, D=16, 32 channels, batch 32: about 10-20 steps/s on 2 CPU cores.
    "cpu": Config(),
    # 64x64 scenes, latent 16x16: the paper's scale for 16x16 latents (its MNIST/CIFAR settings),
    # one H100 in well under an hour.
    "gpu": Config(
        name="gpu",
        data=DataConfig(image_size=64, num_train=20000, num_eval=1000),
        model=VQConfig(dim=64, channels=128, res_blocks=2, downsample=2),
        train=TrainConfig(
            batch_size=128,
            steps=20000,
            learning_rate=5e-4,
            log_every=100,
            eval_every=1000,
            checkpoint_every=1000,
            prior_steps=5000,
        ),
    ),
}


def check_config(cfg: Config) -> None:
    """Raise ValueError naming the first field with a wrong type or a value out
    of range (they otherwise fail inside a jitted step, or train a degenerate
    model without a word)."""
    check_types(cfg)
    need = requirement(cfg)
    d, v, t = cfg.data, cfg.model, cfg.train
    need(v.model in ("hrvqvae", "vqvae", "vqvae2"), "model.model", "'hrvqvae', 'vqvae' or 'vqvae2'")
    need(v.layers >= 1, "model.layers", ">= 1")
    need(v.m >= 2, "model.m", ">= 2 (a codebook of one word carries no information)")
    need(v.codebook_size == 0 or v.codebook_size >= 2, "model.codebook_size", "0 (m**layers) or >= 2")
    for name in ("dim", "channels", "restart_after"):
        need(getattr(v, name) >= 1, f"model.{name}", ">= 1")
    for name in ("downsample", "res_blocks", "beta0"):
        need(getattr(v, name) >= 0, f"model.{name}", ">= 0")
    need(len(v.betas) >= 1 and min(v.betas) >= 0, "model.betas", "one value >= 0 or more")
    need(v.update in ("ema", "grad"), "model.update", "'ema' or 'grad'")
    need(0.0 < v.decay < 1.0, "model.decay", "in (0, 1)")
    need(d.source in ("scenes", "patches"), "data.source", "'scenes' or 'patches'")
    mult = 2 ** (v.downsample + (v.model == "vqvae2"))
    need(
        d.image_size >= mult and d.image_size % mult == 0,
        "data.image_size",
        f"a multiple of {mult} (2**model.downsample{', x2 for vqvae2' if v.model == 'vqvae2' else ''})",
    )
    need(
        d.source != "patches" or d.image_size <= PATCH_MAX,
        "data.image_size",
        f"<= {PATCH_MAX} with data.source='patches' (the shortest side of the bundled photos)",
    )
    for name in ("num_train", "num_eval"):
        need(getattr(d, name) >= 1, f"data.{name}", ">= 1")
    for name in ("batch_size", "steps", "log_every", "keep_checkpoints"):
        need(getattr(t, name) >= 1, f"train.{name}", ">= 1")
    need(t.learning_rate > 0, "train.learning_rate", "> 0")
    for name in ("eval_every", "checkpoint_every"):
        need(getattr(t, name) >= 0, f"train.{name}", ">= 0 (0: only at the end)")
    need(t.prior_steps >= 0, "train.prior_steps", ">= 0")


def may_change_on_resume(name: str) -> bool:
    """Whether a resumed run may change the field ``name`` (dotted): how long to
    train and how to report it may change; the data, the model, the batch size
    and the seed define the run, and changing them mid-run trains something else."""
    return name.split(".")[0] not in ("data", "model") and name not in ("train.batch_size", "train.seed")


def config_from_dict(d: dict) -> Config:
    """Inverse of ``dataclasses.asdict(cfg)`` (e.g. a work directory's config.json)."""
    return from_dict(Config, d)
