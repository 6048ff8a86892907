"""The hierarchical quantiser of HR-VQVAE (Adiban et al., BMVC 2022, eqs. 2-6).

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
* ``code_usage``: perplexity and dead codes per layer (numpy).

``||.||^2`` in the paper's losses is taken as a mean over elements, as in the
VQ-VAE reference code, so betas do not depend on batch or latent size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

sg = jax.lax.stop_gradient


# --------------------------------------------------------------------------- tree search (pure)


class TreeCodes(NamedTuple):
    """Result of ``tree_quantize`` for N vectors of D channels and n layers."""

    # int32 (N, n): word picked within the selected codebook, in [0, m).  The name hides
    # tuple.index, which nothing calls on these.
    index: jnp.ndarray  # type: ignore[assignment]
    leaf: jnp.ndarray  # int32 (N,): the combined code, sum_l index[:, l] * m**(n-1-l)
    words: jnp.ndarray  # float32 (n, N, D): e^l, the word picked at each layer
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
        cand = cb[parent]  # (N, m, D): the selected codebook
        d = jnp.sum((r[:, None, :] - cand) ** 2, axis=-1)  # (N, m)
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
    d = jnp.sum(codebook**2, -1)[None, :] - 2.0 * z @ codebook.T
    return jnp.argmin(d, axis=-1).astype(jnp.int32)


def leaf_index(index: jnp.ndarray, m: int) -> jnp.ndarray:
    """Per-layer indices int (..., n) -> combined code int32 (...) in [0, m**n)."""
    n = index.shape[-1]
    weights = jnp.asarray([m ** (n - 1 - layer) for layer in range(n)], jnp.int32)
    return jnp.sum(index.astype(jnp.int32) * weights, axis=-1)


def split_leaf(leaf: jnp.ndarray, m: int, n: int) -> jnp.ndarray:
    """Combined code int (...) -> per-layer indices int32 (..., n)."""
    leaf = leaf.astype(jnp.int32)
    return jnp.stack([(leaf // m ** (n - 1 - layer)) % m for layer in range(n)], axis=-1)


def tree_lookup(index: jnp.ndarray, codebooks: Sequence[jnp.ndarray]) -> jnp.ndarray:
    """Per-layer indices int (..., n) -> e_C float32 (..., D), the sum of eq. 4."""
    m = codebooks[0].shape[1]
    parent = jnp.zeros(index.shape[:-1], jnp.int32)
    total = jnp.zeros((), codebooks[0].dtype)
    for layer, cb in enumerate(codebooks):
        k = index[..., layer].astype(jnp.int32)
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
    total = jnp.zeros((), codebooks[0].dtype)
    for layer, cb in enumerate(codebooks):
        total = total + jnp.repeat(cb.reshape(m ** (layer + 1), d), m ** (n - 1 - layer), axis=0)
    return total


# --------------------------------------------------------------------------- losses (pure)


def vq_losses(
    xi0: jnp.ndarray,
    words: jnp.ndarray,
    residuals: jnp.ndarray,
    beta0: float,
    betas: Sequence[float],
    combined: bool = True,
) -> dict:
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


def ema_codebook(
    count: jnp.ndarray, total: jnp.ndarray, hits: jnp.ndarray, sums: jnp.ndarray, decay: float, eps: float
):
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

    def __init__(
        self,
        layers: int,
        m: int,
        dim: int,
        *,
        update: str = "ema",
        decay: float = 0.99,
        eps: float = 1e-5,
        restart_after: int = 20,
        restart: bool = True,
        rngs: nnx.Rngs,
    ):
        if update not in ("ema", "grad"):
            raise ValueError(f"update must be 'ema' or 'grad', not {update!r}")
        self.n, self.m, self.dim = layers, m, dim
        self.update, self.decay, self.eps = update, decay, eps
        self.restart_after, self.restart = restart_after, restart
        kind = Codebook if update == "ema" else nnx.Param
        books, counts, totals, idle = [], [], [], []
        for layer in range(layers):
            # Later layers hold residuals, which shrink; a smaller init keeps
            # their words near where the residuals are before restarts kick in.
            w = jax.random.normal(rngs.params(), (m**layer, m, dim)) * (0.5**layer)
            books.append(kind(w))
            counts.append(Usage(jnp.zeros((m ** (layer + 1),), jnp.float32)))
            totals.append(Usage(w.reshape(m ** (layer + 1), dim) * 0.0))
            # Starting every word as idle makes the first update a data-dependent
            # init: words nobody picks are moved onto encoder outputs at once.
            idle.append(Usage(jnp.full((m ** (layer + 1),), restart_after, jnp.int32)))
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
        for layer in range(self.n):
            k_total = self.m ** (layer + 1)
            cand = self.books[layer][...][parent]
            k = jnp.argmin(jnp.sum((r[:, None, :] - cand) ** 2, -1), -1).astype(jnp.int32)
            flat = parent * self.m + k
            hits = jax.ops.segment_sum(jnp.ones(n_pos, jnp.float32), flat, k_total)
            resid = r
            sums = jax.ops.segment_sum(resid, flat, k_total)
            count, total, words = ema_codebook(
                self.counts[layer][...], self.totals[layer][...], hits, sums, self.decay, self.eps
            )
            if self.update != "ema":
                words = self.books[layer][...].reshape(k_total, self.dim)
            idle = jnp.where(hits > 0, 0, self.idle[layer][...] + 1)
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
            self.counts[layer][...] = count
            self.totals[layer][...] = total
            self.idle[layer][...] = idle
            self.books[layer][...] = words.reshape(self.m**layer, self.m, self.dim)
            r = r - words[flat]
            parent = flat
        return jnp.stack(restarted)


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
    for layer in range(codes.shape[1]):
        path = path * m + codes[:, layer]
        counts = np.bincount(path, minlength=m ** (layer + 1))
        p = counts[counts > 0] / counts.sum()
        out.append(
            dict(
                layer=layer,
                words=m ** (layer + 1),
                used=int((counts > 0).sum()),
                dead=int((counts == 0).sum()),
                perplexity=float(np.exp(-(p * np.log(p)).sum())),
                counts=counts,
            )
        )
    return out
