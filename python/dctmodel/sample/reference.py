"""The original host-side sampler: a Python loop, one forward pass of the whole window per
variable, no cache.  Slow; kept as an independent reference for the tests."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..chunks import build_chunk
from ..config import Config
from ..model import model_from_params
from ..tokens import class_to_value


def sample_tokens_reference(
    cfg: Config,
    params,
    *,
    num: int,
    seed: int = 0,
    hw: tuple[int, int] | None = None,
    label: int = 0,
    max_tokens: int | None = None,
    temperature: float = 1.0,
    prefix: np.ndarray | None = None,
) -> list[np.ndarray]:
    """The original sampler (no cache, one forward pass of the whole window per variable,
    a Python loop): kept as the reference for tests.  Sample ``num`` token sequences,
    int32 ``(N + 1, 3)`` each ending with the stop token.

    ``hw``: the luma block grid to sample in (default: the config's square grid).
    ``prefix``: tokens ``(n, 3)`` (no stop) to continue from, e.g. the first DCT
    channels for upsampling (section 4.3).  ``max_tokens`` caps the length
    (default: every (channel, position) slot once).
    """
    model = model_from_params(cfg, params)
    fwd = jax.jit(lambda b: model(b, deterministic=True, structure_masks=True))
    d, m = cfg.data, cfg.model
    n_ch, C, ov = d.num_channels, m.chunk_size, m.overlap
    hb, wb = hw or (d.grid, d.grid)
    max_tokens = max_tokens or n_ch * hb * wb
    key = jax.random.key(seed)
    seqs = [
        np.asarray(prefix, np.int32).reshape(-1, 3) if prefix is not None else np.zeros((0, 3), np.int32)
        for _ in range(num)
    ]
    done = np.zeros(num, bool)
    stop = np.array([[n_ch, 0, 0]], np.int32)

    def draw(logits, k):
        return np.asarray(jax.random.categorical(k, jnp.asarray(logits) / temperature, axis=-1))

    while not done.all():
        # Unfinished samples all advance one token per step, so they share the chunk start;
        # finished ones ride along (their windows are past their stop token, all padding).
        # Chunks start at multiples of C, as in training: a prefix's tokens past the last
        # boundary sit in the window as known tokens and are not drawn.
        known = max(len(s) for s, dn in zip(seqs, done, strict=True) if not dn)
        start = known // C * C
        exs = [
            build_chunk(
                np.concatenate([s, stop]), start, C, ov, hb=hb, wb=wb, grid=d.grid, num_channels=n_ch, clip=d.clip
            )
            for s in seqs
        ]
        batch = {k: np.stack([e[k] for e in exs]) for k in ("dct", "inp", "tgt", "hw")}
        batch["label"] = np.full(num, label, np.int32)
        new: list[list] = [[] for _ in range(num)]
        for j in range(ov, ov + C):
            if done.all() or start + j - ov >= max_tokens:
                break
            if start + j - ov < known:
                continue
            for field in range(3):
                key, k = jax.random.split(key)
                logits = fwd(batch)[field][:, j]
                x = draw(logits, k)
                if field == 0:
                    x = np.where(done | (start + j - ov >= max_tokens - 1), n_ch, x)  # finished rows: stop
                batch["tgt"][:, j, field] = x
                if j + 1 < ov + C:
                    batch["inp"][:, j + 1, field] = x
                if field == 0:
                    is_stop = x == n_ch
                    batch["tgt"][is_stop, j, 1:] = (0, 2 * d.clip)
                    if j + 1 < ov + C:
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
