"""Chunked sampling (section 3.3): sample a chunk, add it to the input DCT image, repeat.

    python -m dctmodel.sample --workdir runs/tiny --num 16 --out runs/tiny/samples.png

Within a chunk each token is drawn in three steps, channel then position then
value (eq. 2), each from a forward pass of the whole window.  There is no
key/value cache: a pass costs O((O + C)^2) and a chunk 3*C passes, which is
fine for the laptop presets and simple to check against training.  The
structure masks are always applied while sampling, so every sample is a
valid coordinate list (no repeated (channel, position) pair) that
``dctsparse`` can decode.  Every sample in a batch stops on its own stop token.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from .chunks import build_chunk
from .config import Config, config_from_dict
from .tokens import class_to_value


def sample_tokens(cfg: Config, params, *, num: int, seed: int = 0, hw: Optional[tuple[int, int]] = None,
                  label: int = 0, max_tokens: Optional[int] = None, temperature: float = 1.0,
                  prefix: Optional[np.ndarray] = None) -> list[np.ndarray]:
    """Sample ``num`` token sequences, int32 ``(N + 1, 3)`` each ending with the stop token.

    ``hw``: the luma block grid to sample in (default: the config's square grid).
    ``prefix``: tokens ``(n, 3)`` (no stop) to continue from, e.g. the first DCT
    channels for upsampling (section 4.3).  ``max_tokens`` caps the length
    (default: every (channel, position) slot once).
    """
    from .train import functions

    fns = functions(cfg)
    model = fns.model(params)
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


def main(argv=None):
    from PIL import Image

    from .train import _manager, functions, make_mesh, restore_checkpoint

    ap = argparse.ArgumentParser(prog="python -m dctmodel.sample")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--num", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--out", default=None, help="PNG grid (default WORKDIR/samples.png)")
    args = ap.parse_args(argv)
    with open(os.path.join(args.workdir, "config.json")) as f:
        cfg = config_from_dict(json.load(f))
    fns = functions(cfg)
    state = fns.shard_state(fns.init(cfg.train.seed), make_mesh(1))
    mngr = _manager(args.workdir, cfg.train.keep_checkpoints)
    state = restore_checkpoint(mngr, state)
    if state is None:
        raise SystemExit(f"no checkpoint in {args.workdir}")
    toks = sample_tokens(cfg, state["params"], num=args.num, seed=args.seed, temperature=args.temperature)
    imgs = [decode_tokens(cfg, t, cfg.data.image_size, cfg.data.image_size) for t in toks]
    grid = np.concatenate(imgs, axis=1)
    out = args.out or os.path.join(args.workdir, "samples.png")
    Image.fromarray(grid).save(out)
    print(f"{len(imgs)} samples, {np.mean([len(t) for t in toks]):.0f} tokens on average -> {out}")


if __name__ == "__main__":
    main()
