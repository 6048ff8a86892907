"""HR-VQVAE (Adiban et al., BMVC 2022) and its baselines, in JAX / Flax NNX.

The learned hierarchical representation that the project compares with the
sparse DCT (``docs/hrvqvae.md``).  One job per module:

* ``config``: ``VQConfig`` (the autoencoder) and the run's ``Config``
  (``data`` / ``model`` / ``train`` sections), presets, ``check_config``, ``override``.
* ``quantise``: the tree search (eq. 3), losses (eqs. 2, 5, 6), the
  ``TreeQuantizer`` (EMA / gradient updates, dead-word restart), code usage.
* ``model``: encoder, decoder and ``VQModel`` (``"hrvqvae"``, ``"vqvae"``, ``"vqvae2"``).
* ``prior``: the PixelCNN prior over the codes, sampling to images.
* ``data``: the images (generated scenes or photo crops).
* ``train``: steps, evaluation, checkpoints (``dctmodel.checkpoint``), the resumable loop.
* ``cli``: ``python -m dctmodel.hrvqvae`` (also ``python -m dctmodel.hrvqvae_train``).

    from dctmodel.hrvqvae import VQConfig, VQModel
    from dctmodel.hrvqvae.train import train
"""

from .config import PRESETS, Config, DataConfig, TrainConfig, VQConfig, check_config, config_from_dict, override
from .data import load_images, patch_images, scene_images
from .model import Decoder, Encoder, ResBlock, VQModel, psnr, usage_summary
from .prior import (
    MaskedConv,
    PixelCNN,
    PriorConfig,
    causal_mask,
    fit_prior,
    nll,
    prior_optimizer,
    sample_codes,
    sample_images,
)
from .quantise import (
    Codebook,
    TreeCodes,
    TreeQuantizer,
    Usage,
    code_usage,
    combined_codebook,
    ema_codebook,
    flat_quantize,
    leaf_index,
    restart_choice,
    split_leaf,
    tree_lookup,
    tree_quantize,
    vq_losses,
)

__all__ = [
    "PRESETS",
    "Config",
    "DataConfig",
    "TrainConfig",
    "VQConfig",
    "check_config",
    "config_from_dict",
    "override",
    "load_images",
    "patch_images",
    "scene_images",
    "Decoder",
    "Encoder",
    "ResBlock",
    "VQModel",
    "psnr",
    "usage_summary",
    "MaskedConv",
    "PixelCNN",
    "PriorConfig",
    "causal_mask",
    "fit_prior",
    "nll",
    "prior_optimizer",
    "sample_codes",
    "sample_images",
    "Codebook",
    "TreeCodes",
    "TreeQuantizer",
    "Usage",
    "code_usage",
    "combined_codebook",
    "ema_codebook",
    "flat_quantize",
    "leaf_index",
    "restart_choice",
    "split_leaf",
    "tree_lookup",
    "tree_quantize",
    "vq_losses",
]
