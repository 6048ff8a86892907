"""Pictures of samples: the decoded image, the coefficient-location heatmap (figure 1), the
progressive strip and the image grid the CLI writes.

TODO: the colour map, heatmap, strip and grid move to ``dctsparse.viz`` (shared with the
codec CLI, the demo and the benchmarks); these become thin calls into it.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..config import Config
from ..tokens import grid_of


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


def as_rgb(img: np.ndarray) -> np.ndarray:
    """uint8 ``(H, W)`` or ``(H, W, 3)`` -> ``(H, W, 3)``."""
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img


def location_heatmap(cfg: Config, tokens: np.ndarray, height: int, width: int) -> np.ndarray:
    """Figure 1 of the paper: where the coefficients land.  uint8 ``(height, width, 3)``:
    the number of non-zero coefficients of each luma block (chroma counted at its
    block's position), a magma-like colour map, one colour per ``B x B`` block."""
    from dctsparse.cli import colormap  # the codec's own map: no matplotlib needed

    d = cfg.data
    hb, wb = grid_of(height, width, d.block_size, d.subsampling)
    body = np.asarray(tokens)[:-1]
    counts = np.zeros((hb, wb), np.float64)
    np.add.at(counts, (body[:, 1] // wb, body[:, 1] % wb), 1.0)
    rgb = colormap(counts / max(counts.max(), 1.0))
    return np.repeat(np.repeat(rgb, d.block_size, 0), d.block_size, 1)[:height, :width]


def progressive_strip(cfg: Config, tokens: np.ndarray, height: int, width: int, steps: int = 8,
                      start: int = 0) -> np.ndarray:
    """The sample decoded from its first ``start + k/steps`` of the generated tokens,
    ``k = 1..steps``, side by side: uint8 ``(height, steps*width, 3)``."""
    nch = cfg.data.num_channels
    body = np.asarray(tokens)[:-1]
    stop = np.array([[nch, 0, 0]], np.int32)
    cuts = [start + round((len(body) - start) * k / steps) for k in range(1, steps + 1)]
    return np.concatenate([as_rgb(decode_tokens(cfg, np.concatenate([body[:c], stop]), height, width))
                           for c in cuts], axis=1)


def image_grid(images: list[np.ndarray], cols: int, pad: int = 2) -> np.ndarray:
    """Equal-size uint8 images -> one grid, white gaps."""
    h, w = images[0].shape[:2]
    rows = -(-len(images) // cols)
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = as_rgb(im)
    return out
