"""Decoders: the model one step at a time, as the sampling loop drives it.

:class:`CachedDecoder` encodes once per chunk and keeps key/value caches;
:class:`RecomputeDecoder` reruns the decoders over the whole window for every
variable (what the public PyTorch implementation does), the reference for
the speed comparison (``benchmarks/model_sample.py``).  Both give the same
logits as the full teacher-forced forward pass (tested).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from ..tokens import class_to_value_device


class Decoder(Protocol):
    """Four pure functions over a per-chunk state pytree (any pytree: it rides in the loop's carry).

    ``j`` is the (traced) window step in ``[O, O + C)``; the logits are
    unmasked float32 (the loop applies the structure masks).
    """

    def begin(self, dct, inp_o, tgt_o) -> Any:
        """Encode the DCT image int32 ``(B, G, G, P*B*B)``; the ``O`` overlap steps ``inp_o``/``tgt_o``
        int32 ``(B, O, 3)`` teacher-forced.  Returns the state of step ``O``."""

    def channel(self, st, j, prev) -> tuple[Any, Any]:
        """``prev`` int32 ``(B, 3)``, the token before step ``j`` -> (logits ``(B, P*B*B+1)``, state)."""

    def position(self, st, j, c) -> tuple[Any, Any]:
        """``c`` int32 ``(B,)``, the channel just drawn -> (logits ``(B, G*G)``, state)."""

    def value(self, st, j, p) -> tuple[Any, Any]:
        """``p`` int32 ``(B,)``, the position just drawn -> (logits ``(B, 2*clip)``, state)."""


class CachedState(NamedTuple):
    e_input: Any  # (B, G'^2, D) the encoded DCT image
    cross: Any  # per decoder: the cross-attention (k, v) of every layer, computed once per chunk
    caches: Any  # per decoder: the self-attention (k, v) caches, (B, O + C, heads, head_dim) each
    h_c: Any  # (B, 1, D) the channel decoder's residual stream at this step
    h_p: Any  # (B, 1, D) the position decoder's
    keys: Any  # (B, G*G, D) the position pointer's keys, or None (model.pointer_keys)
    dense: Any  # int32 (B, G, G, P*B*B): the DCT image of every token before this step, or None
    c: Any  # int32 (B,) the channel drawn at this step (model.window_context), or None
    window: Any  # int32 (B, O + C, 3): token j of the chunk at row j, PAD elsewhere (model.window_pointer)


class CachedDecoder:
    """Encoder once per chunk, cross-attention K/V once per chunk, self-attention K/V caches."""

    def __init__(self, model, hw, label):
        self.m, self.hw = model, hw
        self.label = label if model.emb_class is not None else None
        self.S = model.cfg.model.overlap + model.cfg.model.chunk_size
        self.stacks = (model.channel_decoder, model.position_decoder, model.value_decoder)
        self.context = model.context_in is not None
        self.copy = model.copy_query is not None
        self.overlap = model.cfg.model.overlap

    def begin(self, dct, inp_o, tgt_o) -> CachedState:
        m, B = self.m, dct.shape[0]
        e_input = m.encode(dct, self.label)
        cross = [s.cross_kv(e_input) for s in self.stacks]
        caches = [s.empty_cache(B, self.S, m.compute_dtype) for s in self.stacks]
        ov = inp_o.shape[1]
        if ov:
            e = m.embed_inputs(inp_o, jnp.arange(ov), self.hw, self.label)
            h_c, _, caches[0] = self.stacks[0].cached(e, 0, caches[0], cross[0])
            h_p, _, caches[1] = self.stacks[1].cached(h_c + m.emb_channel(tgt_o[..., 0]), 0, caches[1], cross[1])
            x = m.value_input(h_p, e_input, tgt_o[..., 1], self.hw)
            if self.context:  # the overlap's tokens are all in dct already
                x = x + m.window_context_input(dct, tgt_o[..., 0], tgt_o[..., 1], self.hw)
            _, _, caches[2] = self.stacks[2].cached(x, 0, caches[2], cross[2])
        d = m.cfg.model.d_model
        zero = jnp.zeros((B, 1, d), e_input.dtype)
        return CachedState(
            e_input=e_input,
            cross=cross,
            caches=caches,
            h_c=zero,
            h_p=zero,
            keys=m.pointer_keys(e_input, self.hw),
            dense=dct if self.context else None,
            c=jnp.zeros((B,), jnp.int32) if self.context else None,
            window=jnp.full((B, self.S, 3), m.num_channels + 2, jnp.int32) if self.copy else None,
        )

    def _step(self, st: CachedState, i: int, x, j):
        h, n, cache = self.stacks[i].cached(x, j, st.caches[i], st.cross[i])
        caches = list(st.caches)
        caches[i] = cache
        return h, n[:, 0].astype(jnp.float32), st._replace(caches=caches)

    def channel(self, st: CachedState, j, prev):
        x = self.m.embed_inputs(prev[:, None], j[None], self.hw, self.label)
        h, n, st = self._step(st, 0, x, j)
        if self.context:  # the token of step j - 1 joins the image, unless the overlap's (in dct already)
            st = st._replace(dense=_place(st.dense, prev, self.hw, (j > self.overlap), self.m))
        if self.copy:  # row j - 1 of the window (the overlap's rows are masked out when read)
            st = st._replace(window=jax.lax.dynamic_update_slice(st.window, prev[:, None], (0, j - 1, 0)))
        return self.m.head_channel(n), st._replace(h_c=h)

    def position(self, st: CachedState, j, c):
        h, n, st = self._step(st, 1, st.h_c + self.m.emb_channel(c[:, None]), j)
        logits = self.m.position_logits(n, st.keys)
        if self.copy:
            _, before = self.m.window(st.window, j[None])
            logits = logits + self.m.window_pointer_logits(n[:, None], self.hw, (st.window, before))[:, 0]
        return logits, st._replace(h_p=h, c=c if self.context else None)

    def value(self, st: CachedState, j, p):
        x = self.m.value_input(st.h_p, st.e_input, p[:, None], self.hw)
        if self.context:
            x = x + self.m.window_context_input(st.dense, st.c[:, None], p[:, None], self.hw)
        _, n, st = self._step(st, 2, x, j)
        return self.m.head_value(n), st


def _place(dense, tok, hw, when, model):
    """``dense`` with the value of token ``tok`` int32 ``(B, 3)`` (channel, position, value
    class) added at its place, where ``when`` and the token is a coefficient (not stop,
    BOS or PAD)."""
    nch, clip = model.num_channels, model.cfg.data.clip
    c, p = tok[:, 0], tok[:, 1]
    ok = when & (c < nch)
    v = class_to_value_device(tok[:, 2], clip)
    b = jnp.arange(dense.shape[0])
    row, col = p // hw[:, 1], p % hw[:, 1]
    # Added, not set: the image before the chunk never holds a chunk token, and adding is what
    # the teacher-forced pass does (Model.window_context_values), for any window.
    return dense.at[b, row, col, jnp.clip(c, 0, nch - 1)].add(jnp.where(ok, v, 0))


class RecomputeState(NamedTuple):
    e_input: Any  # (B, G'^2, D) the encoded DCT image
    dct: Any  # int32 (B, G, G, P*B*B) that image
    inp: Any  # int32 (B, O + C, 3) the window's decoder inputs, filled in step by step
    tgt: Any  # int32 (B, O + C, 3) its targets, likewise


class RecomputeDecoder:
    """Reference: encoder once per chunk, then every variable reruns the decoders it needs
    over the whole ``O + C`` window (channel: 1 decoder, position: 2, value: 3)."""

    def __init__(self, model, hw, label):
        self.m, self.hw = model, hw
        self.label = label if model.emb_class is not None else None
        self.C = model.cfg.model.chunk_size
        n, clip = model.num_channels, model.cfg.data.clip
        self.pad = jnp.array([n + 2, 0, 2 * clip], jnp.int32)

    def begin(self, dct, inp_o, tgt_o) -> RecomputeState:
        B = dct.shape[0]
        pad = jnp.broadcast_to(self.pad, (B, self.C, 3))
        return RecomputeState(
            e_input=self.m.encode(dct, self.label),
            dct=dct,
            inp=jnp.concatenate([inp_o, pad], 1),
            tgt=jnp.concatenate([tgt_o, pad], 1),
        )

    def _logits(self, st: RecomputeState, upto: int, j):
        out = self.m.decode(st.e_input, st.inp, st.tgt, self.hw, self.label, dense=st.dct, upto=upto)
        return jax.lax.dynamic_index_in_dim(out[upto - 1], j, axis=1, keepdims=False)

    def channel(self, st: RecomputeState, j, prev):
        st = st._replace(inp=st.inp.at[:, j].set(prev))
        return self._logits(st, 1, j), st

    def position(self, st: RecomputeState, j, c):
        st = st._replace(tgt=st.tgt.at[:, j, 0].set(c))
        return self._logits(st, 2, j), st

    def value(self, st: RecomputeState, j, p):
        st = st._replace(tgt=st.tgt.at[:, j, 1].set(p))
        return self._logits(st, 3, j), st
