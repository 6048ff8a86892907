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
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from . import masks as M
from .chunks import build_chunk
from .checkpoint import load_params, resolve
from .config import Config
from .loop import stop_on_sigint
from .model import model_from_params
from .tokens import channel_rank, class_to_value, dense_dct, grid_of, value_to_class

PerVariable = Union[float, int, Sequence]


# ---------------------------------------------------------------------------
# Drawing one variable
# ---------------------------------------------------------------------------

def _three(x, kind) -> tuple:
    t = tuple(x) if isinstance(x, (tuple, list)) else (x, x, x)
    if len(t) != 3:
        raise ValueError("give one value or three (channel, position, value)")
    return tuple(kind(v) for v in t)


@dataclass(frozen=True)
class SampleSettings:
    """Per variable (channel, position, value): temperature (0 = greedy), top-k (0 = off),
    nucleus top-p (1 = off)."""

    temperature: tuple = (1.0, 1.0, 1.0)
    top_k: tuple = (0, 0, 0)
    top_p: tuple = (1.0, 1.0, 1.0)

    @classmethod
    def make(cls, temperature: PerVariable = 1.0, top_k: PerVariable = 0, top_p: PerVariable = 1.0):
        return cls(_three(temperature, float), _three(top_k, int), _three(top_p, float))


def filter_logits(logits, temperature: float, top_k: int, top_p: float):
    """Tempered logits with everything outside top-k / the top-p nucleus set to -inf.

    ``logits`` float32 ``(B, V)``.  The most likely class always survives.
    """
    logits = logits.astype(jnp.float32) / max(temperature, 1e-6)
    if top_k and top_k < logits.shape[-1]:
        kth = jax.lax.top_k(logits, top_k)[0][:, -1:]
        logits = jnp.where(logits >= kth, logits, -jnp.inf)
    if top_p < 1.0:
        srt = -jnp.sort(-logits, axis=-1)
        pr = jax.nn.softmax(srt, axis=-1)
        before = jnp.cumsum(pr, axis=-1) - pr          # mass of the strictly more likely classes
        thr = jnp.min(jnp.where(before < top_p, srt, jnp.inf), axis=-1, keepdims=True)
        logits = jnp.where(logits >= thr, logits, -jnp.inf)
    return logits


def draw(key, logits, temperature: float, top_k: int, top_p: float):
    """One class per row: int32 ``(B,)`` from float32 logits ``(B, V)`` (already masked)."""
    if temperature == 0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return jax.random.categorical(key, filter_logits(logits, temperature, top_k, top_p)).astype(jnp.int32)


# ---------------------------------------------------------------------------
# Decoders: the model, one step at a time
# ---------------------------------------------------------------------------
#
# A decoder is four pure functions over a per-chunk state pytree:
#   begin(dct, hw, label, inp_o, tgt_o) -> state   (encode; the O overlap steps, teacher-forced)
#   channel(state, j, prev)  -> (logits (B, P*B*B+1), state)   prev int32 (B, 3): token before step j
#   position(state, j, c)    -> (logits (B, G*G), state)        c int32 (B,): the channel just drawn
#   value(state, j, p)       -> (logits (B, 2*clip), state)     p int32 (B,): the position just drawn
# ``j`` is the (traced) window step in [O, O + C).  Logits are unmasked.


class CachedDecoder:
    """Encoder once per chunk, cross-attention K/V once per chunk, self-attention K/V caches."""

    def __init__(self, model, hw, label):
        self.m, self.hw = model, hw
        self.label = label if model.emb_class is not None else None
        self.S = model.cfg.model.overlap + model.cfg.model.chunk_size
        self.stacks = (model.channel_decoder, model.position_decoder, model.value_decoder)

    def begin(self, dct, inp_o, tgt_o):
        m, B = self.m, dct.shape[0]
        e_input = m.encode(dct, self.label)
        cross = [s.cross_kv(e_input) for s in self.stacks]
        caches = [s.empty_cache(B, self.S, e_input.dtype) for s in self.stacks]
        O = inp_o.shape[1]
        if O:
            e = m.embed_inputs(inp_o, jnp.arange(O), self.hw, self.label)
            h_c, _, caches[0] = self.stacks[0].cached(e, 0, caches[0], cross[0])
            h_p, _, caches[1] = self.stacks[1].cached(h_c + m.emb_channel(tgt_o[..., 0]), 0, caches[1], cross[1])
            x = h_p + m.gather_input(e_input, tgt_o[..., 1], self.hw)
            _, _, caches[2] = self.stacks[2].cached(x, 0, caches[2], cross[2])
        d = m.cfg.model.d_model
        zero = jnp.zeros((B, 1, d), e_input.dtype)
        return dict(e_input=e_input, cross=cross, caches=caches, h_c=zero, h_p=zero)

    def _step(self, st, i, x, j):
        h, n, cache = self.stacks[i].cached(x, j, st["caches"][i], st["cross"][i])
        caches = list(st["caches"])
        caches[i] = cache
        return h, n[:, 0].astype(jnp.float32), dict(st, caches=caches)

    def channel(self, st, j, prev):
        x = self.m.embed_inputs(prev[:, None], j[None], self.hw, self.label)
        h, n, st = self._step(st, 0, x, j)
        return self.m.head_channel(n), dict(st, h_c=h)

    def position(self, st, j, c):
        h, n, st = self._step(st, 1, st["h_c"] + self.m.emb_channel(c[:, None]), j)
        return self.m.head_position(n), dict(st, h_p=h)

    def value(self, st, j, p):
        x = st["h_p"] + self.m.gather_input(st["e_input"], p[:, None], self.hw)
        _, n, st = self._step(st, 2, x, j)
        return self.m.head_value(n), st


class RecomputeDecoder:
    """Reference: encoder once per chunk, then every variable reruns the decoders it needs
    over the whole ``O + C`` window (channel: 1 decoder, position: 2, value: 3)."""

    def __init__(self, model, hw, label):
        self.m, self.hw = model, hw
        self.label = label if model.emb_class is not None else None
        self.C = model.cfg.model.chunk_size
        n, clip = model.num_channels, model.cfg.data.clip
        self.pad = jnp.array([n + 2, 0, 2 * clip], jnp.int32)

    def begin(self, dct, inp_o, tgt_o):
        B = dct.shape[0]
        pad = jnp.broadcast_to(self.pad, (B, self.C, 3))
        return dict(e_input=self.m.encode(dct, self.label),
                    inp=jnp.concatenate([inp_o, pad], 1), tgt=jnp.concatenate([tgt_o, pad], 1))

    def _logits(self, st, upto, j):
        out = self.m.decode(st["e_input"], st["inp"], st["tgt"], self.hw, self.label, upto=upto)
        return jax.lax.dynamic_index_in_dim(out[upto - 1], j, axis=1, keepdims=False)

    def channel(self, st, j, prev):
        st = dict(st, inp=st["inp"].at[:, j].set(prev))
        return self._logits(st, 1, j), st

    def position(self, st, j, c):
        st = dict(st, tgt=st["tgt"].at[:, j, 0].set(c))
        return self._logits(st, 2, j), st

    def value(self, st, j, p):
        st = dict(st, tgt=st["tgt"].at[:, j, 1].set(p))
        return self._logits(st, 3, j), st


# ---------------------------------------------------------------------------
# The chunked loop (pure JAX, any decoder)
# ---------------------------------------------------------------------------

def sample_loop(dec, key, buf, n, dct, hw, min_rank, *, tables: M.MaskTables, clip: int, overlap: int,
                chunk: int, max_tokens: int, max_chunks: int, settings: SampleSettings,
                early_exit: bool = True):
    """Chunked autoregressive sampling; traceable (jit it).

    Args:
      dec: a decoder (see above) built for this batch.
      buf: int32 ``(B, max_tokens + 1, 3)``: the first ``n[b]`` rows of row ``b``
        hold the prefix in model encoding (channel, position, value class).
      n: int32 ``(B,)`` prefix lengths; dct: int32 ``(B, G, G, P*B*B)`` the prefix
        scattered; hw: int32 ``(B, 2)``; min_rank: int32 ``(B,)`` lowest channel rank
        (in the order) a new token may have.
      early_exit: stop a chunk as soon as every sample is done (False: always run
        all ``C`` steps, for timing).
    Returns ``(buf, n, done, chunks)``: tokens (stop included when drawn), lengths,
    bool ``(B,)`` whether each sample drew its stop token, number of chunks run.
    """
    B, L = buf.shape[0], buf.shape[1]
    nch = tables.num_channels
    none_v = 2 * clip
    pad = jnp.array([nch + 2, 0, none_v], jnp.int32)
    bos = jnp.array([nch + 1, 0, none_v], jnp.int32)
    rank = jnp.asarray(tables.rank)
    rank_ok = jnp.concatenate([rank[None, :] >= min_rank[:, None], jnp.ones((B, 1), bool)], axis=1)
    rows = jnp.arange(B)
    T, K, Pp = settings.temperature, settings.top_k, settings.top_p

    def tokens_at(buf, idx):
        """Tokens ``idx`` int32 ``(B, k)`` of each row, BOS at -1 and PAD before."""
        g = jnp.take_along_axis(buf, jnp.clip(idx, 0, L - 1)[..., None], axis=1)
        g = jnp.where((idx >= 0)[..., None], g, pad)
        return jnp.where((idx == -1)[..., None], bos, g)

    def step(carry):
        j, st, prev, buf, n, done, dct, key = carry
        key, k1, k2, k3 = jax.random.split(key, 4)
        lc, st = dec.channel(st, j, prev)
        lc = M.mask_channel(tables, lc.astype(jnp.float32)[:, None], prev[:, None], hw, rank_ok[:, None])[:, 0]
        c = draw(k1, lc, T[0], K[0], Pp[0])
        c = jnp.where(done | (n >= max_tokens), nch, c)  # finished rows and full buffers: stop
        stop = c == nch
        lp, st = dec.position(st, j, c)
        lp = M.mask_position(tables, lp.astype(jnp.float32)[:, None], prev[:, None], c[:, None], hw)[:, 0]
        p = jnp.where(stop, 0, draw(k2, lp, T[1], K[1], Pp[1]))
        lv, st = dec.value(st, j, p)
        v = jnp.where(stop, none_v, draw(k3, lv.astype(jnp.float32), T[2], K[2], Pp[2]))
        tok = jnp.stack([c, p, v], axis=-1)
        write = ~done
        at = jnp.minimum(n, L - 1)
        buf = buf.at[rows, at].set(jnp.where(write[:, None], tok, buf[rows, at]))
        # Scatter the new coefficient into the DCT image the next chunk will encode.
        wb = hw[:, 1]
        r, col, ch = p // wb, p % wb, jnp.minimum(c, nch - 1)
        val = jnp.where(v < clip, v - clip, v - clip + 1)
        dct = dct.at[rows, r, col, ch].set(jnp.where(write & ~stop, val, dct[rows, r, col, ch]))
        return j + 1, st, tok, buf, n + write, done | stop, dct, key

    def chunk_body(carry):
        ci, buf, n, done, dct, key = carry
        start = n
        o = jnp.arange(overlap)
        st = dec.begin(dct, tokens_at(buf, start[:, None] - overlap - 1 + o), tokens_at(buf, start[:, None] - overlap + o))
        prev = tokens_at(buf, start[:, None] - 1)[:, 0]

        def cond(c):
            return (c[0] < overlap + chunk) & (~jnp.all(c[5]) if early_exit else True)

        init = (jnp.int32(overlap), st, prev, buf, n, done, dct, key)
        _, _, _, buf, n, done, dct, key = jax.lax.while_loop(cond, step, init)
        return ci + 1, buf, n, done, dct, key

    def chunk_cond(carry):
        return (carry[0] < max_chunks) & ~jnp.all(carry[3])

    done = jnp.zeros((B,), bool)
    ci, buf, n, done, dct, key = jax.lax.while_loop(chunk_cond, chunk_body, (jnp.int32(0), buf, n, done, dct, key))
    return buf, n, done, ci


# ---------------------------------------------------------------------------
# Host API
# ---------------------------------------------------------------------------

_SAMPLERS: dict = {}


def _sampler(cfg: Config, method: str, max_tokens: int, max_chunks: int, settings: SampleSettings,
             early_exit: bool):
    """Jitted ``f(params, key, buf, n, dct, hw, label, min_rank)``, cached per static arguments."""
    k = (cfg, method, max_tokens, max_chunks, settings, early_exit)
    if k not in _SAMPLERS:
        tables = M.MaskTables.from_config(cfg)
        Dec = {"cached": CachedDecoder, "recompute": RecomputeDecoder}[method]

        def run(params, key, buf, n, dct, hw, label, min_rank):
            dec = Dec(model_from_params(cfg, params), hw, label)
            return sample_loop(dec, key, buf, n, dct, hw, min_rank, tables=tables, clip=cfg.data.clip,
                               overlap=cfg.model.overlap, chunk=cfg.model.chunk_size, max_tokens=max_tokens,
                               max_chunks=max_chunks, settings=settings, early_exit=early_exit)

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
            raise ValueError(f"sample {i}: block grid hw=({hb}, {wb}) must lie in 1..{d.grid} "
                             f"(data.grid){rule}")
    classes = cfg.model.num_classes
    if classes == 0 and labels.any():
        raise ValueError("label given, but the model is not class-conditional (model.num_classes=0)")
    if classes and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"labels must lie in 0..{classes - 1} (model.num_classes={classes}), "
                         f"got {labels.min()}..{labels.max()}")
    if ranks.min() < 0 or ranks.max() > nch:
        raise ValueError(f"min_rank must lie in 0..{nch}, got {ranks.min()}..{ranks.max()}")
    rank = channel_rank(d.order, d.planes, d.block_size)
    for i, (p, (hb, wb)) in enumerate(zip(prefixes, hws)):
        if not len(p):
            continue
        ch, pos, val = p[:, 0], p[:, 1], p[:, 2]
        bad = ((ch < 0) | (ch >= nch) | (pos < 0) | (pos >= hb * wb) | (val == 0) | (np.abs(val) > d.clip))
        if even and d.planes == 3:  # chroma coefficients sit at even block rows and columns
            bad |= (ch >= d.block_size ** 2) & (ch < nch) & (((pos // wb) % 2 == 1) | ((pos % wb) % 2 == 1))
        if bad.any():
            j = int(np.argmax(bad))
            raise ValueError(f"prefix {i}, token {j} {tuple(int(x) for x in p[j])} is not a coefficient of a "
                             f"{hb}x{wb}-block image (channels 0..{nch - 1}, non-zero values within "
                             f"+-{d.clip}; the stop token is not part of a prefix)")
        key = rank[ch].astype(np.int64) * (hb * wb) + pos
        if len(key) > 1 and (np.diff(key) <= 0).any():
            j = int(np.argmax(np.diff(key) <= 0)) + 1
            raise ValueError(f"prefix {i}, token {j}: out of the list order {d.order!r} (or a repeated "
                             f"coefficient); a prefix is the start of a coordinate list")


def sample_tokens(cfg: Config, params, *, num: Optional[int] = None, seed: int = 0, hw=None, label=0,
                  max_tokens: Optional[int] = None, max_chunks: Optional[int] = None,
                  temperature: PerVariable = 1.0, top_k: PerVariable = 0, top_p: PerVariable = 1.0,
                  prefix=None, min_rank=0, method: str = "cached", early_exit: bool = True,
                  return_stats: bool = False):
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
    prefixes = [np.zeros((0, 3), np.int32) if p is None else np.asarray(p, np.int32).reshape(-1, 3)
                for p in prefixes]
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
    for i, (p, (hb, wb)) in enumerate(zip(prefixes, hws)):
        buf[i, :len(p), :2] = p[:, :2]
        buf[i, :len(p), 2] = value_to_class(p[:, 2], d.clip)
        dct[i] = dense_dct(p, len(p), hb, wb, d.grid, nch)
    settings = SampleSettings.make(temperature, top_k, top_p)
    f = _sampler(cfg, method, max_tokens, max_chunks, settings, early_exit)
    key = seed if isinstance(seed, jax.Array) else jax.random.key(seed)
    out, n, stopped, chunks = jax.device_get(f(params, key, buf,
                                               np.array([len(p) for p in prefixes], np.int32), dct,
                                               np.asarray(hws, np.int32), labels, ranks))
    seqs = []
    stop = np.array([[nch, 0, 0]], np.int32)
    for i in range(num):
        t = np.array(out[i, :n[i]])
        body = t[t[:, 0] < nch]
        body[:, 2] = class_to_value(body[:, 2], d.clip)
        seqs.append(np.concatenate([body, stop]).astype(np.int32))
    if return_stats:
        return seqs, {"chunks": int(chunks), "stopped": np.asarray(stopped)}
    return seqs


# ---------------------------------------------------------------------------
# Applications (section 4.3): conditioning prefixes
# ---------------------------------------------------------------------------

def _encode(cfg: Config, img: np.ndarray):
    import dctsparse

    d = cfg.data
    return dctsparse.encode(img, block_size=d.block_size, quality=d.quality, subsampling=d.subsampling,
                            order=d.order, clip=d.clip)


def _fit(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    if img.shape[:2] == (size[1], size[0]):
        return img
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BOX))


def upsample_prefix(cfg: Config, low: np.ndarray) -> tuple[np.ndarray, tuple[int, int], int, np.ndarray]:
    """Super-resolution context: the DC channel of every plane from a low-resolution image.

    ``low`` uint8 ``(h, w[, 3])``, one pixel per ``B x B`` block of the output
    (a bigger image is box-downsampled to ``ceil(image_size / B)`` on its long
    side).  Each pixel is repeated into a ``B x B`` block (so each block's DC
    coefficient is that pixel) and encoded; the tokens of the DC channels
    (the first ``planes`` channels of the order) are kept.
    Returns ``(prefix int32 (n, 3), (Hb, Wb), min_rank, output-size image of the blocks)``.
    """
    d = cfg.data
    B = d.block_size
    h, w = low.shape[:2]
    side = -(-d.image_size // B)
    if max(h, w) > side:
        s = side / max(h, w)
        low = _fit(low, (max(1, round(w * s)), max(1, round(h * s))))
        h, w = low.shape[:2]
    if d.grey and low.ndim == 3:
        low = np.round(low @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    if not d.grey and low.ndim == 2:
        low = np.repeat(low[..., None], 3, axis=2)
    big = np.repeat(np.repeat(low, B, axis=0), B, axis=1)
    toks = np.asarray(_encode(cfg, big).tokens(), np.int32)[:-1]
    rank = channel_rank(d.order, d.planes, B)
    dc = rank[toks[:, 0]] < d.planes
    # The DC channels come first in frequency order, so they are a prefix of the list.
    assert dc[:dc.sum()].all(), "order does not start with the DC channels"
    return toks[dc], grid_of(big.shape[0], big.shape[1], B, d.subsampling), d.planes, big


def colorize_prefix(cfg: Config, grey: np.ndarray) -> tuple[np.ndarray, tuple[int, int], int, np.ndarray]:
    """Colorisation context (``order="luma_first"``): the luma tokens of a greyscale image.

    ``grey`` uint8 ``(h, w)`` (or RGB, converted with the JPEG luma weights),
    resized so its long side is ``image_size``.  It is encoded as RGB with
    R = G = B (luma = the grey image, chroma = 0); the luma part of the list
    (channels ``< B*B``) is the prefix.  Returns ``(prefix, (Hb, Wb), min_rank = B*B, grey RGB)``.
    """
    d = cfg.data
    if d.order != "luma_first" or d.grey:
        raise ValueError("colorisation needs a colour model with data.order='luma_first'")
    if grey.ndim == 3:
        grey = np.round(grey[..., :3] @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    h, w = grey.shape
    s = d.image_size / max(h, w)
    grey = _fit(grey, (max(1, round(w * s)), max(1, round(h * s))))
    rgb = np.repeat(grey[..., None], 3, axis=2)
    toks = np.asarray(_encode(cfg, rgb).tokens(), np.int32)[:-1]
    bb = d.block_size ** 2
    luma = toks[:, 0] < bb
    assert luma[:luma.sum()].all(), "luma_first order must list luma first"
    return toks[luma], grid_of(rgb.shape[0], rgb.shape[1], d.block_size, d.subsampling), bb, rgb


def sample_tokens_reference(cfg: Config, params, *, num: int, seed: int = 0, hw: Optional[tuple[int, int]] = None,
                  label: int = 0, max_tokens: Optional[int] = None, temperature: float = 1.0,
                  prefix: Optional[np.ndarray] = None) -> list[np.ndarray]:
    """The original sampler (no cache, one forward pass of the whole window per variable,
    a Python loop): kept as the reference for tests.  Sample ``num`` token sequences, int32 ``(N + 1, 3)`` each ending with the stop token.

    ``hw``: the luma block grid to sample in (default: the config's square grid).
    ``prefix``: tokens ``(n, 3)`` (no stop) to continue from, e.g. the first DCT
    channels for upsampling (section 4.3).  ``max_tokens`` caps the length
    (default: every (channel, position) slot once).
    """
    model = model_from_params(cfg, params)
    fwd = jax.jit(lambda b: model(b, deterministic=True, structure_masks=True))
    d, m = cfg.data, cfg.model
    n_ch, C, O = d.num_channels, m.chunk_size, m.overlap
    hb, wb = hw or (d.grid, d.grid)
    max_tokens = max_tokens or n_ch * hb * wb
    key = jax.random.key(seed)
    seqs = [np.asarray(prefix, np.int32).reshape(-1, 3) if prefix is not None else np.zeros((0, 3), np.int32)
            for _ in range(num)]
    done = np.zeros(num, bool)
    stop = np.array([[n_ch, 0, 0]], np.int32)

    def draw(logits, k):
        return np.asarray(jax.random.categorical(k, jnp.asarray(logits) / temperature, axis=-1))

    while not done.all():
        # Unfinished samples all advance one token per step, so they share the chunk start;
        # finished ones ride along (their windows are past their stop token, all padding).
        start = max(len(s) for s, dn in zip(seqs, done) if not dn)
        exs = [build_chunk(np.concatenate([s, stop]), start, C, O, hb=hb, wb=wb, grid=d.grid,
                           num_channels=n_ch, clip=d.clip) for s in seqs]
        batch = {k: np.stack([e[k] for e in exs]) for k in ("dct", "inp", "tgt", "hw")}
        batch["label"] = np.full(num, label, np.int32)
        new = [[] for _ in range(num)]
        for j in range(O, O + C):
            if done.all() or start + j - O >= max_tokens:
                break
            for field in range(3):
                key, k = jax.random.split(key)
                logits = fwd(batch)[field][:, j]
                x = draw(logits, k)
                if field == 0:
                    x = np.where(done | (start + j - O >= max_tokens - 1), n_ch, x)  # finished rows: stop
                batch["tgt"][:, j, field] = x
                if j + 1 < O + C:
                    batch["inp"][:, j + 1, field] = x
                if field == 0:
                    is_stop = x == n_ch
                    batch["tgt"][is_stop, j, 1:] = (0, 2 * d.clip)
                    if j + 1 < O + C:
                        batch["inp"][is_stop, j + 1, 1:] = (0, 2 * d.clip)
                    if is_stop.all():
                        break
            for i in range(num):
                if done[i]:
                    continue
                c, p, v = batch["tgt"][i, j]
                if c == n_ch:
                    done[i] = True
                else:
                    new[i].append((c, p, int(class_to_value(np.array(v), d.clip))))
        for i in range(num):
            if new[i]:
                seqs[i] = np.concatenate([seqs[i], np.asarray(new[i], np.int32).reshape(-1, 3)])
        if start + C >= max_tokens:
            done[:] = True
    return [np.concatenate([np.asarray(s), stop]).astype(np.int32) for s in seqs]


def decode_tokens(cfg: Config, tokens: np.ndarray, height: Optional[int] = None,
                  width: Optional[int] = None) -> np.ndarray:
    """Sampled tokens -> uint8 image with ``dctsparse``."""
    import dctsparse

    d = cfg.data
    side = d.grid * d.block_size
    s = dctsparse.SparseDCT.from_tokens(np.asarray(tokens, np.int32), height=height or side, width=width or side,
                                        block_size=d.block_size, quality=d.quality, subsampling=d.subsampling,
                                        order=d.order, mode="L" if d.grey else "RGB")
    return dctsparse.decode(s)


# ---------------------------------------------------------------------------
# Pictures
# ---------------------------------------------------------------------------

def _rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img


def location_heatmap(cfg: Config, tokens: np.ndarray, height: int, width: int) -> np.ndarray:
    """Figure 1 of the paper: where the coefficients land.  uint8 ``(height, width, 3)``:
    the number of non-zero coefficients of each luma block (chroma counted at its
    block's position), a magma-like colour map, one colour per ``B x B`` block."""
    from dctsparse.cli import colormap  # the codec's own map: no matplotlib needed

    d = cfg.data
    hb, wb = grid_of(height, width, d.block_size, d.subsampling)
    body = np.asarray(tokens)[:-1]
    counts = np.zeros((hb, wb), np.float64)
    np.add.at(counts, (body[:, 1] // wb, body[:, 1] % wb), 1.0)
    rgb = colormap(counts / max(counts.max(), 1.0))
    return np.repeat(np.repeat(rgb, d.block_size, 0), d.block_size, 1)[:height, :width]


def progressive_strip(cfg: Config, tokens: np.ndarray, height: int, width: int, steps: int = 8,
                      start: int = 0) -> np.ndarray:
    """The sample decoded from its first ``start + k/steps`` of the generated tokens,
    ``k = 1..steps``, side by side: uint8 ``(height, steps*width, 3)``."""
    nch = cfg.data.num_channels
    body = np.asarray(tokens)[:-1]
    stop = np.array([[nch, 0, 0]], np.int32)
    cuts = [start + round((len(body) - start) * k / steps) for k in range(1, steps + 1)]
    return np.concatenate([_rgb(decode_tokens(cfg, np.concatenate([body[:c], stop]), height, width))
                           for c in cuts], axis=1)


def image_grid(images: list[np.ndarray], cols: int, pad: int = 2) -> np.ndarray:
    """Equal-size uint8 images -> one grid, white gaps."""
    h, w = images[0].shape[:2]
    rows = -(-len(images) // cols)
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = _rgb(im)
    return out


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

def _read_image(path: str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m dctmodel.sample", description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--workdir", help="training work directory (latest checkpoint)")
    src.add_argument("--checkpoint", help="WORKDIR, WORKDIR/checkpoints or WORKDIR/checkpoints/STEP")
    ap.add_argument("--num", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=None,
                    help="samples drawn per compiled call (default: --num, at most 16); each finished batch "
                         "is saved in OUT_tokens/, so an interrupted run (or, with the same --batch-size, "
                         "a larger --num) continues where it stopped")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--label", type=int, nargs="*", default=None, help="class(es), cycled over the samples")
    ap.add_argument("--temperature", type=float, nargs="+", default=[1.0], help="one value or channel position value")
    ap.add_argument("--top-k", type=int, nargs="+", default=[0])
    ap.add_argument("--top-p", type=float, nargs="+", default=[1.0])
    ap.add_argument("--max-chunks", type=int, default=None)
    ap.add_argument("--method", choices=("cached", "recompute"), default="cached")
    cond = ap.add_mutually_exclusive_group()
    cond.add_argument("--upsample", metavar="IMG", help="super-resolution: condition on the DC channels of IMG")
    cond.add_argument("--colorize", metavar="IMG", help="colorisation (luma_first model): condition on IMG's luma")
    ap.add_argument("--strip-steps", type=int, default=8)
    ap.add_argument("--out", default=None, help="PNG grid (default WORKDIR/samples.png); "
                    "OUT_heatmap.png and OUT_progress.png are written next to it")
    args = ap.parse_args(argv)
    try:
        _run(args)
    except (ValueError, OSError) as e:  # bad paths, images, checkpoints or settings: no traceback
        ap.exit(2, f"{ap.prog}: error: {e}\n")


def sample_to_folder(cfg: Config, params, folder: str, *, num: int, batch_size: int, seed: int = 0,
                     label=None, settings: Optional[dict] = None, progress: bool = True,
                     **kw) -> list[np.ndarray]:
    """``num`` samples drawn ``batch_size`` at a time, each batch saved as it completes.

    Batch ``b`` draws ``batch_size`` samples with key ``fold_in(key(seed), b)``
    (always a full batch: one compilation, and a batch's samples do not depend
    on ``num``), sample ``i`` gets ``label[i % len(label)]``; its tokens go to
    ``folder/batch_BBBBB.npz`` (atomically).  Batches already in ``folder`` are
    read back instead of drawn, so a run stopped by Ctrl-C, or rerun with a
    larger ``num``, continues where it stopped.  The first Ctrl-C lets the
    running batch finish and be saved, then raises KeyboardInterrupt; a second
    one raises at once.  ``settings`` (JSON-able: the checkpoint and sampling
    settings) are stored in ``folder/settings.json``, and a folder written with
    other settings is refused rather than mixed.  Other keywords go to
    :func:`sample_tokens`.  Returns the ``num`` token arrays.
    """
    import time

    if num < 1 or batch_size < 1:
        raise ValueError(f"num and batch_size must be >= 1, got {num} and {batch_size}")
    # Round-tripped through JSON so that it compares equal to what a rerun reads back.
    meta = json.loads(json.dumps(dict(settings or {}, batch_size=batch_size, seed=seed,
                                      label=None if label is None else list(label))))
    meta_path = os.path.join(folder, "settings.json")
    if os.path.exists(meta_path) and any(f.startswith("batch_") for f in os.listdir(folder)):
        with open(meta_path) as f:
            old = json.load(f)
        diff = sorted(k for k in set(old) | set(meta) if old.get(k) != meta.get(k))
        if diff:
            raise ValueError(f"{folder} holds samples drawn with other settings ({', '.join(diff)} differ); "
                             f"remove it or write elsewhere (--out)")
    nb = -(-num // batch_size)
    out: list[np.ndarray] = []
    drawn, t0 = 0, time.time()
    with stop_on_sigint("this batch, which is saved") as stop:
        for b in range(nb):
            path = os.path.join(folder, f"batch_{b:05d}.npz")
            if os.path.exists(path):
                with np.load(path) as z:
                    out += np.split(z["tokens"], np.cumsum(z["lengths"])[:-1])
                continue
            if stop.requested:
                raise KeyboardInterrupt
            idx = range(b * batch_size, (b + 1) * batch_size)
            labels = 0 if label is None else [label[i % len(label)] for i in idx]
            toks = sample_tokens(cfg, params, num=batch_size, label=labels,
                                 seed=jax.random.fold_in(jax.random.key(seed), b), **kw)
            os.makedirs(folder, exist_ok=True)
            with open(meta_path, "w") as f:  # before the batch: no batch without its settings
                json.dump(meta, f, indent=1)
            tmp = path + ".tmp.npz"
            np.savez(tmp, tokens=np.concatenate(toks), lengths=np.array([len(t) for t in toks]))
            os.replace(tmp, path)
            out += toks
            drawn += 1
            if progress:
                print(f"batch {b + 1}/{nb} drawn ({drawn} this run, {time.time() - t0:.1f} s, compile included)",
                      file=sys.stderr, flush=True)
    return out[:num]


def _run(args):
    import time

    from PIL import Image

    # Everything the user named is checked before the checkpoint loads and the sampler compiles.
    cond_image = _read_image(args.upsample or args.colorize) if args.upsample or args.colorize else None
    cfg, params, step = load_params(args.workdir or args.checkpoint)
    d = cfg.data
    one = lambda v: v[0] if len(v) == 1 else tuple(v)  # noqa: E731
    kw = dict(temperature=one(args.temperature), top_k=one(args.top_k), top_p=one(args.top_p),
              max_chunks=args.max_chunks, method=args.method)
    size = (d.image_size, d.image_size)
    context, start = None, 0
    if args.upsample or args.colorize:
        make = upsample_prefix if args.upsample else colorize_prefix
        prefix, hw, min_rank, context = make(cfg, cond_image)
        size, start = context.shape[:2], len(prefix)
        kw.update(prefix=prefix, hw=hw, min_rank=min_rank)
    base = args.out or os.path.join(resolve(args.workdir or args.checkpoint)[0], "samples.png")
    stem, ext = os.path.splitext(base)
    if ext.lower() not in Image.registered_extensions():
        raise ValueError(f"--out {base}: Pillow cannot tell an image format from {ext or 'no extension'!r}; "
                         f"name a .png file")
    os.makedirs(os.path.dirname(os.path.abspath(base)), exist_ok=True)
    settings = dict(checkpoint=os.path.abspath(args.workdir or args.checkpoint), step=step,
                    temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, max_chunks=args.max_chunks,
                    method=args.method,
                    condition="upsample" if args.upsample else ("colorize" if args.colorize else None),
                    # the image's pixels, not its path: a moved file is the same condition
                    context=None if cond_image is None else hashlib.sha256(cond_image.tobytes()).hexdigest())
    t0 = time.time()
    try:
        bs = args.batch_size or max(1, min(args.num, 16))
        toks = sample_to_folder(cfg, params, stem + "_tokens", num=args.num, batch_size=bs,
                                seed=args.seed, label=args.label or None, settings=settings, **kw)
    except KeyboardInterrupt:
        print(f"interrupted: the finished batches are in {stem}_tokens/; the same command continues",
              file=sys.stderr)
        raise SystemExit(130) from None
    dt = time.time() - t0
    h, w = size
    imgs = [_rgb(decode_tokens(cfg, t, h, w)) for t in toks]
    cols = math.ceil(math.sqrt(len(imgs)))
    shown = ([_rgb(context)] if context is not None else []) + imgs
    Image.fromarray(image_grid(shown, cols)).save(base)
    Image.fromarray(image_grid([location_heatmap(cfg, t, h, w) for t in toks], cols)).save(stem + "_heatmap.png")
    strips = [progressive_strip(cfg, t, h, w, args.strip_steps, start) for t in toks]
    Image.fromarray(image_grid(strips, 1)).save(stem + "_progress.png")
    ntok = sum(len(t) - 1 - start for t in toks)
    print(f"checkpoint step {step}: {len(imgs)} samples, {np.mean([len(t) for t in toks]):.0f} tokens on "
          f"average, {ntok} in all, {dt:.1f} s (compile included) -> {base}, {stem}_heatmap.png, "
          f"{stem}_progress.png, tokens in {stem}_tokens/")


if __name__ == "__main__":
    main()
