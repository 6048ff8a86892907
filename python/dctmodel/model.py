"""DCTransformer (Nash et al. 2021, section 3.2 and appendix B) in Flax NNX; its blocks are in ``layers.py``.

    dct image of the input prefix --(sign*log1p, strided conv, 2-D pos emb)--> encoder --> E_input
    previous tokens (C + P + V + P_chunk) --> channel decoder  --> H_channel --> channel logits
    H_channel + C(next channel)           --> position decoder --> H_position --> position logits
    H_position + gather(E_input, p_next)  --> value decoder    --> H_value --> value logits

Every decoder block is right-masked self-attention, cross-attention into
E_input, then the block's MLP layers (PAR spec ``(n_attention, n_mlp)``).
Every sublayer is ``H + alpha * dropout(f(LayerNorm(H)))`` with ReZero
``alpha`` initialised at 0 (appendix B, eq. 10).

Shapes: ``B`` batch, ``S = overlap + chunk`` decoder steps, ``G`` the DCT
grid side, ``G' = ceil(G / stride)`` after downsampling, ``D`` d_model.
"""

from __future__ import annotations

import functools
import math
from typing import Any, cast

import jax
import jax.numpy as jnp
from flax import nnx

from . import masks as M
from .config import Config
from .layers import Dense, Stack, dense_dot_general
from .tokens import class_to_value_device, dense_dct_device


def _squash(v):
    """DCT values -> features: ``sign(v) * log1p(|v|)`` keeps +-4000 within +-8.3 and stays injective."""
    v = v.astype(jnp.float32)
    return jnp.sign(v) * jnp.log1p(jnp.abs(v))


class DCTransformer(nnx.Module):
    def __init__(self, cfg: Config, *, rngs: nnx.Rngs):
        m, d = cfg.model, cfg.model.d_model
        dtype = jnp.bfloat16 if cfg.train.bf16 else jnp.float32
        self.cfg = cfg
        self.compute_dtype = dtype  # matmuls and the sampler's key/value caches
        self.num_channels = cfg.data.num_channels
        self.grid = cfg.data.grid
        self.stride = m.downsample_stride
        self.kernel = m.downsample_kernel
        self.grid_out = -(-self.grid // self.stride)
        hd = m.heads_dim
        self.mask_tables = M.MaskTables.from_config(cfg)

        # Encoder: strided conv embeds (and optionally downsamples) the dense DCT image.
        self.conv = nnx.Conv(
            self.num_channels,
            d,
            kernel_size=(self.kernel, self.kernel),
            strides=(self.stride, self.stride),
            padding="VALID",
            dtype=dtype,
            rngs=rngs,
        )
        self.enc_row = nnx.Embed(self.grid_out, d, dtype=dtype, rngs=rngs)
        self.enc_col = nnx.Embed(self.grid_out, d, dtype=dtype, rngs=rngs)
        self.encoder = Stack(
            m.encoder_spec,
            d,
            m.num_heads,
            hd,
            m.mlp_ratio,
            m.dropout,
            causal=False,
            cross=False,
            dtype=dtype,
            rngs=rngs,
        )

        # Decoder token embeddings: channel ids include stop, BOS, PAD; value classes include "none".
        self.emb_channel = nnx.Embed(self.num_channels + 3, d, dtype=dtype, rngs=rngs)
        self.emb_row = nnx.Embed(self.grid, d, dtype=dtype, rngs=rngs)
        self.emb_col = nnx.Embed(self.grid, d, dtype=dtype, rngs=rngs)
        self.emb_value = nnx.Embed(cfg.value_vocab + 1, d, dtype=dtype, rngs=rngs)
        self.emb_chunk = nnx.Embed(m.overlap + m.chunk_size, d, dtype=dtype, rngs=rngs)
        self.emb_class = nnx.Embed(m.num_classes, d, dtype=dtype, rngs=rngs) if m.num_classes else None
        # The image's block grid (Hb, Wb): a position class is row * Wb + col, so the position
        # head must know Wb (images of several aspect ratios share one vocabulary).
        self.emb_hb = nnx.Embed(self.grid + 1, d, dtype=dtype, rngs=rngs)
        self.emb_wb = nnx.Embed(self.grid + 1, d, dtype=dtype, rngs=rngs)
        self.drop = nnx.Dropout(m.dropout)

        def decoder(layer_spec):
            return Stack(
                layer_spec, d, m.num_heads, hd, m.mlp_ratio, m.dropout, causal=True, cross=True, dtype=dtype, rngs=rngs
            )

        self.channel_decoder = decoder(m.channel_spec)
        self.position_decoder = decoder(m.position_spec)
        self.value_decoder = decoder(m.value_spec)
        # Heads in float32: logits feed a softmax over up to 8000 classes.
        self.head_channel = Dense(d, cfg.channel_vocab, rngs=rngs)
        self.head_position = Dense(d, cfg.position_vocab, rngs=rngs)
        self.head_value = Dense(d, cfg.value_vocab, rngs=rngs)
        # Pointer term of the position logits (model.position_pointer): query from H_position,
        # one key per block from the encoder's cell there plus the block's position embedding.
        self.pointer_query = Dense(d, d, rngs=rngs) if m.position_pointer else None
        self.pointer_key = Dense(d, d, rngs=rngs) if m.position_pointer else None
        # model.window_pointer: a query from H_position against 9 keys (one per neighbour offset)
        # of each earlier chunk token's channel + value embedding.
        self.copy_query = Dense(d, d, rngs=rngs) if m.window_pointer else None
        self.copy_key = Dense(d, 9 * d, rngs=rngs) if m.window_pointer else None
        # model.window_context: 3x3 neighbourhood x every channel -> d_model.
        self.context_in = Dense(9 * self.num_channels, d, rngs=rngs) if m.window_context else None
        b2 = cfg.data.block_size**2
        halved = cfg.data.subsampling == "4:2:0" and cfg.data.planes == 3
        # Block-grid step of each channel's plane: 4:2:0 chroma blocks sit at every other luma block.
        self.plane_step = tuple(1 + int(halved and c >= b2) for c in range(self.num_channels))

    # -- pieces -------------------------------------------------------------

    def encode(self, dct, label=None, *, deterministic: bool = True, rngs=None):
        """int32 ``(B, G, G, P*B*B)`` -> ``(B, G'*G', D)``."""
        x = _squash(dct)
        k, s, g = self.kernel, self.stride, self.grid
        # Output cell i covers input rows [i*s, i*s + s) (what the value decoder's gather assumes).
        lo = (k - s) // 2
        hi = max((self.grid_out - 1) * s + k - g - lo, 0)
        x = jnp.pad(x, ((0, 0), (lo, hi), (lo, hi), (0, 0)))
        go = self.grid_out
        x = self.conv(x) if k != s else self.patch_conv(x)
        idx = jnp.arange(go)
        x = x + self.enc_row(idx)[None, :, None, :] + self.enc_col(idx)[None, None, :, :]
        x = x.reshape(x.shape[0], go * go, -1)
        if self.emb_class is not None and label is not None:
            x = x + self.emb_class(label)[:, None, :]
        x = self.drop(x, deterministic=deterministic, rngs=rngs)
        _, e = self.encoder(x, deterministic=deterministic, rngs=rngs)
        return e

    def patch_conv(self, x):
        """``self.conv`` when kernel == stride: non-overlapping ``s x s`` patches times the
        flattened kernel, one matrix product.  Same values as the convolution; its
        backward pass is a plain matmul, which XLA:CPU runs several times faster than
        the convolution's (3 ms of the ``tiny`` step's 120 went to that one gradient).

        ``x`` ``(B, G'*s, G'*s, C)`` -> ``(B, G', G', D)``."""
        b, s, go, c = x.shape[0], self.stride, self.grid_out, x.shape[-1]
        dtype = self.conv.dtype
        patches = x.reshape(b, go, s, go, s, c).transpose(0, 1, 3, 2, 4, 5).reshape(b * go * go, s * s * c)
        kernel = self.conv.kernel[...]  # (s, s, C, D): flattened in the patches' (row, col, channel) order
        y = dense_dot_general(
            patches.astype(dtype), kernel.reshape(-1, kernel.shape[-1]).astype(dtype), (((1,), (0,)), ((), ()))
        )
        bias = cast(nnx.Param, self.conv.bias)  # nnx.Conv has a bias unless use_bias=False
        return (y + bias[...].astype(dtype)).reshape(b, go, go, -1)

    def embed_position(self, p, hw):
        """2-D embedding of positions ``p`` ``(B, S)`` in each image's own ``Wb`` -> ``(B, S, D)``."""
        wb = hw[:, 1:2]
        row = jnp.clip(p // wb, 0, self.grid - 1)
        return self.emb_row(row) + self.emb_col(p % wb)

    def value_input(self, h_position, e_input, p, hw):
        """The value decoder's input at next positions ``p`` ``(B, S)``: ``H_position`` plus the
        encoder's cell there (eq. 8) and, with ``model.value_position``, the position's own
        embedding, which tells apart the ``stride^2`` blocks that share one downsampled cell."""
        x = h_position + self.gather_input(e_input, p, hw)
        if self.cfg.model.value_position:
            x = x + self.embed_position(p, hw)
        return x

    def neighbours(self, c, p, hw):
        """The 3x3 blocks around positions ``p`` int32 ``(B, n)`` in the grid of channels ``c``'s
        planes (4:2:0 chroma: every other luma block), row-major: block rows and columns int32
        ``(B, n, 9)`` each, and bool ``(B, n, 9)``: inside the image ``hw`` ``(B, 2)``."""
        step = jnp.asarray(self.plane_step, jnp.int32)[jnp.clip(c, 0, self.num_channels - 1)][..., None]
        off = jnp.arange(-1, 2)
        r = (p // hw[:, 1:2])[..., None] + jnp.repeat(off, 3) * step
        q = (p % hw[:, 1:2])[..., None] + jnp.tile(off, 3) * step
        return r, q, (r >= 0) & (r < hw[:, 0:1, None]) & (q >= 0) & (q < hw[:, 1:2, None])

    def window(self, inp, steps):
        """The chunk's own earlier tokens, as :meth:`window_context_values` and
        :meth:`window_pointer_logits` read them: ``(tokens, before)``.  Token ``j`` of the window is
        the input of step ``j + 1`` (what the sampler has when it draws step ``j + 1``); ``before``
        bool ``(len(steps), S)`` marks, for each of ``steps``, the tokens of steps ``>= overlap``
        (the overlap's are in the encoder's image) that precede it."""
        tok = jnp.concatenate([inp[:, 1:], jnp.full_like(inp[:, :1], self.num_channels + 2)], 1)
        t = jnp.arange(inp.shape[1])
        return tok, (t[None, :] < steps[:, None]) & (t[None, :] >= self.cfg.model.overlap)

    def window_context_values(self, dense, c, p, hw, window=None):
        """What is drawn around each value's block: float32 ``(B, n, 9, P*B*B)`` coefficient values.

        ``dense`` int32 ``(B, G, G, P*B*B)``: the DCT image before the window's first chunk
        step; ``c``/``p`` int32 ``(B, n)``: the channel and position of the token whose value
        comes next; ``window``: None, or ``(tokens, before)``: tokens int32 ``(B, T, 3)``
        (channel, position, value class) drawn in the chunk so far and bool ``(n, T)``, which
        of them precede each step.  Reads the 3x3 blocks around ``p`` in the grid of ``c``'s
        plane (4:2:0 chroma: every other luma block; row-major offsets), every channel, 0
        outside the image.

        Why: a value follows its neighbours' values (an object's hue, an edge's sign), and
        the encoder's image is refreshed once per chunk, its 3x3 embedding sees no chroma
        neighbour at 4:2:0 (they lie two cells apart), and attention must learn to find a
        neighbour drawn earlier in the chunk by its position embedding."""
        B, n = p.shape
        nch, g = self.num_channels, self.grid
        row, col = (p // hw[:, 1:2])[..., None], (p % hw[:, 1:2])[..., None]
        r, q, inside = self.neighbours(c, p, hw)
        dy, dx = r - row, q - col  # (B, n, 9)
        flat = jnp.clip(r, 0, g - 1) * g + jnp.clip(q, 0, g - 1)
        vals = dense.reshape(B, g * g, nch)[jnp.arange(B)[:, None], flat.reshape(B, n * 9)]
        vals = jnp.where(inside[..., None], vals.reshape(B, n, 9, nch), 0).astype(jnp.float32)
        if window is not None:
            tok, before = window
            tc, tp = tok[..., 0], tok[..., 1]
            real = tc < nch
            tv = class_to_value_device(tok[..., 2], self.cfg.data.clip)
            # Offset k of window token j from step t's block, if it is one of the nine.
            ddy = (tp // hw[:, 1:2])[:, None, :] - row  # (B, n, T)
            ddx = (tp % hw[:, 1:2])[:, None, :] - col
            hit = (ddy[..., None] == dy[:, :, None, :]) & (ddx[..., None] == dx[:, :, None, :])  # (B, n, T, 9)
            hit &= (before[None, :, :] & real[:, None, :])[..., None]
            onehot = jax.nn.one_hot(jnp.where(real, tc, 0), nch, dtype=jnp.float32) * tv[..., None].astype(jnp.float32)
            vals = vals + jnp.einsum("btjk,bjc->btkc", hit.astype(jnp.float32), onehot)
        return vals

    def window_context_input(self, dense, c, p, hw, window=None):
        """:meth:`window_context_values` squashed and embedded: float32 ``(B, n, D)``, added to
        the value decoder's input."""
        x = _squash(self.window_context_values(dense, c, p, hw, window))
        return cast(nnx.Linear, self.context_in)(x.reshape(*p.shape, -1))

    def window_pointer_logits(self, n, hw, window):
        """Extra position logits float32 ``(B, n, G*G)`` from the position decoder's normalised
        output ``n`` ``(B, n, D)`` and ``window`` = ``(tokens, before)`` as in
        :meth:`window_context_values`: each earlier chunk token adds, to the block it sits on
        and to each of its 3x3 neighbours (in its plane's grid), the dot product of a query
        from ``n`` with a key of (its channel, its value, the offset).

        Why: the pointer's keys come from the image before the chunk, so a block that got its
        Cb value earlier in the chunk does not yet tell the pointer that its Cr (or the next
        block of the object) belongs there; attention has to learn that from position
        embeddings."""
        tok, before = window
        B, T = tok.shape[:2]
        nch, d = self.num_channels, n.shape[-1]
        tc, tp = tok[..., 0], tok[..., 1]
        real = tc < nch
        e = self.emb_channel(jnp.where(real, tc, 0)) + self.emb_value(jnp.where(real, tok[..., 2], 0))
        keys = cast(nnx.Linear, self.copy_key)(e.astype(jnp.float32)).reshape(B, T, 9, d)
        q = cast(nnx.Linear, self.copy_query)(n)
        a = jnp.einsum("bnd,btkd->bntk", q, keys) / math.sqrt(d)
        a = a * (before[None, :, :] & real[:, None, :])[..., None]
        r, q_, inside = self.neighbours(tc, tp, hw)
        where = jax.nn.one_hot(jnp.where(inside, r * hw[:, 1:2, None] + q_, -1), self.grid**2, dtype=jnp.float32)
        return jnp.einsum("bntk,btkp->bnp", a, where)

    def pointer_keys(self, e_input, hw):
        """Keys of every position class for the pointer term, float32 ``(B, G*G, D)``, or None
        without ``model.position_pointer``.  Computed once per chunk (they depend on the
        encoded prefix only)."""
        if self.pointer_key is None:
            return None
        p = jnp.broadcast_to(jnp.arange(self.grid * self.grid), (e_input.shape[0], self.grid * self.grid))
        x = self.gather_input(e_input, p, hw) + self.embed_position(p, hw)
        return self.pointer_key(x.astype(jnp.float32))

    def position_logits(self, n, keys):
        """Position logits, float32 ``(B, ..., G*G)``, from the position decoder's normalised
        output ``n`` ``(B, ..., D)`` and :meth:`pointer_keys`.

        Why the pointer: a class-per-block head has to learn, from scratch and for every block
        separately, where the blocks worth a token lie (e.g. chroma only where the luma already
        drawn shows an object).  The dot product of a query with each block's encoder cell reads
        that from what is already drawn, the same way for every block."""
        logits = self.head_position(n)
        if keys is None:
            return logits
        q = cast(nnx.Linear, self.pointer_query)(n)
        return logits + jnp.einsum("b...d,bpd->b...p", q, keys) / math.sqrt(q.shape[-1])

    def gather_input(self, e_input, p, hw):
        """``E_input`` at the (downsampled) cell of positions ``p`` ``(B, S)`` -> ``(B, S, D)``."""
        wb = hw[:, 1:2]
        cell = (jnp.clip(p // wb, 0, self.grid - 1) // self.stride) * self.grid_out + (p % wb) // self.stride
        return jnp.take_along_axis(e_input, cell[..., None], axis=1)

    # -- forward ------------------------------------------------------------

    def __call__(
        self,
        batch: dict,
        *,
        deterministic: bool = True,
        rngs: nnx.Rngs | None = None,
        structure_masks: bool | None = None,
    ):
        """Logits for one batch of chunks.

        ``batch``: ``dct`` int32 ``(B, G, G, P*B*B)`` (or ``prefix``, see
        :meth:`encoder_input`), ``inp``/``tgt`` int32
        ``(B, S, 3)``, ``hw`` int32 ``(B, 2)``, optional ``label`` int32 ``(B,)``.
        Returns float32 logits ``(B, S, P*B*B+1)``, ``(B, S, G*G)``, ``(B, S, 2*clip)``.
        """
        kw: dict[str, Any] = dict(deterministic=deterministic, rngs=rngs)
        inp, tgt, hw = batch["inp"], batch["tgt"], batch["hw"]
        label = batch.get("label") if self.emb_class is not None else None
        dense = self.encoder_input(batch)
        e_input = self.encode(dense, label, **kw)
        logits = self.decode(e_input, inp, tgt, hw, label, dense=dense, **kw)
        if self.cfg.model.structure_masks if structure_masks is None else structure_masks:
            return M.mask_logits(self.mask_tables, logits, inp, tgt, hw)
        return logits

    def encoder_input(self, batch: dict):
        """The dense DCT image int32 ``(B, G, G, P*B*B)``: ``batch["dct"]``, or ``batch["prefix"]``
        (int32 ``(B, Lp, 3)`` tokens, as the training batches carry it) scattered here."""
        if "dct" in batch:
            return batch["dct"]
        return dense_dct_device(batch["prefix"], batch["hw"], self.grid, self.num_channels)

    def embed_inputs(self, inp, steps, hw, label=None):
        """Decoder input embeddings of previous tokens ``inp`` int32 ``(B, n, 3)`` at window
        steps ``steps`` int32 ``(n,)`` -> ``(B, n, D)`` (no dropout)."""
        e = (
            self.emb_channel(inp[..., 0])
            + self.embed_position(inp[..., 1], hw)
            + self.emb_value(inp[..., 2])
            + self.emb_chunk(steps)[None]
            + (self.emb_hb(hw[:, 0]) + self.emb_wb(hw[:, 1]))[:, None, :]
        )
        if label is not None and self.emb_class is not None:
            e = e + self.emb_class(label)[:, None, :]
        return e

    def decode(
        self, e_input, inp, tgt, hw, label=None, *, dense=None, deterministic: bool = True, rngs=None, upto: int = 3
    ):
        """The three decoders over a whole window (teacher forcing), without masks.

        ``e_input`` ``(B, G'^2, D)``; ``inp``/``tgt`` int32 ``(B, S, 3)``; ``dense`` the
        encoder's int32 DCT image (needed with ``model.window_context``).  Returns the
        first ``upto`` of (channel, position, value) float32 logits, each ``(B, S, vocab)``.
        """
        kw: dict[str, Any] = dict(deterministic=deterministic, rngs=rngs)
        e = self.drop(self.embed_inputs(inp, jnp.arange(inp.shape[1]), hw, label), **kw)
        h_channel, n = self.channel_decoder(e, e_input, **kw)
        out = [self.head_channel(n.astype(jnp.float32))]
        window = self.window(inp, jnp.arange(inp.shape[1]))
        if upto > 1:
            # Teacher forcing: the position decoder knows the next channel (eq. 6)...
            h_position, n = self.position_decoder(h_channel + self.emb_channel(tgt[..., 0]), e_input, **kw)
            n = n.astype(jnp.float32)
            pos = self.position_logits(n, self.pointer_keys(e_input, hw))
            if self.copy_query is not None:
                pos = pos + self.window_pointer_logits(n, hw, window)
            out.append(pos)
        if upto > 2:
            # ...and the value decoder the next position, through the encoder's cell there (eq. 8).
            x = self.value_input(h_position, e_input, tgt[..., 1], hw)
            if self.context_in is not None:
                if dense is None:
                    raise ValueError("model.window_context: decode needs the encoder's dense DCT image")
                x = x + self.window_context_input(dense, tgt[..., 0], tgt[..., 1], hw, window)
            _, n = self.value_decoder(x, e_input, **kw)
            out.append(self.head_value(n.astype(jnp.float32)))
        return tuple(out)


@functools.cache
def _skeleton(cfg: Config):
    """``(graphdef, abstract state)`` of ``cfg``'s model, built once per config without allocating."""
    return nnx.split(nnx.eval_shape(lambda: DCTransformer(cfg, rngs=nnx.Rngs(0))))


def abstract_params(cfg: Config) -> dict:
    """The structure of :func:`model_from_params`' ``params``: a pure dict of ``jax.ShapeDtypeStruct``."""
    return nnx.to_pure_dict(_skeleton(cfg)[1])


def model_from_params(cfg: Config, params: dict) -> DCTransformer:
    """The DCTransformer of ``cfg`` holding ``params`` (``nnx.to_pure_dict`` of a model's state,
    as training and checkpoints keep them); cheap, and traceable inside ``jit``."""
    graphdef, template = _skeleton(cfg)
    state = jax.tree.map(lambda v: v, template)
    nnx.replace_by_pure_dict(state, params)
    return nnx.merge(graphdef, state)


def count_params(cfg: Config) -> int:
    """Parameter count without allocating (``nnx.eval_shape``)."""
    abstract = nnx.eval_shape(lambda: DCTransformer(cfg, rngs=nnx.Rngs(0)))
    return int(sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(abstract, nnx.Param))))
