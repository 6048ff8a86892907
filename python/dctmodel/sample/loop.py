"""The chunked sampling loop: pure JAX, any :class:`~dctmodel.sample.decoders.Decoder`, jitted whole.

One ``jax.lax.while_loop`` over chunks around another over the steps of a
chunk.  Each step draws channel -> position -> value under the structure
masks (and a per-sample ``min_rank``), writes the token and scatters the new
coefficient into the DCT image that the next chunk encodes.  Each sample
stops on its own stop token and then rides along, writing nothing.

Chunks start where training's do: at ``origin + k * C`` (``origin`` 0, or the
first chroma token for a ``train.target="chroma"`` model).  A prefix that
ends inside a chunk is therefore not the encoder's whole input: the chunk
starts at the boundary before its end, and its remaining tokens are fed
through the decoders as known tokens (teacher-forced) before the first draw.
Starting the chunk at the prefix's end instead would show the model a window
it never saw in training (continuations of half a scene drew colour noise).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import masks as M
from .decoders import Decoder
from .draw import SampleSettings, draw


class Samples(NamedTuple):
    """The batch being sampled (what the loops carry from step to step and chunk to chunk)."""

    buf: Any  # int32 (B, max_tokens + 1, 3) tokens in model encoding (value as a class)
    n: Any  # int32 (B,) tokens in buf (the stop token included once drawn)
    done: Any  # bool (B,) whether the sample drew its stop token
    dct: Any  # int32 (B, G, G, P*B*B) every token so far scattered: what the next chunk encodes


class StepCarry(NamedTuple):
    j: Any  # int32 () window step in [O, O + C)
    dec: Any  # the decoder's state
    prev: Any  # int32 (B, 3) the token before step j
    samples: Samples
    key: Any
    start: Any  # int32 (B,) the chunk's first token index (step O)
    known: Any  # int32 (B,) tokens already in buf when the chunk began: steps before are forced


class ChunkCarry(NamedTuple):
    chunk: Any  # int32 () chunks run
    samples: Samples
    key: Any


class Sampled(NamedTuple):
    """What :func:`sample_loop` returns."""

    buf: Any  # int32 (B, max_tokens + 1, 3) tokens (stop included when drawn)
    n: Any  # int32 (B,) lengths
    done: Any  # bool (B,) whether each sample drew its stop token
    chunks: Any  # int32 () number of chunks run


def sample_loop(
    dec: Decoder,
    key,
    buf,
    n,
    dct,
    hw,
    min_rank,
    *,
    tables: M.MaskTables,
    clip: int,
    overlap: int,
    chunk: int,
    max_tokens: int,
    max_chunks: int,
    settings: SampleSettings,
    early_exit: bool = True,
    origin=None,
) -> Sampled:
    """Chunked autoregressive sampling; traceable (jit it).

    Args:
      dec: a decoder built for this batch.
      buf: int32 ``(B, max_tokens + 1, 3)``: the first ``n[b]`` rows of row ``b``
        hold the prefix in model encoding (channel, position, value class).
      n: int32 ``(B,)`` prefix lengths; dct: int32 ``(B, G, G, P*B*B)`` the prefix
        scattered; hw: int32 ``(B, 2)``; min_rank: int32 ``(B,)`` lowest channel rank
        (in the order) a new token may have.
      early_exit: stop a chunk as soon as every sample is done (False: always run
        all ``C`` steps, for timing).
      origin: int32 ``(B,)`` where chunk 0 starts (None: 0), see the module docstring.
    Returns :class:`Sampled` ``(buf, n, done, chunks)``.
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

    origin = jnp.zeros((B,), jnp.int32) if origin is None else origin
    wb = hw[:, 1]

    def step(carry: StepCarry) -> StepCarry:
        j, prev, (buf, n, done, dct) = carry.j, carry.prev, carry.samples
        # A token of the prefix inside this chunk: fed as known, not drawn (module docstring).
        t = carry.start + j - overlap
        forced = t < carry.known
        f_tok = tokens_at(buf, t[:, None])[:, 0]
        key, k1, k2, k3 = jax.random.split(carry.key, 4)
        lc, st = dec.channel(carry.dec, j, prev)
        lc = M.mask_channel(tables, lc.astype(jnp.float32)[:, None], prev[:, None], hw, rank_ok[:, None])[:, 0]
        c = draw(k1, lc, T[0], K[0], Pp[0])
        c = jnp.where(done | (n >= max_tokens), nch, c)  # finished rows and full buffers: stop
        c = jnp.where(forced, f_tok[:, 0], c)
        stop = c == nch
        lp, st = dec.position(st, j, c)
        lp = M.mask_position(tables, lp.astype(jnp.float32)[:, None], prev[:, None], c[:, None], hw)[:, 0]
        p = jnp.where(forced, f_tok[:, 1], jnp.where(stop, 0, draw(k2, lp, T[1], K[1], Pp[1])))
        lv, st = dec.value(st, j, p)
        v = jnp.where(stop, none_v, draw(k3, lv.astype(jnp.float32), T[2], K[2], Pp[2]))
        v = jnp.where(forced, f_tok[:, 2], v)
        tok = jnp.stack([c, p, v], axis=-1)
        write = ~done & ~forced  # a forced token is in buf already
        at = jnp.minimum(n, L - 1)
        buf = buf.at[rows, at].set(jnp.where(write[:, None], tok, buf[rows, at]))
        # Scatter the coefficient into the DCT image the next chunk will encode (a forced one
        # goes back where the chunk's start took it out).
        r, col, ch = p // wb, p % wb, jnp.minimum(c, nch - 1)
        val = jnp.where(v < clip, v - clip, v - clip + 1)
        dct = dct.at[rows, r, col, ch].set(jnp.where((write | forced) & ~stop, val, dct[rows, r, col, ch]))
        return carry._replace(j=j + 1, dec=st, prev=tok, samples=Samples(buf, n + write, done | stop, dct), key=key)

    def chunk_body(c: ChunkCarry) -> ChunkCarry:
        s = c.samples
        known = s.n
        start = origin + jnp.maximum(known - origin, 0) // chunk * chunk
        # The encoder sees tokens [0, start): the prefix's tokens past the chunk boundary come out
        # of the image (each (block, channel) holds one token, so zeroing removes exactly them).
        idx = start[:, None] + jnp.arange(chunk)
        late = tokens_at(s.buf, idx)
        ch = jnp.where(idx < known[:, None], late[..., 0], nch)  # others: out of range, dropped
        dct = s.dct.at[rows[:, None], late[..., 1] // wb[:, None], late[..., 1] % wb[:, None], ch].set(0, mode="drop")
        o = jnp.arange(overlap)
        st = dec.begin(
            dct, tokens_at(s.buf, start[:, None] - overlap - 1 + o), tokens_at(s.buf, start[:, None] - overlap + o)
        )
        prev = tokens_at(s.buf, start[:, None] - 1)[:, 0]

        def cond(sc: StepCarry):
            return (sc.j < overlap + chunk) & (~jnp.all(sc.samples.done) if early_exit else True)

        first = StepCarry(jnp.int32(overlap), st, prev, s._replace(dct=dct), c.key, start, known)
        out = jax.lax.while_loop(cond, step, first)
        return ChunkCarry(c.chunk + 1, out.samples, out.key)

    def chunk_cond(c: ChunkCarry):
        return (c.chunk < max_chunks) & ~jnp.all(c.samples.done)

    init = ChunkCarry(jnp.int32(0), Samples(buf, n, jnp.zeros((B,), bool), dct), key)
    out = jax.lax.while_loop(chunk_cond, chunk_body, init)
    return Sampled(out.samples.buf, out.samples.n, out.samples.done, out.chunk)
