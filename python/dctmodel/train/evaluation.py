"""Held-out bits per image subpixel (bpd), with and without the structure masks."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from ..config import Config
from ..data import Source, eval_batches
from .steps import functions


def evaluate(
    cfg: Config, params, source: Source, mesh, num_images: int | None = None, batch_size: int | None = None
) -> dict:
    """Held-out bits per image subpixel over every chunk of ``num_images`` images.

    Returns ``bpd``, ``bpd_channel``, ``bpd_position``, ``bpd_value`` (model as
    configured, i.e. with masks iff ``model.structure_masks``), the same with
    suffix ``_masked``/``_unmasked`` for both ways, and ``bpd_per_chunk``: mean
    over images of each chunk index's bits / subpixels.
    """
    fns = functions(cfg)
    n = min(num_images or cfg.train.eval_images, len(source))
    bs = batch_size or cfg.train.batch_size
    per_image = {"unmasked": np.zeros((n, 3)), "masked": np.zeros((n, 3))}
    chunk_bits: defaultdict[int, list] = defaultdict(list)
    subpix = np.array([source.tokens(i)[2] for i in range(n)], np.float64)
    for batch in eval_batches(cfg, source, range(n), bs):
        raw, masked = (np.asarray(a, np.float64) for a in fns.eval_step(params, batch, mesh))
        for row, img in enumerate(batch["image"]):
            if img < 0:
                continue
            per_image["unmasked"][img] += raw[row]
            per_image["masked"][img] += masked[row]
            scored = masked if cfg.model.structure_masks else raw
            chunk_bits[int(batch["chunk_index"][row])].append(scored[row].sum() / subpix[img])
    out: dict[str, Any] = {"images": n}
    for way, bits in per_image.items():
        bpd = bits / subpix[:, None]
        out[f"bpd_{way}"] = float(bpd.sum(1).mean())
        for j, name in enumerate(("channel", "position", "value")):
            out[f"bpd_{name}_{way}"] = float(bpd[:, j].mean())
    way = "masked" if cfg.model.structure_masks else "unmasked"
    for k in ("", "_channel", "_position", "_value"):
        out[f"bpd{k}"] = out[f"bpd{k}_{way}"]
    out["bpd_per_chunk"] = [float(np.mean(chunk_bits[k])) for k in sorted(chunk_bits)]
    return out
