"""HR-VQVAE (Adiban et al., BMVC 2022) and its baselines, in JAX / Flax NNX.

The learned hierarchical representation that the project compares with the
sparse DCT.  One file, read top to bottom:

* ``tree_quantize``: the hierarchical search of eq. 3.  Layer ``l`` (0-based)
  owns ``m**l`` codebooks of ``m`` words, stored as one array ``(m**l, m, D)``;
  the codebook used at a position is the one indexed by the *path* of words
  picked so far, ``parent = k_0*m**(l-1) + ... + k_{l-1}``, so after the last
  layer ``parent`` is the leaf (the combined code) in ``[0, m**n)``.  Each layer
  quantises the residual left by the previous ones; the decoder sees the sum
  of the layers' words (eq. 4).  A flat VQ-VAE codebook of ``K`` words is the
  same function with one layer and ``m = K``.
* ``vq_losses``: the terms of eqs. 5-6 (and eq. 2 for the flat baselines).
* ``TreeQuantizer``: codebooks + EMA statistics, EMA or gradient updates,
  dead-code restart.
* ``VQModel``: conv encoder / decoder around one of three bottlenecks,
  ``"hrvqvae"`` (n layers, branching m), ``"vqvae"`` (one codebook of m**n
  words: the same number of leaves, so the same bits), ``"vqvae2"`` (a
  VQ-VAE-2-style top level at half resolution conditioning a bottom level).
* ``code_usage``: perplexity and dead codes per layer (numpy).

Images are float32 ``(B, H, W, 3)`` in ``[0, 1]``; ``H`` and ``W`` must be
multiples of ``2**downsample`` (4x for ``vqvae2``).  ``||.||^2`` in the paper's
losses is taken as a mean over elements, as in the VQ-VAE reference code, so
betas do not depend on batch or latent size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

sg = jax.lax.stop_gradient


# --------------------------------------------------------------------------- config


@dataclass
class VQConfig:
    """A VQ autoencoder.  ``layers``/``m`` give the tree (HR-VQVAE) or, for the
    flat baselines, a codebook of ``codebook_size or m**layers`` words."""

    model: str = "hrvqvae"          # "hrvqvae" | "vqvae" | "vqvae2"
    layers: int = 2                 # n
    m: int = 8                      # words per codebook
    codebook_size: int = 0          # flat baselines; 0 -> m**layers (same leaves, same bits)
    dim: int = 16                   # D, latent channels
    channels: int = 32              # conv width
    downsample: int = 2             # stride-2 convs: latent side = image side / 2**downsample
    res_blocks: int = 1
    beta0: float = 0.25             # eq. 5, combined commitment
    betas: Sequence[float] = (0.25,)  # eq. 6 per layer; the last value repeats
    update: str = "ema"             # "ema" | "grad"
    decay: float = 0.99             # EMA decay (also for the usage counts in "grad" mode)
    eps: float = 1e-5
    restart_after: int = 20         # a word not picked for this many steps is restarted
    restart: bool = True

    def beta(self, i: int) -> float:
        return float(self.betas[min(i, len(self.betas) - 1)])

    @property
    def flat_size(self) -> int:
        return int(self.codebook_size or self.m ** self.layers)

    def bits_per_position(self) -> float:
        """Bits of one latent position's code (fixed-length)."""
        if self.model == "hrvqvae":
            return self.layers * math.log2(self.m)
        return math.log2(self.flat_size)

    def bits_per_image(self, height: int, width: int) -> float:
        f = 2 ** self.downsample
        h, w = height // f, width // f
        bits = h * w * self.bits_per_position()
        if self.model == "vqvae2":
            bits += (h // 2) * (w // 2) * math.log2(self.flat_size)
        return bits


# --------------------------------------------------------------------------- tree search (pure)


class TreeCodes(NamedTuple):
    """Result of ``tree_quantize`` for N vectors of D channels and n layers."""

    index: jnp.ndarray      # int32 (N, n): word picked within the selected codebook, in [0, m)
    leaf: jnp.ndarray       # int32 (N,): the combined code, sum_l index[:, l] * m**(n-1-l)
    words: jnp.ndarray      # float32 (n, N, D): e^l, the word picked at each layer
    residuals: jnp.ndarray  # float32 (n, N, D): xi^{l-1}, what layer l quantised (xi^0 = z)


def tree_quantize(z: jnp.ndarray, codebooks: Sequence[jnp.ndarray]) -> TreeCodes:
    """Hierarchical nearest-word search (eq. 3), n*m distances per vector.

    z: float32 (N, D).  codebooks[l]: float32 (m**l, m, D).
    The residual passed on is ``xi^l = xi^{l-1} - sg(e^l)``: each layer's
    commitment term then pulls only the encoder and each codebook term only
    that layer's words, which is what the stop-gradients of eq. 6 ask for.
    """
    m = codebooks[0].shape[1]
    parent = jnp.zeros(z.shape[0], jnp.int32)
    r = z
    index, words, residuals = [], [], []
    for cb in codebooks:
        cand = cb[parent]                                   # (N, m, D): the selected codebook
        d = jnp.sum((r[:, None, :] - cand) ** 2, axis=-1)   # (N, m)
        k = jnp.argmin(d, axis=-1).astype(jnp.int32)
        e = jnp.take_along_axis(cand, k[:, None, None], axis=1)[:, 0]
        index.append(k)
        words.append(e)
        residuals.append(r)
        r = r - sg(e)
        parent = parent * m + k
    return TreeCodes(jnp.stack(index, 1), parent, jnp.stack(words), jnp.stack(residuals))


def flat_quantize(z: jnp.ndarray, codebook: jnp.ndarray) -> jnp.ndarray:
    """Nearest of K words by one matmul: ``argmin ||z||^2 - 2 z.c + ||c||^2``.

    z: float32 (N, D); codebook: float32 (K, D).  Returns int32 (N,).
    The fast way to search a flat codebook; the benchmark times it against
    ``tree_quantize``.
    """
    d = jnp.sum(codebook ** 2, -1)[None, :] - 2.0 * z @ codebook.T
    return jnp.argmin(d, axis=-1).astype(jnp.int32)


def leaf_index(index: jnp.ndarray, m: int) -> jnp.ndarray:
    """Per-layer indices int (..., n) -> combined code int32 (...) in [0, m**n)."""
    n = index.shape[-1]
    weights = jnp.asarray([m ** (n - 1 - l) for l in range(n)], jnp.int32)
    return jnp.sum(index.astype(jnp.int32) * weights, axis=-1)


def split_leaf(leaf: jnp.ndarray, m: int, n: int) -> jnp.ndarray:
    """Combined code int (...) -> per-layer indices int32 (..., n)."""
    leaf = leaf.astype(jnp.int32)
    return jnp.stack([(leaf // m ** (n - 1 - l)) % m for l in range(n)], axis=-1)


def tree_lookup(index: jnp.ndarray, codebooks: Sequence[jnp.ndarray]) -> jnp.ndarray:
    """Per-layer indices int (..., n) -> e_C float32 (..., D), the sum of eq. 4."""
    m = codebooks[0].shape[1]
    parent = jnp.zeros(index.shape[:-1], jnp.int32)
    total = 0.0
    for l, cb in enumerate(codebooks):
        k = index[..., l].astype(jnp.int32)
        total = total + cb[parent, k]
        parent = parent * m + k
    return total


def combined_codebook(codebooks: Sequence[jnp.ndarray]) -> jnp.ndarray:
    """All m**n leaves' e_C as one flat codebook float32 (m**n, D).

    Row ``leaf`` is the sum of the words on that leaf's path; layer l's word
    (m**(l+1) of them in path order) is shared by m**(n-1-l) consecutive leaves.
    """
    n = len(codebooks)
    m, d = codebooks[0].shape[1:]
    total = 0.0
    for l, cb in enumerate(codebooks):
        total = total + jnp.repeat(cb.reshape(m ** (l + 1), d), m ** (n - 1 - l), axis=0)
    return total


# --------------------------------------------------------------------------- losses (pure)


def vq_losses(xi0: jnp.ndarray, words: jnp.ndarray, residuals: jnp.ndarray,
              beta0: float, betas: Sequence[float], combined: bool = True) -> dict:
    """The quantisation terms of eq. 5 (``combined=True``) or eq. 2 (one layer).

    xi0: float32 (N, D), the encoder output; words, residuals: float32 (n, N, D)
    from ``tree_quantize``.  Returns float32 scalars: ``codebook_C`` =
    ``|sg[xi0] - e_C|^2``, ``commit_C`` = ``|sg[e_C] - xi0|^2`` and per layer
    ``codebook`` / ``commit`` (n,) of eq. 6, and ``total`` with the betas.
    """
    e_c = jnp.sum(words, axis=0)
    cb = jnp.mean((sg(residuals) - words) ** 2, axis=(1, 2))
    cm = jnp.mean((sg(words) - residuals) ** 2, axis=(1, 2))
    b = jnp.asarray([betas[min(i, len(betas) - 1)] for i in range(words.shape[0])], jnp.float32)
    total = jnp.sum(cb + b * cm)
    out = dict(codebook=cb, commit=cm)
    if combined:
        out["codebook_C"] = jnp.mean((sg(xi0) - e_c) ** 2)
        out["commit_C"] = jnp.mean((sg(e_c) - xi0) ** 2)
        total = total + out["codebook_C"] + beta0 * out["commit_C"]
    out["total"] = total
    return out


# --------------------------------------------------------------------------- quantiser module


class Codebook(nnx.Variable):
    """Codewords updated by EMA, not by the optimiser (``wrt=nnx.Param`` skips them)."""


class Usage(nnx.Variable):
    """EMA statistics: hit counts and residual sums per word."""


def ema_codebook(count: jnp.ndarray, total: jnp.ndarray, hits: jnp.ndarray, sums: jnp.ndarray,
                 decay: float, eps: float):
    """One EMA step of k-means for a layer's words, flattened to (K, D).

    count, hits: float32 (K,); total, sums: float32 (K, D).  Returns new
    (count, total, words).  Laplace smoothing keeps unused words finite.
    """
    count = decay * count + (1.0 - decay) * hits
    total = decay * total + (1.0 - decay) * sums
    n = jnp.sum(count)
    smoothed = (count + eps) / (n + count.shape[0] * eps) * n
    return count, total, total / smoothed[:, None]


def restart_choice(key, parent: jnp.ndarray, num_words: int, m: int) -> jnp.ndarray:
    """For each of ``num_words`` words, a random batch position whose path so far
    selects that word's codebook (its parent ``word // m``), or any position when
    none does.  parent: int32 (N,).  Returns int32 (num_words,).

    Sorting the positions by parent makes this O(N log N + K), not O(N K).
    """
    order = jnp.argsort(parent)
    sorted_parent = parent[order]
    want = jnp.arange(num_words, dtype=jnp.int32) // m
    start = jnp.searchsorted(sorted_parent, want, side="left")
    stop = jnp.searchsorted(sorted_parent, want, side="right")
    k1, k2 = jax.random.split(key)
    u = jax.random.uniform(k1, (num_words,))
    size = stop - start
    pick = order[jnp.clip(start + jnp.floor(u * size).astype(jnp.int32), 0, parent.shape[0] - 1)]
    anywhere = jax.random.randint(k2, (num_words,), 0, parent.shape[0])
    return jnp.where(size > 0, pick, anywhere).astype(jnp.int32)


class TreeQuantizer(nnx.Module):
    """n layers of hierarchical codebooks (n=1: a flat VQ-VAE codebook of m words)."""

    def __init__(self, layers: int, m: int, dim: int, *, update: str = "ema", decay: float = 0.99,
                 eps: float = 1e-5, restart_after: int = 20, restart: bool = True,
                 rngs: nnx.Rngs):
        if update not in ("ema", "grad"):
            raise ValueError(f"update must be 'ema' or 'grad', not {update!r}")
        self.n, self.m, self.dim = layers, m, dim
        self.update, self.decay, self.eps = update, decay, eps
        self.restart_after, self.restart = restart_after, restart
        kind = Codebook if update == "ema" else nnx.Param
        books, counts, totals, idle = [], [], [], []
        for l in range(layers):
            # Later layers hold residuals, which shrink; a smaller init keeps
            # their words near where the residuals are before restarts kick in.
            w = jax.random.normal(rngs.params(), (m ** l, m, dim)) * (0.5 ** l)
            books.append(kind(w))
            counts.append(Usage(jnp.zeros((m ** (l + 1),), jnp.float32)))
            totals.append(Usage(w.reshape(m ** (l + 1), dim) * 0.0))
            # Starting every word as idle makes the first update a data-dependent
            # init: words nobody picks are moved onto encoder outputs at once.
            idle.append(Usage(jnp.full((m ** (l + 1),), restart_after, jnp.int32)))
        self.books = nnx.List(books)
        self.counts = nnx.List(counts)
        self.totals = nnx.List(totals)
        self.idle = nnx.List(idle)

    def codebooks(self) -> list[jnp.ndarray]:
        return [b[...] for b in self.books]

    def __call__(self, z: jnp.ndarray) -> TreeCodes:
        """z: float32 (N, D) -> TreeCodes."""
        return tree_quantize(z, self.codebooks())

    def lookup(self, index: jnp.ndarray) -> jnp.ndarray:
        return tree_lookup(index, self.codebooks())

    def update_stats(self, codes: TreeCodes, key) -> jnp.ndarray:
        """After an optimiser step: EMA codebook update (``update="ema"``), usage
        counts (both modes) and dead-word restart.  Returns int32 (n,), the
        number of words restarted per layer.

        Layer by layer, the residuals are re-derived from ``xi^0`` with the
        *updated* words of the earlier layers (one pass of hierarchical
        k-means): a word restarted in layer l+1 then sits on a residual of
        the codebook it will actually be searched in, which matters most at
        the first step, when every layer is initialised from data at once.
        """
        n_pos = codes.leaf.shape[0]
        parent = jnp.zeros(n_pos, jnp.int32)
        r = sg(codes.residuals[0])
        restarted = []
        for l in range(self.n):
            k_total = self.m ** (l + 1)
            cand = self.books[l][...][parent]
            k = jnp.argmin(jnp.sum((r[:, None, :] - cand) ** 2, -1), -1).astype(jnp.int32)
            flat = parent * self.m + k
            hits = jax.ops.segment_sum(jnp.ones(n_pos, jnp.float32), flat, k_total)
            resid = r
            sums = jax.ops.segment_sum(resid, flat, k_total)
            count, total, words = ema_codebook(self.counts[l][...], self.totals[l][...], hits, sums,
                                               self.decay, self.eps)
            if self.update != "ema":
                words = self.books[l][...].reshape(k_total, self.dim)
            idle = jnp.where(hits > 0, 0, self.idle[l][...] + 1)
            if self.restart:
                key, sub = jax.random.split(key)
                dead = idle >= self.restart_after
                src = resid[restart_choice(sub, parent, k_total, self.m)]
                words = jnp.where(dead[:, None], src, words)
                # A restarted word gets one hit's worth of EMA history, so the next
                # EMA step moves it towards its new cluster rather than back to 0.
                count = jnp.where(dead, 1.0, count)
                total = jnp.where(dead[:, None], src, total)
                idle = jnp.where(dead, 0, idle)
                restarted.append(jnp.sum(dead).astype(jnp.int32))
            else:
                restarted.append(jnp.int32(0))
            self.counts[l][...] = count
            self.totals[l][...] = total
            self.idle[l][...] = idle
            self.books[l][...] = words.reshape(self.m ** l, self.m, self.dim)
            r = r - words[flat]
            parent = flat
        return jnp.stack(restarted)


# --------------------------------------------------------------------------- encoder / decoder


class ResBlock(nnx.Module):
    def __init__(self, c: int, rngs: nnx.Rngs):
        self.a = nnx.Conv(c, c, (3, 3), rngs=rngs)
        self.b = nnx.Conv(c, c, (1, 1), rngs=rngs)

    def __call__(self, x):
        return x + self.b(jax.nn.relu(self.a(jax.nn.relu(x))))


class Encoder(nnx.Module):
    """float32 (B, H, W, 3) in [0, 1] -> xi^0 float32 (B, H/2**s, W/2**s, D)."""

    def __init__(self, cfg: VQConfig, rngs: nnx.Rngs):
        c = cfg.channels
        self.down = nnx.List([nnx.Conv(3 if i == 0 else c, c, (4, 4), strides=2, rngs=rngs)
                              for i in range(cfg.downsample)])
        self.mid = nnx.Conv(c, c, (3, 3), rngs=rngs)
        self.res = nnx.List([ResBlock(c, rngs) for _ in range(cfg.res_blocks)])
        self.out = nnx.Conv(c, cfg.dim, (1, 1), rngs=rngs)

    def __call__(self, x):
        h = x - 0.5
        for conv in self.down:
            h = jax.nn.relu(conv(h))
        h = self.mid(h)
        for r in self.res:
            h = r(h)
        return self.out(jax.nn.relu(h))


class Decoder(nnx.Module):
    """e_C float32 (B, h, w, D) -> images float32 (B, h*2**s, w*2**s, 3), about [0, 1]."""

    def __init__(self, cfg: VQConfig, rngs: nnx.Rngs):
        c = cfg.channels
        self.inp = nnx.Conv(cfg.dim, c, (3, 3), rngs=rngs)
        self.res = nnx.List([ResBlock(c, rngs) for _ in range(cfg.res_blocks)])
        self.up = nnx.List([nnx.ConvTranspose(c, 3 if i == cfg.downsample - 1 else c, (4, 4), strides=(2, 2),
                                              padding="SAME", rngs=rngs) for i in range(cfg.downsample)])

    def __call__(self, e):
        h = self.inp(e)
        for r in self.res:
            h = r(h)
        for i, conv in enumerate(self.up):
            h = conv(jax.nn.relu(h))
        return h + 0.5


# --------------------------------------------------------------------------- models


class VQModel(nnx.Module):
    """HR-VQVAE, flat VQ-VAE or VQ-VAE-2-style model; ``cfg.model`` picks which.

    Codes: ``"hrvqvae"`` int32 (B, h, w, n) per-layer indices in [0, m);
    ``"vqvae"`` int32 (B, h, w, 1) in [0, K); ``"vqvae2"`` a tuple
    (top int32 (B, h/2, w/2, 1), bottom int32 (B, h, w, 1)).
    """

    def __init__(self, cfg: VQConfig, *, rngs: nnx.Rngs):
        if cfg.model not in ("hrvqvae", "vqvae", "vqvae2"):
            raise ValueError(f"unknown model {cfg.model!r}")
        self.cfg = cfg
        self.encoder = Encoder(cfg, rngs)
        self.decoder = Decoder(cfg, rngs)
        q = dict(update=cfg.update, decay=cfg.decay, eps=cfg.eps, restart_after=cfg.restart_after,
                 restart=cfg.restart, rngs=rngs)
        d = cfg.dim
        if cfg.model == "hrvqvae":
            self.quant = nnx.List([TreeQuantizer(cfg.layers, cfg.m, d, **q)])
        elif cfg.model == "vqvae":
            self.quant = nnx.List([TreeQuantizer(1, cfg.flat_size, d, **q)])
        else:
            # VQ-VAE-2: a top code at half resolution, decoded back up, conditions
            # the bottom code; the decoder sees both (Razavi et al. 2019, fig. 2a).
            self.quant = nnx.List([TreeQuantizer(1, cfg.flat_size, d, **q),
                                   TreeQuantizer(1, cfg.flat_size, d, **q)])
            self.to_top = nnx.Conv(d, d, (4, 4), strides=2, rngs=rngs)
            self.top_up = nnx.ConvTranspose(d, d, (4, 4), strides=(2, 2), padding="SAME", rngs=rngs)
            self.to_bottom = nnx.Conv(2 * d, d, (1, 1), rngs=rngs)
            self.merge = nnx.Conv(2 * d, d, (1, 1), rngs=rngs)

    # -- pieces

    def _quantize(self, qi: int, z: jnp.ndarray, combined: bool):
        """z (B, h, w, D) -> (straight-through e (B,h,w,D), codes (B,h,w,n), TreeCodes, losses)."""
        b, h, w, d = z.shape
        flat = z.reshape(-1, d)
        codes = self.quant[qi](flat)
        e_c = jnp.sum(codes.words, axis=0)
        losses = vq_losses(flat, codes.words, codes.residuals, self.cfg.beta0,
                           [self.cfg.beta(i) for i in range(codes.words.shape[0])], combined)
        e_st = flat + sg(e_c - flat)   # straight-through: decoder gradients reach the encoder
        return e_st.reshape(b, h, w, d), codes.index.reshape(b, h, w, -1), codes, losses

    def _latent(self, codes):
        """codes -> decoder input float32 (B, h, w, D)."""
        if self.cfg.model == "vqvae2":
            top, bottom = codes
            e_top = self.quant[0].lookup(top)
            e_bot = self.quant[1].lookup(bottom)
            return self.merge(jnp.concatenate([e_bot, self.top_up(e_top)], -1))
        return self.quant[0].lookup(codes)

    # -- public

    def __call__(self, x: jnp.ndarray):
        """x float32 (B, H, W, 3) -> (reconstruction float32 (B, H, W, 3), aux).

        aux: ``loss`` (eq. 5, or eq. 2 summed over levels for the baselines),
        ``recon`` (MSE), ``vq`` (the quantisation terms per quantiser),
        ``tree`` (TreeCodes per quantiser, for ``update_stats``), ``codes``.
        """
        z = self.encoder(x)
        if self.cfg.model == "vqvae2":
            e_top, c_top, t_top, l_top = self._quantize(0, self.to_top(z), combined=False)
            up = self.top_up(e_top)
            e_bot, c_bot, t_bot, l_bot = self._quantize(1, self.to_bottom(jnp.concatenate([z, up], -1)),
                                                        combined=False)
            dec_in = self.merge(jnp.concatenate([e_bot, up], -1))
            vq, trees, codes = [l_top, l_bot], [t_top, t_bot], (c_top, c_bot)
        else:
            dec_in, codes, tree, losses = self._quantize(0, z, combined=self.cfg.model == "hrvqvae")
            vq, trees = [losses], [tree]
        x_hat = self.decoder(dec_in)
        recon = jnp.mean((x - x_hat) ** 2)
        loss = recon + sum(v["total"] for v in vq)
        return x_hat, dict(loss=loss, recon=recon, vq=vq, tree=trees, codes=codes)

    def encode(self, x: jnp.ndarray):
        """Images float32 (B, H, W, 3) in [0, 1] -> codes (see class docstring)."""
        return self(x)[1]["codes"]

    def decode(self, codes) -> jnp.ndarray:
        """Codes -> images float32 (B, H, W, 3), not clipped."""
        return self.decoder(self._latent(codes))

    def update_stats(self, aux: dict, key) -> jnp.ndarray:
        """EMA / usage / restart for every quantiser; int32 (total restarted,)."""
        keys = jax.random.split(key, len(self.quant))
        return sum(jnp.sum(q.update_stats(t, k)) for q, t, k in zip(self.quant, aux["tree"], keys))

    def leaves(self, codes) -> np.ndarray:
        """Codes of ``hrvqvae``/``vqvae`` -> combined code int32 (B, h, w) in [0, m**n)."""
        q = self.quant[0]
        return np.asarray(leaf_index(jnp.asarray(codes), q.m))

    def from_leaves(self, leaves) -> jnp.ndarray:
        q = self.quant[0]
        return split_leaf(jnp.asarray(leaves), q.m, q.n)

    @property
    def vocab(self) -> int:
        """Number of distinct combined codes per position (hrvqvae/vqvae)."""
        q = self.quant[0]
        return q.m ** q.n


# --------------------------------------------------------------------------- usage statistics


def code_usage(codes, m: int) -> list[dict]:
    """Usage of each layer's words over a set of codes (numpy, no jax).

    codes: int (..., n) per-layer indices of a tree with branching m (a flat
    codebook: n=1, m=K).  Word ``(parent, k)`` of layer l is counted as path
    ``parent*m + k`` among m**(l+1); a word whose codebook is never selected
    is dead too.  Per layer: ``words``, ``used``, ``dead``, ``perplexity``
    (exp of the entropy of the word frequencies, nats), ``counts`` (int64).
    """
    codes = np.asarray(codes).reshape(-1, np.shape(codes)[-1]).astype(np.int64)
    out = []
    path = np.zeros(codes.shape[0], np.int64)
    for l in range(codes.shape[1]):
        path = path * m + codes[:, l]
        counts = np.bincount(path, minlength=m ** (l + 1))
        p = counts[counts > 0] / counts.sum()
        out.append(dict(layer=l, words=m ** (l + 1), used=int((counts > 0).sum()),
                        dead=int((counts == 0).sum()), perplexity=float(np.exp(-(p * np.log(p)).sum())),
                        counts=counts))
    return out


def usage_summary(model: VQModel, codes) -> list[dict]:
    """``code_usage`` for each quantiser of a model, without the count arrays."""
    groups = codes if isinstance(codes, tuple) else (codes,)
    res = []
    for qi, (q, c) in enumerate(zip(model.quant, groups)):
        for u in code_usage(np.asarray(c), q.m):
            u = {k: v for k, v in u.items() if k != "counts"}
            u["quantizer"] = qi
            res.append(u)
    return res


def psnr(mse: float) -> float:
    """PSNR in dB for an MSE on [0, 1] images."""
    return float(10.0 * np.log10(1.0 / max(mse, 1e-12)))


__all__ = ["VQConfig", "TreeCodes", "tree_quantize", "flat_quantize", "tree_lookup", "combined_codebook",
           "leaf_index", "split_leaf", "vq_losses", "ema_codebook", "restart_choice", "TreeQuantizer",
           "VQModel", "code_usage", "usage_summary", "psnr", "Codebook", "Usage"]
