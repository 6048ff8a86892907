"""The DCTransformer's building blocks (appendix B): attention, MLP, the ReZero residual
wrapper and the PAR stack, with the stack's incremental (key/value-cached) decoding.

Every sublayer is ``H + alpha * dropout(f(LayerNorm(H)))`` with ReZero ``alpha``
initialised at 0 (eq. 10).  ``model.py`` assembles them into the encoder and the
three decoders.  Shapes: ``B`` batch, ``S`` decoder steps, ``D`` d_model.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, cast

import jax
import jax.numpy as jnp
from flax import nnx

from .config import LayerSpec


def dense_dot_general(x, w, dimension_numbers, precision=None, **kw):
    """``nnx.Linear``'s contraction of the last axis of ``x`` ``(..., K)`` with ``w`` ``(K, N)``,
    as one 2-D matrix product over all tokens (on a 3-D ``(B, S, K)`` input the weight
    gradient would otherwise contract two axes at once, which costs transposes and copies).
    Its gradient is :func:`matmul`'s."""
    assert dimension_numbers == (((x.ndim - 1,), (0,)), ((), ())), dimension_numbers
    x2 = x.reshape(-1, x.shape[-1])
    if any(v is not None for v in kw.values()):  # out_sharding / preferred_element_type: JAX's own rule
        y = jax.lax.dot_general(x2, w, (((1,), (0,)), ((), ())), precision=precision, **kw)
    else:
        y = matmul(x2, w, precision)
    return y.reshape(*x.shape[:-1], w.shape[-1])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def matmul(x, w, precision=None):
    """``x`` ``(M, K)`` @ ``w`` ``(K, N)`` -> ``(M, N)``, with the weight gradient of
    :func:`weight_grad` (the values of ``jax.grad`` of the plain product, to float rounding)."""
    return jax.lax.dot_general(x, w, (((1,), (0,)), ((), ())), precision=precision)


def _matmul_fwd(x, w, precision):
    return matmul(x, w, precision), (x, w)


def _matmul_bwd(precision, res, g):
    x, w = res
    dx = jax.lax.dot_general(g, w, (((1,), (1,)), ((), ())), precision=precision)
    return dx.astype(x.dtype), weight_grad(x, g, precision).astype(w.dtype)


matmul.defvjp(_matmul_fwd, _matmul_bwd)


def weight_grad(x, g, precision=None):
    """``x.T @ g`` for ``x`` ``(M, K)``, ``g`` ``(M, N)`` -> ``(K, N)``: a sum over the M tokens.

    XLA:CPU sends every product that contracts both operands' first axis to its generic
    (Eigen) dot, which runs ~1.6x faster when the wider operand comes second: 52 against
    82 GFLOP/s on one Zen 4 core for K = 256, N = 64, M = 320 (the MLP's down projection;
    35 against 55 for a 64 -> 49 head).  So when K > N the CPU computes ``(g.T @ x).T``;
    the barrier keeps XLA from folding the transpose back into the product, and the
    transpose is of the small ``(N, K)`` result.  Other platforms take the plain product."""
    tn = (((0,), (0,)), ((), ()))
    if x.shape[1] <= g.shape[1]:
        return jax.lax.dot_general(x, g, tn, precision=precision)
    return jax.lax.platform_dependent(
        x,
        g,
        cpu=lambda x, g: jax.lax.optimization_barrier(jax.lax.dot_general(g, x, tn, precision=precision)).T,
        default=lambda x, g: jax.lax.dot_general(x, g, tn, precision=precision),
    )


def Dense(d_in: int, d_out: int, *, rngs: nnx.Rngs, dtype=None) -> nnx.Linear:
    """``nnx.Linear`` (same parameters, same forward values) with :func:`dense_dot_general`."""
    return nnx.Linear(d_in, d_out, dtype=dtype, dot_general=dense_dot_general, rngs=rngs)


class Attention(nnx.Module):
    """Multi-head attention; self-attention when ``context is None``."""

    def __init__(self, d: int, heads: int, head_dim: int, *, dtype, rngs: nnx.Rngs):
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.q = Dense(d, inner, dtype=dtype, rngs=rngs)
        self.kv = Dense(d, 2 * inner, dtype=dtype, rngs=rngs)
        self.out = Dense(inner, d, dtype=dtype, rngs=rngs)

    def __call__(self, x, context=None, causal: bool = False):
        """``x`` ``(B, S, D)``, ``context`` ``(B, T, D)`` or None -> ``(B, S, D)``."""
        k, v = self.project_kv(x if context is None else context)
        valid = jnp.tril(jnp.ones((x.shape[1], k.shape[1]), bool)) if causal else None
        return self.attend(x, k, v, valid)

    def project_kv(self, ctx):
        """Keys and values of ``ctx`` ``(B, T, D)`` -> two ``(B, T, heads, head_dim)``."""
        B, T, _ = ctx.shape
        return tuple(jnp.split(self.kv(ctx).reshape(B, T, 2 * self.heads, self.head_dim), 2, axis=2))

    def attend(self, x, k, v, valid=None):
        """Queries from ``x`` ``(B, S, D)`` against keys/values ``(B, T, heads, head_dim)``;
        ``valid`` bool ``(S, T)`` (None: all) -> ``(B, S, D)``.  The sampler passes its caches here."""
        B, S, _ = x.shape
        q = self.q(x).reshape(B, S, self.heads, self.head_dim)
        return self.out(attention(q, k, v, valid).reshape(B, S, -1))


@jax.custom_vjp
def attention(q, k, v, valid=None):
    """Scaled dot-product attention of ``q`` ``(B, S, H, d)`` over ``k``, ``v`` ``(B, T, H, d)``,
    ``valid`` bool ``(S, T)`` or None -> ``(B, S, H, d)``; softmax in float32.

    The softmax is normalised at the output: ``o = (e @ v) / l`` with ``e = exp(s - max s)``
    and ``l`` its row sums (``rowsum``), a division over ``(B, S, H, d)`` instead of over the
    ``(B, H, S, T)`` scores, and ``1 / sqrt(d)`` scales ``q`` rather than the scores (whose
    scale XLA:CPU otherwise materialises as a broadcast array per call).  Its gradient is
    written out (:func:`_attention_bwd`) rather than left to autodiff, which reduces
    ``p * dp`` over the scores and masks their gradient again."""
    return _attention_fwd(q, k, v, valid)[0]


def _attention_fwd(q, k, v, valid):
    f32 = jnp.float32
    scale = jnp.asarray(1.0 / math.sqrt(q.shape[-1]), q.dtype)
    s = jnp.einsum("bshd,bthd->bhst", q * scale, k).astype(f32)
    if valid is not None:
        s = jnp.where(valid, s, -1e30)
    e = jnp.exp(s - s.max(-1, keepdims=True))  # a fully masked row gets uniform weights
    rowsum = e.sum(-1)  # (B, H, S)
    e = e.astype(v.dtype)
    o = (jnp.einsum("bhst,bthd->bshd", e, v).astype(f32) / _rows_to_bshd(rowsum)).astype(v.dtype)
    return o, (q, k, v, e, rowsum, o)


def _rows_to_bshd(x):
    """Row statistics ``(B, H, S)`` -> ``(B, S, H, 1)``, to broadcast over a ``(B, S, H, d)`` array."""
    return jnp.swapaxes(x, 1, 2)[..., None]


def _attention_bwd(res, do):
    """With ``p = e / l``: ``dv = e^T (do / l)`` and the softmax's gradient
    ``p * (dp - sum_t p dp)`` as ``e * (dp - rows) / l``, whose row sums come from
    ``sum_d do * o`` (equal, since ``o = p v``): a ``(B, S, H, d)`` reduction instead of one
    over the scores; ``1 / l`` and the query's scale are folded into one ``(B, H, S)`` factor.
    Masked scores have ``e = 0`` exactly, so their gradient is 0 without a select."""
    q, k, v, e, rowsum, o = res
    f32 = jnp.float32
    inv = 1.0 / rowsum  # (B, H, S)
    dv = jnp.einsum("bhst,bshd->bthd", e, (do.astype(f32) * _rows_to_bshd(inv)).astype(e.dtype)).astype(v.dtype)
    dp = jnp.einsum("bshd,bthd->bhst", do, v).astype(f32)
    rows = jnp.einsum("bshd,bshd->bhs", do.astype(f32), o.astype(f32))
    factor = inv * (1.0 / math.sqrt(q.shape[-1]))
    ds = (e.astype(f32) * ((dp - rows[..., None]) * factor[..., None])).astype(q.dtype)
    dq = jnp.einsum("bhst,bthd->bshd", ds, k).astype(q.dtype)
    dk = jnp.einsum("bhst,bshd->bthd", ds, q).astype(k.dtype)
    return dq, dk, dv, None


attention.defvjp(_attention_fwd, _attention_bwd)


class LayerNorm(nnx.LayerNorm):
    """``nnx.LayerNorm`` over the last axis in float32 (same parameters, same forward values)
    with the gradient of :func:`layer_norm`."""

    def __init__(self, d: int, *, rngs: nnx.Rngs):
        super().__init__(d, dtype=jnp.float32, rngs=rngs)

    def __call__(self, x, *, mask=None):
        assert mask is None and self.scale is not None and self.bias is not None
        f32 = jnp.float32
        return layer_norm(x.astype(f32), self.scale[...].astype(f32), self.bias[...].astype(f32), self.epsilon)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def layer_norm(x, scale, bias, eps: float):
    """``(x - mean) * rsqrt(var + eps) * scale + bias`` over the last axis of float32 ``x``
    ``(..., D)``; ``scale``, ``bias`` ``(D,)``.  Flax's operations in flax's order (variance as
    ``E[x^2] - E[x]^2``, clipped at 0), so the values are ``nnx.LayerNorm``'s bit for bit.

    Autodiff of that formula keeps ~5 arrays of ``x``'s size for the backward pass and
    differentiates through the variance's two means; :func:`_layer_norm_bwd` keeps ``x``
    and two row statistics and uses the closed form."""
    return _layer_norm_fwd(x, scale, bias, eps)[0]


def _layer_norm_fwd(x, scale, bias, eps):
    mu = x.mean(-1, keepdims=True)
    mu2 = jax.lax.square(x).mean(-1, keepdims=True)
    var = jnp.maximum(0.0, mu2 - jax.lax.square(mu))
    r = jax.lax.rsqrt(var + eps)
    y = (x - mu) * (r * scale) + bias
    return y, (x, mu, r, scale)


def _layer_norm_bwd(eps, res, g):
    """With ``xh = (x - mean) * r`` and ``gs = g * scale``:
    ``dx = r * (gs - mean(gs) - xh * mean(gs * xh))`` (rows), ``dscale = sum g * xh``,
    ``dbias = sum g`` (over all leading axes).  Where the variance was clipped (``var`` < 0 by
    rounding) autodiff of the clip would drop the variance's term; that needs a row of
    identical values, whose ``xh`` is ~0 anyway."""
    x, mu, r, scale = res
    xh = (x - mu) * r
    gs = g * scale
    dx = r * (gs - gs.mean(-1, keepdims=True) - xh * (gs * xh).mean(-1, keepdims=True))
    lead = tuple(range(x.ndim - 1))
    return dx, (g * xh).sum(lead), g.sum(lead)


layer_norm.defvjp(_layer_norm_fwd, _layer_norm_bwd)


class MLP(nnx.Module):
    def __init__(self, d: int, ratio: int, *, dtype, rngs: nnx.Rngs):
        self.up = Dense(d, ratio * d, dtype=dtype, rngs=rngs)
        self.down = Dense(ratio * d, d, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        return self.down(jax.nn.gelu(self.up(x)))


class Residual(nnx.Module):
    """``H + alpha * dropout(f(LayerNorm(H)))``, ReZero ``alpha`` starts at 0."""

    def __init__(self, d: int, f: nnx.Module, dropout: float, *, dtype, rngs: nnx.Rngs):
        # LayerNorm in float32 whatever the compute dtype: its statistics over a float32 stream
        # (the blocks' Linear layers cast their inputs to the compute dtype themselves).
        self.norm = LayerNorm(d, rngs=rngs)
        self.f = f
        self.alpha = nnx.Param(jnp.zeros((), jnp.float32))
        self.drop = nnx.Dropout(dropout)

    def __call__(self, h, *args, deterministic: bool, rngs: nnx.Rngs | None, **kw):
        return self.around(h, lambda x: self.f(x, *args, **kw), deterministic=deterministic, rngs=rngs)

    def around(self, h, f: Callable, *, deterministic: bool = True, rngs: nnx.Rngs | None = None):
        """``H + alpha * dropout(f(LayerNorm(H)))`` with another ``f`` in place of the block's
        (the sampler's cached attention, built from ``self.f``'s projections)."""
        y = self.drop(f(self.norm(h)), deterministic=deterministic, rngs=rngs)
        return h + (self.alpha[...] * y).astype(h.dtype)


class Stack(nnx.Module):
    """A PAR Transformer: for each ``(n_attn, n_mlp)`` in ``spec``, ``n_attn`` x
    (self-attention [+ cross-attention]) then ``n_mlp`` MLP layers; final LayerNorm.

    ``causal=True, cross=True`` is a decoder; ``False, False`` the encoder.
    """

    def __init__(
        self,
        spec: LayerSpec,
        d: int,
        heads: int,
        head_dim: int,
        ratio: int,
        dropout: float,
        *,
        causal: bool,
        cross: bool,
        dtype,
        rngs: nnx.Rngs,
    ):
        self.causal = causal
        layers, kinds = [], []

        def add(kind, f):
            layers.append(Residual(d, f, dropout, dtype=dtype, rngs=rngs))
            kinds.append(kind)

        for n_attn, n_mlp in spec:
            for _ in range(n_attn):
                add("self", Attention(d, heads, head_dim, dtype=dtype, rngs=rngs))
                if cross:
                    add("cross", Attention(d, heads, head_dim, dtype=dtype, rngs=rngs))
            for _ in range(n_mlp):
                add("mlp", MLP(d, ratio, dtype=dtype, rngs=rngs))
        self.layers = nnx.List(layers)
        self.kinds = tuple(kinds)
        self.norm = LayerNorm(d, rngs=rngs)

    def __call__(self, h, context=None, *, deterministic: bool, rngs=None):
        """``h`` ``(B, S, D)``; returns ``(residual stream, LayerNorm(residual stream))``, both
        float32: under ``train.bf16`` only the blocks' matmuls run in bfloat16, so the small
        ReZero-scaled updates of deep stacks are not rounded away in the stream."""
        h = h.astype(jnp.float32)
        for kind, layer in zip(self.kinds, self.layers, strict=True):
            kw: dict[str, Any] = dict(deterministic=deterministic, rngs=rngs)
            if kind == "self":
                h = layer(h, causal=self.causal, **kw)
            elif kind == "cross":
                h = layer(h, context, **kw)
            else:
                h = layer(h, **kw)
        return h, self.norm(h)

    # -- incremental decoding (sampling, section 3.3) --------------------------

    def cross_kv(self, context):
        """Keys/values of every cross-attention layer over ``context`` ``(B, T, D)``:
        a list of ``(k, v)`` pairs, each ``(B, T, heads, head_dim)``; computed once per chunk."""
        return [
            _attention(layer).project_kv(context)
            for kind, layer in zip(self.kinds, self.layers, strict=True)
            if kind == "cross"
        ]

    def empty_cache(self, batch: int, steps: int, dtype):
        """Zeroed self-attention cache: a list of ``(k, v)``, each ``(batch, steps, heads, head_dim)``."""
        out = []
        for kind, layer in zip(self.kinds, self.layers, strict=True):
            if kind == "self":
                att = _attention(layer)
                shape = (batch, steps, att.heads, att.head_dim)
                out.append((jnp.zeros(shape, dtype), jnp.zeros(shape, dtype)))
        return out

    def cached(self, h, start, cache, cross_kv):
        """Decoder steps ``start .. start+n-1`` given the cache of steps ``< start`` (inference only).

        ``h`` ``(B, n, D)``; ``start`` int (may be traced); ``cache`` from
        :meth:`empty_cache` (its length is the window ``S``); ``cross_kv`` from
        :meth:`cross_kv`.  Returns ``(residual stream, LayerNorm(stream), new cache)``;
        the result equals rows ``start .. start+n-1`` of ``__call__`` on the full window.
        """
        h = h.astype(jnp.float32)
        n = h.shape[1]
        steps = cache[0][0].shape[1] if cache else 0
        valid = jnp.arange(steps)[None, :] <= (start + jnp.arange(n))[:, None]  # causal, (n, S)
        new_cache: list = []
        cross = iter(cross_kv)
        for kind, layer in zip(self.kinds, self.layers, strict=True):
            if kind == "self":
                f = _cached_self_attention(_attention(layer), cache[len(new_cache)], start, valid, new_cache)
            elif kind == "cross":
                f = functools.partial(_attend_to, _attention(layer), next(cross))
            else:
                f = layer.f
            h = layer.around(h, f)
        return h, self.norm(h), new_cache


def _cached_self_attention(att: Attention, cache, start, valid, new_cache: list) -> Callable:
    """``att`` as a function of its normalised input ``x`` ``(B, n, D)`` that writes the keys/values
    of ``x`` into ``cache`` at step ``start``, appends the result to ``new_cache`` and attends to it."""

    def f(x):
        k, v = (
            jax.lax.dynamic_update_slice(c, new.astype(c.dtype), (0, start, 0, 0))
            for c, new in zip(cache, att.project_kv(x), strict=True)
        )
        new_cache.append((k, v))
        return att.attend(x, k, v, valid)

    return f


def _attention(layer: Residual) -> Attention:
    """The block of a "self" or "cross" layer (``Stack.kinds`` says which layers hold one)."""
    return cast(Attention, layer.f)


def _attend_to(att: Attention, kv, x):
    return att.attend(x, *kv)
