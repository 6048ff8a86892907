"""Chunked sampling (section 3.3) with key/value caches, super-resolution and colorisation (4.3).

    python -m dctmodel.sample --workdir runs/tiny --num 16 --out grid.png
    python -m dctmodel.sample --workdir runs/tiny --upsample low.png      # 8x (B=8) super-resolution
    python -m dctmodel.sample --workdir runs/col --colorize grey.png       # luma_first model

The CLI saves each finished batch of samples in ``OUT_tokens/``; after Ctrl-C
the same command draws only what is missing (:func:`sample_to_folder`).

For each chunk the current DCT image is encoded once, the cross-attention
keys/values of the three decoders are computed once, and the ``O`` overlap
tokens fill the self-attention caches in one parallel pass.  Then up to
``C`` tokens are generated, each as channel -> position -> value through the
three decoders one step at a time, reusing the caches (:class:`CachedDecoder`);
each new token is scattered into the DCT image, which the next chunk encodes.
Everything is one ``jax.lax.while_loop`` (chunks) around another (steps)
under ``jit``; each sample in the batch stops on its own stop token.

:class:`RecomputeDecoder` runs the same loop but recomputes the decoders over
the whole window for every variable (what the public PyTorch implementation
does); it is the reference for the speed comparison
(``benchmarks/model_sample.py``).  :func:`sample_tokens_reference` is the
original host-side sampler, kept as an independent reference.

The structure masks (``masks.py``) are always applied, plus an optional
``min_rank`` per sample (channels of a lower rank in the order are
forbidden): a sample can never emit a token that breaks the coordinate
list, so every sample decodes with ``dctsparse.decode``, and a conditioning
prefix (DC channels for super-resolution, luma for colorisation) is kept
exactly.

Files: ``draw`` (settings, top-k/top-p, one draw), ``decoders`` (the
``Decoder`` protocol, cached and recompute decoders), ``loop`` (the jitted
chunk/step loops), ``sampler`` (``sample_tokens`` and its checks),
``conditioning`` (super-resolution and colorisation prefixes), ``reference``
(host-side reference sampler), ``pictures``, ``folder`` (resumable
``sample_to_folder``), ``cli`` (``python -m dctmodel.sample``).  Parameters
come from ``dctmodel.checkpoint.load_params``; nothing here imports training code.
"""

from ..checkpoint import load_params
from .cli import main
from .conditioning import colorize_prefix, upsample_prefix
from .decoders import CachedDecoder, Decoder, RecomputeDecoder
from .draw import SampleSettings, filter_logits
from .folder import sample_to_folder
from .loop import Sampled, sample_loop
from .pictures import decode_tokens, image_grid, location_heatmap, progressive_strip
from .reference import sample_tokens_reference
from .sampler import sample_tokens

__all__ = [
    "CachedDecoder",
    "Decoder",
    "RecomputeDecoder",
    "SampleSettings",
    "Sampled",
    "colorize_prefix",
    "decode_tokens",
    "filter_logits",
    "image_grid",
    "load_params",
    "location_heatmap",
    "main",
    "progressive_strip",
    "sample_loop",
    "sample_to_folder",
    "sample_tokens",
    "sample_tokens_reference",
    "upsample_prefix",
]
