"""Configuration of the DCTransformer: plain frozen dataclasses and named presets.

The seven paper presets reproduce every column of Table 3 of Nash et al. (2021)
with its exact numbers (``paper_params`` and ``paper_tpu_cores`` are kept as
reference figures, they do not drive anything).  ``tiny`` and ``small`` train
on a 2-core laptop CPU on the built-in generated scenes.

Use ``get_config("tiny")`` and ``dataclasses.replace`` / :func:`override` to
change fields; ``Config`` is hashable so it can key caches of compiled steps.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Optional, Tuple

from .config_base import check_types, from_dict, has_type, requirement
from .config_base import override as override  # re-exported: dctmodel.config.override is public

LayerSpec = Tuple[Tuple[int, int], ...]


def spec(*blocks: Tuple[int, int]) -> LayerSpec:
    """A PAR layer spec: ``((n_attention, n_mlp), ...)``, one tuple per block."""
    return tuple((int(a), int(m)) for a, m in blocks)


@dataclass(frozen=True)
class DataConfig:
    """Where images come from and how they become tokens (SPEC sections 2-6)."""

    source: str = "scenes"          # "scenes" (built-in generator), "folder" or "dataset"
    folder: Optional[str] = None    # source="folder": a directory of images; "dataset": the
                                    # output directory of `dctsparse encode-dataset` (dctsparse.Dataset)
    image_size: int = 32            # long side in pixels; folder images are resized to it
    block_size: int = 8
    quality: int = 75
    subsampling: str = "4:2:0"
    order: str = "frequency"        # "frequency" or "luma_first" (colorisation)
    clip: int = 64                  # |value| <= clip; value vocabulary is 2*clip
    grey: bool = False              # greyscale images (P = 1)
    num_train: int = 10_000         # scenes: number of distinct training images
    num_eval: int = 64              # held-out images for bpd evaluation
    seed: int = 0                   # scenes: dataset seed (train and eval are disjoint)
    max_objects: int = 4            # scenes: objects per image, 1..max_objects

    @property
    def planes(self) -> int:
        return 1 if self.grey else 3

    @property
    def grid(self) -> int:
        """Luma block-grid side ``Hb = Wb`` of the largest (square) image."""
        mult = 2 * self.block_size if self.subsampling == "4:2:0" else self.block_size
        return math.ceil(self.image_size / mult) * mult // self.block_size

    @property
    def num_channels(self) -> int:
        """DCT channels ``P*B*B``; the stop token's channel id equals this."""
        return self.planes * self.block_size ** 2


@dataclass(frozen=True)
class ModelConfig:
    """Architecture (appendix B, Table 3)."""

    d_model: int = 64
    num_heads: int = 4
    head_dim: Optional[int] = None  # None: d_model // num_heads (Table 3 has 896 units / 18 heads)
    mlp_ratio: int = 4
    encoder_spec: LayerSpec = spec((1, 2))
    channel_spec: LayerSpec = spec((1, 2))
    position_spec: LayerSpec = spec((1, 2))
    value_spec: LayerSpec = spec((1, 2))
    downsample_kernel: int = 1      # strided conv over the DCT image; 1/1 = no downsampling
    downsample_stride: int = 1
    dropout: float = 0.0
    num_classes: int = 0            # >0: class-conditional (label embedding)
    chunk_size: int = 32            # target chunk C
    overlap: int = 16               # tokens before the chunk that are fed to the decoders, O
    structure_masks: bool = True    # mask impossible tokens' logits (see masks.py)
    value_position: bool = False    # add the next position's embedding to the value decoder's input
    position_pointer: bool = False  # position logits also score every block by its encoder cell (model.py)

    @property
    def heads_dim(self) -> int:
        return self.head_dim if self.head_dim else self.d_model // self.num_heads


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, chunk selection and the run loop (appendix C)."""

    batch_size: int = 16
    micro_batch: int = 0            # >0: the step runs the batch in slices of this many examples and sums
                                    # their gradients (same update; on a CPU a slice's activations stay in
                                    # cache, 1.4x faster for tiny); 0: the whole batch at once
    learning_rate: float = 3e-3
    warmup_steps: int = 1000
    total_tokens: float = 1e6       # token budget: steps = total_tokens / (batch_size * chunk_size)
    min_lr_ratio: float = 0.0       # cosine decays to learning_rate * min_lr_ratio
    adam_b1: float = 0.9
    adam_b2: float = 0.999
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    bf16: bool = False              # bf16 activations/matmuls, f32 parameters and logits
    chunk_policy: str = "power"     # "power" (l^-power floored at pmin) or "uniform"
    chunk_power: float = 3.0
    chunk_pmin: float = 0.1
    target: str = "all"             # "all" chunks, or "chroma": only chunks of the colour part of a
                                    # luma_first list, starting at its first chroma token (colorisation, 4.3)
    length_filter_lmax: Optional[int] = None  # None: no sequence-length bias filter
    model_axis: int = 1             # size of the "model" (FSDP) mesh axis; clipped to the device count
    seed: int = 0
    log_every: int = 10
    eval_every: int = 0             # 0: only at the end
    eval_images: int = 16
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    prefetch: int = 4               # batches prepared ahead by the input thread


@dataclass(frozen=True)
class Config:
    name: str = "tiny"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    paper_params: Optional[float] = None     # Table 3 "Parameters" (reference only)
    paper_tpu_cores: Optional[int] = None    # Table 3 "TPUv3 cores" (reference only)

    # Vocabularies (section 6 of SPEC): channel P*B*B + 1 (stop), position Hb*Wb, value 2*clip.
    @property
    def channel_vocab(self) -> int:
        return self.data.num_channels + 1

    @property
    def position_vocab(self) -> int:
        return self.data.grid ** 2

    @property
    def value_vocab(self) -> int:
        return 2 * self.data.clip

    @property
    def steps(self) -> int:
        return max(1, int(self.train.total_tokens // (self.train.batch_size * self.model.chunk_size)))


def check_config(cfg: Config) -> None:
    """Raise ValueError naming the first field of ``cfg`` with a wrong type or
    a value out of range (such values otherwise fail deep inside a jitted
    step, or train something else than asked)."""
    check_types(cfg, skip=("data.order",), named={"LayerSpec": _is_layer_spec})
    d, m, t = cfg.data, cfg.model, cfg.train

    need = requirement(cfg)
    need(d.source in ("scenes", "folder", "dataset"), "data.source", "'scenes', 'folder' or 'dataset'")
    need(d.image_size >= 1, "data.image_size", ">= 1")
    need(2 <= d.block_size <= 64, "data.block_size", "in 2..64 (the codec's range)")
    need(1 <= d.quality <= 100, "data.quality", "in 1..100")
    need(d.subsampling in ("4:2:0", "4:4:4"), "data.subsampling", "'4:2:0' or '4:4:4'")
    need(d.clip >= 1, "data.clip", ">= 1")
    need(d.num_train >= 1, "data.num_train", ">= 1")
    need(d.num_eval >= 1, "data.num_eval", ">= 1")
    need(d.max_objects >= 1, "data.max_objects", ">= 1")
    n = d.planes * d.block_size ** 2
    need(d.order in ("frequency", "luma_first") if isinstance(d.order, str) else
         isinstance(d.order, (tuple, list)) and all(has_type(c, "int") for c in d.order)
         and sorted(d.order) == list(range(n)),
         "data.order", f"'frequency', 'luma_first' or a permutation of the {n} channel ids")
    need(m.d_model >= 1, "model.d_model", ">= 1")
    need(m.num_heads >= 1, "model.num_heads", ">= 1")
    need(m.head_dim is not None or m.d_model % m.num_heads == 0, "model.num_heads",
         f"a divisor of model.d_model={m.d_model} (or set model.head_dim)")
    need(m.head_dim is None or m.head_dim >= 1, "model.head_dim", "None or >= 1")
    need(m.mlp_ratio >= 1, "model.mlp_ratio", ">= 1")
    for name in ("encoder_spec", "channel_spec", "position_spec", "value_spec"):
        need(len(getattr(m, name)) >= 1, f"model.{name}", "one (attention, mlp) pair or more")
    need(m.downsample_stride >= 1, "model.downsample_stride", ">= 1")
    need(m.downsample_kernel >= m.downsample_stride, "model.downsample_kernel",
         f">= model.downsample_stride={m.downsample_stride} (every DCT cell must reach the encoder)")
    need(0.0 <= m.dropout < 1.0, "model.dropout", "in [0, 1)")
    need(m.num_classes >= 0, "model.num_classes", ">= 0")
    need(m.chunk_size >= 1, "model.chunk_size", ">= 1")
    need(m.overlap >= 0, "model.overlap", ">= 0")
    need(t.batch_size >= 1, "train.batch_size", ">= 1")
    need(t.micro_batch == 0 or (t.micro_batch >= 1 and t.batch_size % t.micro_batch == 0), "train.micro_batch",
         f"0 (whole batch) or a divisor of train.batch_size={t.batch_size}")
    need(t.learning_rate > 0, "train.learning_rate", "> 0")
    need(t.warmup_steps >= 0, "train.warmup_steps", ">= 0")
    need(t.total_tokens > 0, "train.total_tokens", "> 0")
    need(0.0 <= t.min_lr_ratio <= 1.0, "train.min_lr_ratio", "in [0, 1]")
    need(0.0 <= t.adam_b1 < 1.0, "train.adam_b1", "in [0, 1)")
    need(0.0 <= t.adam_b2 < 1.0, "train.adam_b2", "in [0, 1)")
    need(t.weight_decay >= 0, "train.weight_decay", ">= 0")
    need(t.grad_clip >= 0, "train.grad_clip", ">= 0 (0: no clipping)")
    need(t.chunk_policy in ("power", "uniform"), "train.chunk_policy", "'power' or 'uniform'")
    need(t.chunk_power >= 0, "train.chunk_power", ">= 0")
    need(0.0 <= t.chunk_pmin <= 1.0, "train.chunk_pmin", "in [0, 1]")
    need(t.target in ("all", "chroma"), "train.target", "'all' or 'chroma'")
    need(t.target == "all" or (d.order == "luma_first" and d.planes == 3), "train.target",
         "'all' unless data.order='luma_first' on colour images ('chroma' trains colorisation)")
    need(t.length_filter_lmax is None or t.length_filter_lmax >= 1, "train.length_filter_lmax", "None or >= 1")
    need(t.model_axis >= 1, "train.model_axis", ">= 1")
    need(t.log_every >= 1, "train.log_every", ">= 1")
    need(t.eval_every >= 0, "train.eval_every", ">= 0 (0: only at the end)")
    need(t.eval_images >= 1, "train.eval_images", ">= 1")
    need(t.checkpoint_every >= 0, "train.checkpoint_every", ">= 0 (0: only at the end)")
    need(t.keep_checkpoints >= 1, "train.keep_checkpoints", ">= 1")
    need(t.prefetch >= 1, "train.prefetch", ">= 1")


def _is_layer_spec(v) -> bool:
    return isinstance(v, tuple) and all(
        isinstance(b, tuple) and len(b) == 2 and all(has_type(x, "int") and x >= 0 for x in b) for b in v)


# --------------------------------------------------------------------------
# Table 3 presets.  Columns: LSUN (all), FFHQ, ImageNet, OpenImagesV4,
# Plant leaves, Retinopathy, CLEVR.  Every number below is the table's.
# --------------------------------------------------------------------------

_ENC = spec(*[(1, 2)] * 4)
_DEC_3_4 = spec(*([(1, 2)] * 3 + [(1, 4)]))
_DEC_3_3 = spec(*([(1, 2)] * 3 + [(1, 3)]))
_VAL_5_7 = spec(*([(1, 2)] * 5 + [(1, 7)]))
_VAL_6_7 = spec(*([(1, 2)] * 6 + [(1, 7)]))
_VAL_MIX = spec((1, 2), (1, 2), (1, 3), (1, 3), (1, 7))


def _paper(name, *, res, block, quality, clip, hidden, heads, channel, position, value, kernel, stride,
           batch, dropout, tokens, params, cores, num_classes=0, order="frequency"):
    return Config(
        name=name,
        data=DataConfig(source="folder", image_size=res, block_size=block, quality=quality, clip=clip, order=order),
        model=ModelConfig(
            d_model=hidden, num_heads=heads, head_dim=64, mlp_ratio=4,
            encoder_spec=_ENC, channel_spec=channel, position_spec=position, value_spec=value,
            downsample_kernel=kernel, downsample_stride=stride, dropout=dropout,
            num_classes=num_classes, chunk_size=896, overlap=128, structure_masks=False,
        ),
        train=TrainConfig(
            batch_size=batch, learning_rate=5e-4, warmup_steps=1000, total_tokens=tokens,
            bf16=True, model_axis=8, checkpoint_every=5000, eval_every=5000, log_every=100,
            length_filter_lmax=None,
        ),
        paper_params=params, paper_tpu_cores=cores,
    )


PRESETS = {
    "lsun": _paper("lsun", res=384, block=8, quality=75, clip=1200, hidden=896, heads=14,
                   channel=_DEC_3_4, position=_DEC_3_4, value=_VAL_5_7, kernel=4, stride=2,
                   batch=512, dropout=0.1, tokens=300e9, params=448e6, cores=64),
    "ffhq": _paper("ffhq", res=1024, block=16, quality=35, clip=3200, hidden=896, heads=14,
                   channel=_DEC_3_4, position=_DEC_3_4, value=_VAL_6_7, kernel=6, stride=3,
                   batch=448, dropout=0.1, tokens=250e9, params=473e6, cores=64),
    "imagenet": _paper("imagenet", res=384, block=8, quality=75, clip=1200, hidden=1152, heads=14,
                       channel=_DEC_3_4, position=_DEC_3_4, value=_VAL_6_7, kernel=8, stride=4,
                       batch=512, dropout=0.01, tokens=1000e9, params=738e6, cores=128, num_classes=1000),
    # Colorisation (section 4.3): luminance first, then the colour channels.
    "openimages": _paper("openimages", res=640, block=8, quality=50, clip=1200, hidden=896, heads=18,
                         channel=_DEC_3_4, position=_DEC_3_4, value=_VAL_6_7, kernel=6, stride=3,
                         batch=512, dropout=0.01, tokens=1000e9, params=533e6, cores=64, order="luma_first"),
    "plant_leaves": _paper("plant_leaves", res=2048, block=32, quality=50, clip=4000, hidden=768, heads=12,
                           channel=_DEC_3_3, position=_DEC_3_4, value=_VAL_MIX, kernel=4, stride=2,
                           batch=256, dropout=0.4, tokens=100e9, params=325e6, cores=64),
    "retinopathy": _paper("retinopathy", res=1024, block=16, quality=75, clip=3200, hidden=768, heads=12,
                          channel=_DEC_3_3, position=_DEC_3_4, value=_VAL_MIX, kernel=4, stride=2,
                          batch=512, dropout=0.1, tokens=200e9, params=318e6, cores=64),
    "clevr": _paper("clevr", res=480, block=8, quality=90, clip=1200, hidden=896, heads=14,
                    channel=_DEC_3_4, position=_DEC_3_4, value=_VAL_6_7, kernel=6, stride=3,
                    batch=128, dropout=0.5, tokens=50e9, params=483e6, cores=32),
}

# The paper's CLEVR column, but on the built-in generated scenes (no download).
PRESETS["clevr_scenes"] = dataclasses.replace(
    PRESETS["clevr"], name="clevr_scenes",
    data=dataclasses.replace(PRESETS["clevr"].data, source="scenes", num_train=1_000_000),
)

# Laptop presets on generated scenes: tiny trains in ~3 minutes, small in ~1-2 hours on 2 CPU cores.
PRESETS["tiny"] = Config(
    name="tiny",
    data=DataConfig(source="scenes", image_size=32, block_size=4, quality=50, clip=64, num_train=2000),
    model=ModelConfig(
        d_model=64, num_heads=4, encoder_spec=spec((1, 2)), channel_spec=spec((1, 2)),
        position_spec=spec((1, 2)), value_spec=spec((1, 2), (1, 2)),
        downsample_kernel=1, downsample_stride=1, chunk_size=64, overlap=16, dropout=0.0,
        position_pointer=True,  # bpd 0.146 -> 0.139, FID 272 -> 260 at 600 steps
    ),
    # Uniform chunk selection: a tiny scene has 2-4 chunks and the l^-3 policy gave chunk 1 (the
    # chroma DC and first luma AC, most of the bits) 11% of the steps; uniform lowered held-out
    # bpd 0.161 -> 0.146 and FID 287 -> 272 at 600 steps (docs/dctmodel.md, "Sample quality").
    # 1200 steps: the faster step (train.micro_batch) buys twice the old 600 in the same minutes.
    train=TrainConfig(batch_size=16, micro_batch=4, learning_rate=2e-3, warmup_steps=50, total_tokens=16 * 64 * 1200,
                      checkpoint_every=200, log_every=20, eval_images=16, length_filter_lmax=200,
                      chunk_policy="uniform"),
)
PRESETS["small"] = Config(
    name="small",
    data=DataConfig(source="scenes", image_size=64, block_size=8, quality=75, clip=256, num_train=20000),
    model=ModelConfig(
        d_model=128, num_heads=4, encoder_spec=spec((1, 2), (1, 2)), channel_spec=spec((1, 2), (1, 2)),
        position_spec=spec((1, 2), (1, 2)), value_spec=spec((1, 2), (1, 2), (1, 4)),
        downsample_kernel=2, downsample_stride=2, chunk_size=128, overlap=32, dropout=0.1,
    ),
    train=TrainConfig(batch_size=16, micro_batch=4, learning_rate=1e-3, warmup_steps=200, total_tokens=16 * 128 * 2000,
                      checkpoint_every=250, log_every=25, eval_every=500, eval_images=32,
                      length_filter_lmax=900),
)
# Test-sized: 16 px scenes, ~50 tokens each, compiles and steps in well under a second.
PRESETS["micro"] = Config(
    name="micro",
    data=DataConfig(source="scenes", image_size=16, block_size=4, quality=50, clip=32, num_train=64,
                    num_eval=8, max_objects=2),
    model=ModelConfig(
        d_model=32, num_heads=2, mlp_ratio=2, encoder_spec=spec((1, 1)), channel_spec=spec((1, 1)),
        position_spec=spec((1, 1)), value_spec=spec((1, 1)), chunk_size=32, overlap=8,
    ),
    train=TrainConfig(batch_size=8, learning_rate=3e-3, warmup_steps=10, total_tokens=8 * 32 * 100,
                      checkpoint_every=0, log_every=10, eval_images=8, prefetch=2),
)


def get_config(name: str) -> Config:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown config {name!r}; presets: {sorted(PRESETS)}") from None


def config_from_dict(d: dict) -> Config:
    """Inverse of ``dataclasses.asdict(cfg)`` (e.g. a workdir's config.json)."""
    return from_dict(Config, d)
