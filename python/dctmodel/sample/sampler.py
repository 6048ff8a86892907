"""The host API: :func:`sample_tokens` checks a request, runs the jitted sampler and returns token lists."""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

from .. import masks as M
from ..config import Config
from ..model import model_from_params
from ..tokens import channel_rank, class_to_value, dense_dct, value_to_class
from .decoders import CachedDecoder, Decoder, RecomputeDecoder
from .draw import PerVariable, SampleSettings
from .loop import sample_loop

_SAMPLERS: dict = {}


def _sampler(cfg: Config, method: str, max_tokens: int, max_chunks: int, settings: SampleSettings, early_exit: bool):
    """Jitted ``f(params, key, buf, n, dct, hw, label, min_rank)``, cached per static arguments."""
    k = (cfg, method, max_tokens, max_chunks, settings, early_exit)
    if k not in _SAMPLERS:
        tables = M.MaskTables.from_config(cfg)
        decoders: dict[str, Callable[..., Decoder]] = {"cached": CachedDecoder, "recompute": RecomputeDecoder}
        Dec = decoders[method]

        def run(params, key, buf, n, dct, hw, label, min_rank):
            dec = Dec(model_from_params(cfg, params), hw, label)
            return sample_loop(
                dec,
                key,
                buf,
                n,
                dct,
                hw,
                min_rank,
                tables=tables,
                clip=cfg.data.clip,
                overlap=cfg.model.overlap,
                chunk=cfg.model.chunk_size,
                max_tokens=max_tokens,
                max_chunks=max_chunks,
                settings=settings,
                early_exit=early_exit,
                # Chunks tile the list from where training's do: 0, or the colour part's start
                # (a target="chroma" model's prefix is the whole luma).
                origin=n if cfg.train.target == "chroma" else None,
            )

        _SAMPLERS[k] = jax.jit(run)
    return _SAMPLERS[k]


def _per_sample(x, num, what):
    if x is None or isinstance(x, (int, np.integer)) or (isinstance(x, tuple) and what == "hw"):
        return [x] * num
    x = list(x)
    if len(x) != num:
        raise ValueError(f"{what}: {len(x)} given for {num} samples")
    return x


def _check_request(cfg: Config, hws, labels: np.ndarray, ranks: np.ndarray, prefixes) -> None:
    """What the compiled sampler cannot check: grids, labels, ranks and prefixes in range.

    The sampler trusts them (JAX clamps an out-of-range gather), so a bad one
    would give samples that do not decode or silently ignore the request.
    """
    d = cfg.data
    nch, even = d.num_channels, d.subsampling == "4:2:0"
    for i, (hb, wb) in enumerate(hws):
        if not (1 <= hb <= d.grid and 1 <= wb <= d.grid) or (even and (hb % 2 or wb % 2)):
            rule = ", even (4:2:0 pads to 2B)" if even else ""
            raise ValueError(f"sample {i}: block grid hw=({hb}, {wb}) must lie in 1..{d.grid} (data.grid){rule}")
    classes = cfg.model.num_classes
    if classes == 0 and labels.any():
        raise ValueError("label given, but the model is not class-conditional (model.num_classes=0)")
    if classes and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(
            f"labels must lie in 0..{classes - 1} (model.num_classes={classes}), got {labels.min()}..{labels.max()}"
        )
    if ranks.min() < 0 or ranks.max() > nch:
        raise ValueError(f"min_rank must lie in 0..{nch}, got {ranks.min()}..{ranks.max()}")
    rank = channel_rank(d.order, d.planes, d.block_size)
    for i, (p, (hb, wb)) in enumerate(zip(prefixes, hws, strict=True)):
        if not len(p):
            continue
        ch, pos, val = p[:, 0], p[:, 1], p[:, 2]
        bad = (ch < 0) | (ch >= nch) | (pos < 0) | (pos >= hb * wb) | (val == 0) | (np.abs(val) > d.clip)
        if even and d.planes == 3:  # chroma coefficients sit at even block rows and columns
            bad |= (ch >= d.block_size**2) & (ch < nch) & (((pos // wb) % 2 == 1) | ((pos % wb) % 2 == 1))
        if bad.any():
            j = int(np.argmax(bad))
            raise ValueError(
                f"prefix {i}, token {j} {tuple(int(x) for x in p[j])} is not a coefficient of a "
                f"{hb}x{wb}-block image (channels 0..{nch - 1}, non-zero values within "
                f"+-{d.clip}; the stop token is not part of a prefix)"
            )
        key = rank[ch].astype(np.int64) * (hb * wb) + pos
        if len(key) > 1 and (np.diff(key) <= 0).any():
            j = int(np.argmax(np.diff(key) <= 0)) + 1
            raise ValueError(
                f"prefix {i}, token {j}: out of the list order {d.order!r} (or a repeated "
                f"coefficient); a prefix is the start of a coordinate list"
            )


def sample_tokens(
    cfg: Config,
    params,
    *,
    num: int | None = None,
    seed: int | jax.Array = 0,
    hw=None,
    label=0,
    max_tokens: int | None = None,
    max_chunks: int | None = None,
    temperature: PerVariable = 1.0,
    top_k: PerVariable = 0,
    top_p: PerVariable = 1.0,
    prefix=None,
    min_rank=0,
    method: str = "cached",
    early_exit: bool = True,
    return_stats: bool = False,
):
    """Sample token sequences, int32 ``(N + 1, 3)`` each ending with the stop token.

    ``num`` samples (default: ``len(prefix)`` for a list of prefixes); ``seed``
    an int or a ``jax.random.key``.  ``hw``:
    the luma block grid ``(Hb, Wb)`` (default: the config's square grid), one
    tuple or one per sample.  ``label``: class(es) for a class-conditional model.
    ``prefix``: tokens ``(n, 3)`` (no stop) to continue, one array or one per
    sample.  ``min_rank``: new tokens must have a channel of at least this rank
    in the order (super-resolution: ``planes``, colorisation: ``B*B``), one int
    or one per sample.  ``max_tokens`` caps each sequence (prefix included; a
    stop is forced there), ``max_chunks`` the number of chunks (an unfinished
    sample gets its stop token appended).  ``temperature``/``top_k``/``top_p``:
    one value or three (channel, position, value).  ``method``: "cached" or
    "recompute" (same loop, no caches; for the speed comparison).
    ``return_stats``: also return ``{"chunks", "stopped" (B,) bool}``.
    """
    d, m = cfg.data, cfg.model
    nch = d.num_channels
    if num is None:
        num = len(prefix) if isinstance(prefix, (list, tuple)) else 1
    if not isinstance(num, (int, np.integer)) or num < 1:
        raise ValueError(f"num must be a positive number of samples, got {num!r}")
    prefixes = prefix if isinstance(prefix, (list, tuple)) else [prefix] * num
    if len(prefixes) != num:
        raise ValueError(f"{len(prefixes)} prefixes for {num} samples")
    prefixes = [np.zeros((0, 3), np.int32) if p is None else np.asarray(p, np.int32).reshape(-1, 3) for p in prefixes]
    hws = [tuple(int(x) for x in h) if h is not None else (d.grid, d.grid) for h in _per_sample(hw, num, "hw")]
    labels = np.asarray(_per_sample(label, num, "label"), np.int32)
    ranks = np.asarray(_per_sample(min_rank, num, "min_rank"), np.int32)
    _check_request(cfg, hws, labels, ranks, prefixes)
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    cap = max(nch * h * w for h, w in hws)
    max_tokens = int(max_tokens or cap)
    longest = max(len(p) for p in prefixes)
    if longest > max_tokens:
        raise ValueError(f"a prefix of {longest} tokens is longer than max_tokens={max_tokens}")
    # Independent of the prefixes, so conditional and unconditional calls share one compilation.
    max_chunks = int(max_chunks or (-(-max_tokens // m.chunk_size) + 1))
    buf = np.zeros((num, max_tokens + 1, 3), np.int32)
    dct = np.zeros((num, d.grid, d.grid, nch), np.int32)
    for i, (p, (hb, wb)) in enumerate(zip(prefixes, hws, strict=True)):
        buf[i, : len(p), :2] = p[:, :2]
        buf[i, : len(p), 2] = value_to_class(p[:, 2], d.clip)
        dct[i] = dense_dct(p, len(p), hb, wb, d.grid, nch)
    settings = SampleSettings.make(temperature, top_k, top_p)
    f = _sampler(cfg, method, max_tokens, max_chunks, settings, early_exit)
    key = seed if isinstance(seed, jax.Array) else jax.random.key(seed)
    out, n, stopped, chunks = jax.device_get(
        f(
            params,
            key,
            buf,
            np.array([len(p) for p in prefixes], np.int32),
            dct,
            np.asarray(hws, np.int32),
            labels,
            ranks,
        )
    )
    seqs = []
    stop = np.array([[nch, 0, 0]], np.int32)
    for i in range(num):
        t = np.array(out[i, : n[i]])
        body = t[t[:, 0] < nch]
        body[:, 2] = class_to_value(body[:, 2], d.clip)
        seqs.append(np.concatenate([body, stop]).astype(np.int32))
    if return_stats:
        return seqs, {"chunks": int(chunks), "stopped": np.asarray(stopped)}
    return seqs
