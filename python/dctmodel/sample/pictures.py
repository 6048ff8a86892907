"""Pictures of samples: the decoded image, the coefficient-location heatmap (figure 1), the
progressive strip and the image grid the CLI writes; the drawing is ``dctsparse.viz``'s
(shared with the codec CLI, the demo and the benchmarks), this module only maps tokens onto it.
"""

from __future__ import annotations

import numpy as np

from ..config import Config
from ..tokens import grid_of


def decode_tokens(cfg: Config, tokens: np.ndarray, height: int | None = None, width: int | None = None) -> np.ndarray:
    """Sampled tokens -> uint8 image with ``dctsparse``."""
    import dctsparse

    d = cfg.data
    side = d.grid * d.block_size
    s = dctsparse.SparseDCT.from_tokens(
        np.asarray(tokens, np.int32),
        height=height or side,
        width=width or side,
        block_size=d.block_size,
        quality=d.quality,
        subsampling=d.subsampling,
        order=d.order,
        mode="L" if d.grey else "RGB",
    )
    return dctsparse.decode(s)


def as_rgb(img: np.ndarray) -> np.ndarray:
    """uint8 ``(H, W)`` or ``(H, W, 3)`` -> ``(H, W, 3)``."""
    from dctsparse import viz

    return viz.as_rgb(img)


def location_heatmap(cfg: Config, tokens: np.ndarray, height: int, width: int) -> np.ndarray:
    """Figure 1 of the paper: where the coefficients land.  uint8 ``(height, width, 3)``:
    the number of non-zero coefficients of each luma block (chroma counted at its
    block's position), one colour per ``B x B`` block."""
    from dctsparse import viz

    d = cfg.data
    grid = grid_of(height, width, d.block_size, d.subsampling)
    counts = viz.block_counts(np.asarray(tokens)[:-1, 1], grid)
    return viz.location_heatmap(counts, d.block_size, height, width)


def progressive_strip(
    cfg: Config, tokens: np.ndarray, height: int, width: int, steps: int = 8, start: int = 0
) -> np.ndarray:
    """The sample decoded from its first ``start + k/steps`` of the generated tokens,
    ``k = 1..steps``, side by side: uint8 ``(height, steps*width, 3)``."""
    from dctsparse import viz

    body = np.asarray(tokens)[:-1]
    stop = np.array([[cfg.data.num_channels, 0, 0]], np.int32)
    strip = viz.progressive_strip(
        lambda n: decode_tokens(cfg, np.concatenate([body[:n], stop]), height, width),
        viz.step_cuts(len(body), steps, start),
        gap=0,
    )
    return viz.as_rgb(strip)


def image_grid(images: list[np.ndarray], cols: int, pad: int = 2) -> np.ndarray:
    """Equal-size uint8 images -> one grid, white gaps."""
    from dctsparse import viz

    return viz.image_grid(images, cols, pad)
