"""Chunked training (section 3.1, appendix C): chunk building, chunk selection, length filter.

A sequence of ``L`` tokens (stop token included) is split into chunks of ``C``
tokens starting at ``0, C, 2C, ...``; the last one holds the remaining
``L mod C`` (or ``C``).  Training on chunk ``k`` (start ``s = k*C``) uses

* the *input prefix* ``tokens[:s]`` scattered into the dense DCT image that
  the encoder sees, and
* a decoder window of ``O + C`` steps.  Step ``j`` predicts token
  ``i = s - O + j`` from the previous token ``i - 1`` (the decoder input).
  Only the ``C`` steps with ``s <= i < L`` carry a loss; the ``O`` overlap steps
  let the first targets attend to their predecessors directly.

Decoder inputs before the sequence start are ``BOS`` (for ``i - 1 == -1``)
and ``PAD``; targets past the end are ``PAD`` with zero weight.
"""

from __future__ import annotations

import numpy as np


def num_chunks(length: int, chunk: int) -> int:
    return -(-int(length) // int(chunk))


def chunk_weights(length: int, chunk: int, policy: str = "power", power: float = 3.0, pmin: float = 0.1) -> np.ndarray:
    """Unnormalised selection weights of the chunks of a sequence, float64 ``(num_chunks,)``.

    ``policy="power"`` (appendix C): ``max(l ** -power, pmin)`` where
    ``l = 1, 2, ...`` is the chunk's 1-based index (its start position in units
    of ``C``, plus one).  The paper says "the chunk beginning at position l",
    which cannot be literal: position 0 has no finite ``l^-3`` and in token
    units every chunk after the first would sit at the floor.  With the default
    ``pmin = 0.1`` the weights are ``1, 1/8, 0.1, 0.1, ...``.
    ``policy="uniform"``: every chunk weighs 1.
    """
    n = num_chunks(length, chunk)
    if policy == "uniform":
        return np.ones(n)
    if policy != "power":
        raise ValueError(f"unknown chunk policy {policy!r}")
    k = np.arange(1, n + 1, dtype=np.float64)
    return np.maximum(k ** -float(power), float(pmin))


def chunk_probs(length: int, chunk: int, policy: str = "power", power: float = 3.0, pmin: float = 0.1) -> np.ndarray:
    """Selection probabilities of the chunks of a sequence: :func:`chunk_weights` normalised."""
    w = chunk_weights(length, chunk, policy, power, pmin)
    return w / w.sum()


def length_keep_prob(
    length: int, lmax: int | None, chunk: int = 1, policy: str = "uniform", power: float = 3.0, pmin: float = 0.1
) -> float:
    """Probability of keeping a sequence of ``length`` tokens for training (appendix C's filter).

    Appendix C's equation 11 prints ``p_filter = maximum(L / Lmax, 1)``, which
    is at least 1 for every ``L`` and so filters nothing (or everything); the
    text says the filter removes the bias toward long sequences.  A kept
    sequence then contributes chunk ``k`` with probability ``w_k / W(L)``
    (:func:`chunk_probs`), where ``W(L)`` is the total weight of its chunks, so
    keeping it with ``W(L) / W(Lmax)`` (capped at 1) makes every chunk index's
    rate ``w_k / W(Lmax)``, the same for every ``L <= Lmax``.  Under the
    uniform policy ``W(L)`` is the chunk count, i.e. about ``L / Lmax``; under
    the ``l^-3`` policy ``W`` grows slowly with ``L`` and short sequences are
    kept far more often than ``L / Lmax`` would.  ``lmax=None`` disables the
    filter.  The default ``chunk=1, policy="uniform"`` gives ``min(L / Lmax, 1)``.
    """
    if lmax is None:
        return 1.0
    w = chunk_weights(length, chunk, policy, power, pmin).sum()
    return min(float(w / chunk_weights(lmax, chunk, policy, power, pmin).sum()), 1.0)


def build_chunk(
    tokens: np.ndarray,
    start: int,
    chunk: int,
    overlap: int,
    *,
    hb: int,
    wb: int,
    grid: int,
    num_channels: int,
    clip: int,
    dense: bool = True,
) -> dict:
    """One training example from a token sequence.

    Args:
      tokens: int32 ``(L, 3)`` ending with the stop token ``(num_channels, 0, 0)``.
      start: first target index ``s`` (a multiple of ``chunk`` in training).
      hb, wb: the image's luma block grid; ``grid``: the canvas side (config).
    Returns dict of numpy arrays:
      ``dct`` int32 ``(grid, grid, num_channels)``: ``tokens[:start]`` scattered, or with
      ``dense=False`` ``prefix`` int32 ``(start, 3)``: ``tokens[:start]`` as they are (the
      training step scatters them on the device, :func:`dctmodel.tokens.dense_dct_device`);
      ``inp`` int32 ``(O+C, 3)``: previous tokens (channel id, position, value class);
      ``tgt`` int32 ``(O+C, 3)``: tokens to predict, same encoding;
      ``weight`` float32 ``(O+C,)``: 1 on the target chunk, 0 on overlap and padding;
      ``hw`` int32 ``(2,)``; ``chunk_index`` int32 ``()`` = start // chunk.
    Value classes follow :func:`dctmodel.tokens.value_to_class`; non-values
    (stop, BOS, PAD) use class ``2*clip``.
    """
    from .tokens import dense_dct, value_to_class

    tokens = np.asarray(tokens, np.int32)
    L = tokens.shape[0]
    bos, pad, none_v = num_channels + 1, num_channels + 2, 2 * clip
    S = overlap + chunk
    # Steps j = 0..S-1 read token first + j and predict token first + j + 1: one segment of S + 1
    # encoded tokens holds both windows.  Only that segment is encoded (not the whole list): the
    # trainer builds 16 rows a step on the host, beside the step itself.
    first = start - overlap - 1
    seg = np.empty((S + 1, 3), np.int32)
    seg[:] = (pad, 0, none_v)
    lo, hi = max(first, 0), min(first + S + 1, L)
    if hi > lo:
        part = tokens[lo:hi]
        seg[lo - first : hi - first, :2] = part[:, :2]
        seg[lo - first : hi - first, 2] = np.where(part[:, 0] >= num_channels, none_v, value_to_class(part[:, 2], clip))
    if first <= -1 < first + S + 1:
        seg[-1 - first] = (bos, 0, none_v)

    tgt_idx = start - overlap + np.arange(S)
    weight = ((tgt_idx >= start) & (tgt_idx < L)).astype(np.float32)
    encoder_input = (
        dict(dct=dense_dct(tokens, start, hb, wb, grid, num_channels)) if dense else dict(prefix=tokens[:start].copy())
    )
    return dict(
        **encoder_input,
        inp=seg[:S].copy(),
        tgt=seg[1:].copy(),
        weight=weight,
        hw=np.array([hb, wb], np.int32),
        chunk_index=np.int32(start // chunk),
    )


def target_start(tokens: np.ndarray, target: str, block_size: int) -> int:
    """Index of the first token that may be a training target.

    ``"all"``: 0.  ``"chroma"`` (colorisation, section 4.3): the first token
    of a colour channel (channel id ``>= B*B``) of a ``luma_first`` list, so
    the chunks start at ``base, base + C, ...`` and the whole luma part is
    always in the encoder's input, exactly as when sampling chroma given luma.
    A list without chroma tokens gives its stop token's index.
    """
    if target == "all":
        return 0
    if target != "chroma":
        raise ValueError(f"unknown train.target {target!r}")
    ch = np.asarray(tokens)[:-1, 0]
    chroma = np.flatnonzero(ch >= block_size * block_size)
    return int(chroma[0]) if chroma.size else int(len(ch))
