"""Long sampling runs: :func:`sample_to_folder` draws batch after batch, saving each one, and
continues where a stopped run (Ctrl-C) left off."""

from __future__ import annotations

import json
import os
import sys

import jax
import numpy as np

from ..config import Config
from ..loop import stop_on_sigint
from .sampler import sample_tokens


def read_batch(path: str) -> list[np.ndarray]:
    """The token arrays of one ``batch_BBBBB.npz`` that :func:`sample_to_folder` wrote:
    int32 ``(N_i + 1, 3)`` each, in draw order."""
    with np.load(path) as z:
        return np.split(z["tokens"], np.cumsum(z["lengths"])[:-1])


def sample_to_folder(
    cfg: Config,
    params,
    folder: str,
    *,
    num: int,
    batch_size: int,
    seed: int = 0,
    label=None,
    settings: dict | None = None,
    progress: bool = True,
    **kw,
) -> list[np.ndarray]:
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
    meta = json.loads(
        json.dumps(dict(settings or {}, batch_size=batch_size, seed=seed, label=None if label is None else list(label)))
    )
    meta_path = os.path.join(folder, "settings.json")
    if os.path.exists(meta_path) and any(f.startswith("batch_") for f in os.listdir(folder)):
        with open(meta_path) as f:
            old = json.load(f)
        diff = sorted(k for k in set(old) | set(meta) if old.get(k) != meta.get(k))
        if diff:
            raise ValueError(
                f"{folder} holds samples drawn with other settings ({', '.join(diff)} differ); "
                f"remove it or write elsewhere (--out)"
            )
    nb = -(-num // batch_size)
    out: list[np.ndarray] = []
    drawn, t0 = 0, time.time()
    with stop_on_sigint("this batch, which is saved") as stop:
        for b in range(nb):
            path = os.path.join(folder, f"batch_{b:05d}.npz")
            if os.path.exists(path):
                out += read_batch(path)
                continue
            if stop.requested:
                raise KeyboardInterrupt
            idx = range(b * batch_size, (b + 1) * batch_size)
            labels = 0 if label is None else [label[i % len(label)] for i in idx]
            toks = sample_tokens(
                cfg, params, num=batch_size, label=labels, seed=jax.random.fold_in(jax.random.key(seed), b), **kw
            )
            os.makedirs(folder, exist_ok=True)
            with open(meta_path, "w") as f:  # before the batch: no batch without its settings
                json.dump(meta, f, indent=1)
            tmp = path + ".tmp.npz"
            np.savez(tmp, tokens=np.concatenate(toks), lengths=np.array([len(t) for t in toks]))
            os.replace(tmp, path)
            out += toks
            drawn += 1
            if progress:
                print(
                    f"batch {b + 1}/{nb} drawn ({drawn} this run, {time.time() - t0:.1f} s, compile included)",
                    file=sys.stderr,
                    flush=True,
                )
    return out[:num]
