"""Configuration of the DCTransformer: plain frozen dataclasses and named presets.

The seven paper presets reproduce every column of Table 3 of Nash et al. (2021)
with its exact numbers (``paper_params`` and ``paper_tpu_cores`` are kept as
reference figures, they do not drive anything).  ``tiny`` and ``small`` train
on a 2-core laptop CPU on the built-in generated scenes.

Use ``get_config("tiny")`` and ``dataclasses.replace`` / :func:`override` to
change fields; ``Config`` is hashable so it can key caches of compiled steps.
"""

from __future__ import annotations

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

    source: str = "scenes"  # "scenes" (built-in generator), "folder" or "dataset"
    # source="folder": a directory of images; "dataset": the output directory of
    # `dctsparse encode-dataset` (dctsparse.Dataset)
    folder: Optional[str] = None
    image_size: int = 32  # long side in pixels; folder images are resized to it
    block_size: int = 8
    quality: int = 75
    subsampling: str = "4:2:0"
    order: str = "frequency"  # "frequency" or "luma_first" (colorisation)
    clip: int = 64  # |value| <= clip; value vocabulary is 2*clip
    grey: bool = False  # greyscale images (P = 1)
    num_train: int = 10_000  # scenes: number of distinct training images
    num_eval: int = 64  # held-out images for bpd evaluation
    seed: int = 0  # scenes: dataset seed (train and eval are disjoint)
    max_objects: int = 4  # scenes: objects per image, 1..max_objects
    object_scale: float = 1.0  # scenes: every object's size times this (sizes 0.09-0.2 of the width at 1)

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
        return self.planes * self.block_size**2


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
    downsample_kernel: int = 1  # strided conv over the DCT image; 1/1 = no downsampling
    downsample_stride: int = 1
    dropout: float = 0.0
    num_classes: int = 0  # >0: class-conditional (label embedding)
    chunk_size: int = 32  # target chunk C
    overlap: int = 16  # tokens before the chunk that are fed to the decoders, O
    structure_masks: bool = True  # mask impossible tokens' logits (see masks.py)
    value_position: bool = False  # add the next position's embedding to the value decoder's input
    position_pointer: bool = False  # position logits also score every block by its encoder cell (model.py)
    # the value decoder also reads the target block's 3x3 neighbourhood (in its plane's block grid)
    # of the dense image of every token before the step, the chunk's own included (model.py)
    window_context: bool = False
    # the position logits also point at the blocks of the chunk's earlier tokens and their 3x3
    # neighbours (in each token's plane grid), scored by the token's channel and value (model.py)
    window_pointer: bool = False

    @property
    def heads_dim(self) -> int:
        return self.head_dim if self.head_dim else self.d_model // self.num_heads


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, chunk selection and the run loop (appendix C)."""

    batch_size: int = 16
    # >0: the step runs the batch in slices of this many examples and sums their gradients (same
    # update; on a CPU a slice's activations stay in cache, 1.4x faster for tiny at chunk 64, but
    # 1.7x slower at chunk 16, where each slice's products are too small); 0: the whole batch
    micro_batch: int = 0
    # On a CPU, the JAX devices `python -m dctmodel.train` makes of the cores for data parallelism
    # (its --cpu-devices wins): 0 one per core (the largest divisor of batch_size not above them),
    # n > 0 that many.  Two devices pay when each one's share of the step is large enough.
    cpu_devices: int = 0
    learning_rate: float = 3e-3
    warmup_steps: int = 1000
    total_tokens: float = 1e6  # token budget: steps = total_tokens / (batch_size * chunk_size)
    min_lr_ratio: float = 0.0  # cosine decays to learning_rate * min_lr_ratio
    adam_b1: float = 0.9
    adam_b2: float = 0.999
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    # Clipping and Adam over all parameters as one vector (not with model_axis > 1): pays for many
    # small arrays (tiny), costs copies for large ones (small); figures in train/optim.flat_state
    flat_optimizer: bool = False
    bf16: bool = False  # bf16 activations/matmuls, f32 parameters and logits
    chunk_policy: str = "power"  # "power" (l^-power floored at pmin) or "uniform"
    chunk_power: float = 3.0
    chunk_pmin: float = 0.1
    # "all" chunks, or "chroma": only chunks of the colour part of a luma_first list, starting at
    # its first chroma token (colorisation, 4.3)
    target: str = "all"
    length_filter_lmax: Optional[int] = None  # None: no sequence-length bias filter
    model_axis: int = 1  # size of the "model" (FSDP) mesh axis; clipped to the device count
    seed: int = 0
    log_every: int = 10
    eval_every: int = 0  # 0: only at the end
    eval_images: int = 16
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    prefetch: int = 4  # batches prepared ahead by the input pipeline
    # Input pipeline (data.py): worker processes that build batches (0: one thread in the
    # trainer's process); the token cache's bound per process in MiB; the smallest padded
    # length of the chunks' prefixes (powers of two above it: one compilation each)
    workers: int = 0
    cache_mb: float = 512.0
    prefix_bucket: int = 256


@dataclass(frozen=True)
class Config:
    name: str = "tiny"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    paper_params: Optional[float] = None  # Table 3 "Parameters" (reference only)
    paper_tpu_cores: Optional[int] = None  # Table 3 "TPUv3 cores" (reference only)

    # Vocabularies (section 6 of SPEC): channel P*B*B + 1 (stop), position Hb*Wb, value 2*clip.
    @property
    def channel_vocab(self) -> int:
        return self.data.num_channels + 1

    @property
    def position_vocab(self) -> int:
        return self.data.grid**2

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
    need(0.0 < d.object_scale <= 5.0, "data.object_scale", "in (0, 5]")
    n = d.planes * d.block_size**2
    need(
        d.order in ("frequency", "luma_first")
        if isinstance(d.order, str)
        else isinstance(d.order, (tuple, list))
        and all(has_type(c, "int") for c in d.order)
        and sorted(d.order) == list(range(n)),
        "data.order",
        f"'frequency', 'luma_first' or a permutation of the {n} channel ids",
    )
    need(m.d_model >= 1, "model.d_model", ">= 1")
    need(m.num_heads >= 1, "model.num_heads", ">= 1")
    need(
        m.head_dim is not None or m.d_model % m.num_heads == 0,
        "model.num_heads",
        f"a divisor of model.d_model={m.d_model} (or set model.head_dim)",
    )
    need(m.head_dim is None or m.head_dim >= 1, "model.head_dim", "None or >= 1")
    need(m.mlp_ratio >= 1, "model.mlp_ratio", ">= 1")
    for name in ("encoder_spec", "channel_spec", "position_spec", "value_spec"):
        need(len(getattr(m, name)) >= 1, f"model.{name}", "one (attention, mlp) pair or more")
    need(m.downsample_stride >= 1, "model.downsample_stride", ">= 1")
    need(
        m.downsample_kernel >= m.downsample_stride,
        "model.downsample_kernel",
        f">= model.downsample_stride={m.downsample_stride} (every DCT cell must reach the encoder)",
    )
    need(0.0 <= m.dropout < 1.0, "model.dropout", "in [0, 1)")
    need(m.num_classes >= 0, "model.num_classes", ">= 0")
    need(m.chunk_size >= 1, "model.chunk_size", ">= 1")
    need(m.overlap >= 0, "model.overlap", ">= 0")
    need(t.batch_size >= 1, "train.batch_size", ">= 1")
    need(
        t.cpu_devices >= 0 and (t.cpu_devices == 0 or t.batch_size % t.cpu_devices == 0),
        "train.cpu_devices",
        f"0 (one per core) or a divisor of train.batch_size={t.batch_size}",
    )
    need(
        t.micro_batch == 0 or (t.micro_batch >= 1 and t.batch_size % t.micro_batch == 0),
        "train.micro_batch",
        f"0 (whole batch) or a divisor of train.batch_size={t.batch_size}",
    )
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
    need(
        t.target == "all" or (d.order == "luma_first" and d.planes == 3),
        "train.target",
        "'all' unless data.order='luma_first' on colour images ('chroma' trains colorisation)",
    )
    need(t.length_filter_lmax is None or t.length_filter_lmax >= 1, "train.length_filter_lmax", "None or >= 1")
    need(t.model_axis >= 1, "train.model_axis", ">= 1")
    need(t.log_every >= 1, "train.log_every", ">= 1")
    need(t.eval_every >= 0, "train.eval_every", ">= 0 (0: only at the end)")
    need(t.eval_images >= 1, "train.eval_images", ">= 1")
    need(t.checkpoint_every >= 0, "train.checkpoint_every", ">= 0 (0: only at the end)")
    need(t.keep_checkpoints >= 1, "train.keep_checkpoints", ">= 1")
    need(t.prefetch >= 1, "train.prefetch", ">= 1")
    need(t.workers >= 0, "train.workers", ">= 0 (0: a thread of the training process)")
    need(t.cache_mb >= 0, "train.cache_mb", ">= 0 (0: no token cache)")
    need(t.prefix_bucket >= 1, "train.prefix_bucket", ">= 1")


def _is_layer_spec(v) -> bool:
    return isinstance(v, tuple) and all(
        isinstance(b, tuple) and len(b) == 2 and all(has_type(x, "int") and x >= 0 for x in b) for b in v
    )


def get_config(name: str) -> Config:
    """The preset ``name`` (``PRESETS``, defined in ``presets.py``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown config {name!r}; presets: {sorted(PRESETS)}") from None


def config_from_dict(d: dict) -> Config:
    """Inverse of ``dataclasses.asdict(cfg)`` (e.g. a workdir's config.json)."""
    return from_dict(Config, d)


# The presets are data built from the classes above; they live in their own module so that
# this one stays the schema.  Imported last: presets.py imports these classes.
from .presets import PRESETS  # noqa: E402
