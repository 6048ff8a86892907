"""Pictures of sparse DCT lists as plain uint8 arrays (no matplotlib).

Used by the command line (``dctsparse preview``), the demo, the benchmarks
and ``dctmodel``'s sampler; each function returns an array that
``PIL.Image.fromarray`` writes as it is.

- :func:`colormap`: values in [0, 1] -> colours of a dark-to-bright map.
- :func:`block_counts`, :func:`location_heatmap`: where the coefficients land,
  one colour per block (the paper's figure 1).
- :func:`frequency_panels`, :func:`coefficient_heatmap`: the same per DCT
  frequency, and both side by side for one :class:`SparseDCT`.
- :func:`progressive_strip` with :func:`fraction_cuts` / :func:`step_cuts`:
  decodes of growing prefixes side by side (the paper's figure 2g).
- :func:`image_grid`: equal-size images in a grid with white gaps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from .sparse import SparseDCT

U8 = npt.NDArray[np.uint8]

# Anchors of a perceptually ordered dark-to-bright colour map (close to "magma").
_CMAP = np.array(
    [
        [0, 0, 4],
        [40, 11, 84],
        [101, 21, 110],
        [159, 42, 99],
        [212, 72, 66],
        [245, 125, 21],
        [250, 193, 39],
        [252, 255, 164],
    ],
    np.float64,
)

WHITE = 255


def colormap(x: npt.ArrayLike) -> U8:
    """float array of any shape ``S``, values in [0, 1] -> uint8 ``S + (3,)`` colours.

    Values outside [0, 1] are clipped; 0 is near black, 1 pale yellow, linear
    between eight anchors. NaN has no colour: ValueError.
    """
    a = np.asarray(x, dtype=np.float64)
    if np.isnan(a).any():
        raise ValueError("colormap got NaN values")
    t = np.clip(a, 0, 1) * (len(_CMAP) - 1)
    i = np.minimum(t.astype(int), len(_CMAP) - 2)
    f = (t - i)[..., None]
    return np.round(_CMAP[i] * (1 - f) + _CMAP[i + 1] * f).astype(np.uint8)


def as_rgb(img: npt.ArrayLike) -> np.ndarray:
    """``(H, W)`` greyscale -> ``(H, W, 3)`` by repeating it; ``(H, W, 3)`` unchanged."""
    a = np.asarray(img)
    if a.ndim == 2:
        return np.repeat(a[..., None], 3, axis=2)
    if a.ndim == 3 and a.shape[2] == 3:
        return a
    raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {a.shape}")


def _scaled(counts: np.ndarray, log: bool) -> np.ndarray:
    """Counts over the largest count (at least 1), optionally on a log1p scale."""
    top = max(float(counts.max(initial=0)), 1.0)
    if log:
        return np.log1p(counts) / np.log1p(top)
    return counts / top


def block_counts(position: npt.ArrayLike, grid: tuple[int, int]) -> np.ndarray:
    """Triples per block: int positions ``(N,)`` in ``0..Hb*Wb-1`` -> float64 ``(Hb, Wb)``.

    ``grid`` is the luma block grid ``(Hb, Wb)`` (``SparseDCT.grid``); a
    position is ``row * Wb + col``, so chroma triples count at the luma
    block their chroma block starts at.
    """
    hb, wb = (int(g) for g in grid)
    if hb < 1 or wb < 1:
        raise ValueError(f"grid must be positive, got {grid}")
    p = np.asarray(position)
    if p.ndim != 1 or (p.size and not np.issubdtype(p.dtype, np.integer)):
        raise ValueError(f"positions must be a 1-D integer array, got {p.dtype} {p.shape}")
    if p.size and (p.min() < 0 or p.max() >= hb * wb):
        raise ValueError(f"positions must lie in 0..{hb * wb - 1} for a {hb}x{wb} grid, got {p.min()}..{p.max()}")
    return np.bincount(p, minlength=hb * wb).astype(np.float64).reshape(hb, wb)


def location_heatmap(
    counts: npt.ArrayLike, block_size: int, height: int | None = None, width: int | None = None, *, log: bool = False
) -> U8:
    """Where the coefficients land: float ``(Hb, Wb)`` counts -> uint8 ``(height, width, 3)``.

    Each block becomes a ``block_size`` square of :func:`colormap` of its
    count over the largest count (``log=True``: ``log1p`` of both, which
    keeps sparse blocks visible); the result is cropped to the image's
    ``height x width`` (default: the whole grid).
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 2:
        raise ValueError(f"counts must be (Hb, Wb), got shape {c.shape}")
    if block_size < 1:
        raise ValueError(f"block_size must be positive, got {block_size}")
    rgb = colormap(_scaled(c, log))
    out = np.repeat(np.repeat(rgb, block_size, 0), block_size, 1)
    return out[:height, :width]


def frequency_panels(per_channel: npt.ArrayLike, block_size: int, cell: int = 1) -> U8:
    """Triples per DCT frequency: counts ``(P*B*B,)`` indexed by channel id -> uint8 image.

    One ``B x B`` panel per plane (Y, Cb, Cr), each coefficient at its natural
    place (DC top left, not in zigzag order) as a ``cell``-pixel square,
    panels side by side with white gaps of ``max(2, cell // 2)`` pixels.
    Colours: :func:`colormap` of ``log1p`` counts over the largest, shared by
    the planes. Shape ``(B*cell, P*B*cell + (P-1)*gap, 3)``.
    """
    from .codec import zigzag

    b, bb = block_size, block_size**2
    n = np.asarray(per_channel)
    if n.ndim != 1 or n.size == 0 or n.size % bb:
        raise ValueError(f"per_channel must be (P*B*B,) = a multiple of {bb} counts, got shape {n.shape}")
    if cell < 1:
        raise ValueError(f"cell must be positive, got {cell}")
    planes = n.size // bb
    freq = np.zeros((planes, bb), np.int64)
    freq[:, zigzag(b)] = n.reshape(planes, bb)  # zigzag index -> natural position
    tiles = colormap(_scaled(freq, log=True)).reshape(planes, b, b, 3)
    gap = np.full((b * cell, max(2, cell // 2), 3), WHITE, np.uint8)
    panels: list[np.ndarray] = []
    for t in tiles:
        panels += [np.kron(t, np.ones((cell, cell, 1), np.uint8)), gap]
    return np.concatenate(panels[:-1], axis=1)


def coefficient_heatmap(s: SparseDCT, scale: int | None = None) -> U8:
    """uint8 ``(H', W', 3)``: where the coefficients of ``s`` land, two panels side by side.

    Left: :func:`location_heatmap` (log scale) of the non-zeros per luma
    block, all planes; under 4:2:0 a chroma block's count is spread evenly
    over the 2x2 luma blocks it covers. Right: :func:`frequency_panels` with
    ``scale``-pixel cells (default: the image height over B, within 1..32).
    An 8-pixel white column separates them; the shorter one is padded with
    white at the bottom.
    """
    if not isinstance(s, SparseDCT):
        raise TypeError(f"expected a SparseDCT, got {type(s).__name__}")
    hb, wb = s.grid
    b, bb = s.block_size, s.block_size**2
    position = np.asarray(s.position)
    plane = np.asarray(s.channel) // bb
    per_block = block_counts(position[plane == 0], s.grid)
    chroma = block_counts(position[plane > 0], s.grid)
    if s.subsampling == "4:2:0":
        # a chroma block covers 2x2 luma blocks: spread its count over them
        chroma = np.kron(chroma[::2, ::2], np.ones((2, 2))) / 4
    left = location_heatmap(per_block + chroma, b, s.height, s.width, log=True)
    cell = max(1, min(s.height // b, 32)) if scale is None else scale
    right = frequency_panels(np.bincount(np.asarray(s.channel), minlength=s.planes * bb), b, cell)
    height = max(left.shape[0], right.shape[0])

    def pad(im: np.ndarray) -> np.ndarray:
        return np.pad(im, ((0, height - im.shape[0]), (0, 0), (0, 0)), constant_values=WHITE)

    return np.concatenate([pad(left), np.full((height, 8, 3), WHITE, np.uint8), pad(right)], axis=1)


def fraction_cuts(n: int, fractions: Sequence[float]) -> list[int]:
    """Prefix lengths ``round(f * n)`` (half to even) for each fraction of an ``n``-triple list."""
    if any(not 0 <= f <= 1 for f in fractions):
        raise ValueError(f"fractions must lie in [0, 1], got {list(fractions)}")
    return [int(round(f * n)) for f in fractions]


def step_cuts(n: int, steps: int, start: int = 0) -> list[int]:
    """Prefix lengths ``start + round((n - start) * k / steps)``, ``k = 1..steps``.

    For a list whose first ``start`` triples were given (a conditioning
    prefix) and the rest generated: the frames show the generated part
    growing, and the last one is the whole list.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if not 0 <= start <= n:
        raise ValueError(f"start must lie in 0..{n}, got {start}")
    return [start + round((n - start) * k / steps) for k in range(1, steps + 1)]


PrefixSource = SparseDCT | Callable[[int], np.ndarray]


def progressive_strip(source: PrefixSource, cuts: Sequence[int], *, gap: int = 4) -> U8:
    """Decodes of prefixes of a list side by side, ``gap`` white pixels apart.

    ``source``: a :class:`SparseDCT` (frame ``k`` is ``decode(s[:cuts[k]])``),
    or a function from a prefix length to a uint8 ``(H, W)`` or ``(H, W, 3)``
    image (for lists held as tokens). Returns uint8 ``(H, sum of widths +
    (len(cuts) - 1) * gap)`` plus ``(3,)`` for RGB frames, in the order of
    ``cuts``; frames must share their height and number of channels.
    """
    frame: Callable[[int], np.ndarray]
    if isinstance(source, SparseDCT):
        from .codec import decode

        s = source

        def decode_prefix(n: int) -> np.ndarray:
            return decode(s[:n])

        frame = decode_prefix
    elif callable(source):
        frame = source
    else:
        raise TypeError(f"source must be a SparseDCT or a function of the prefix length, got {type(source).__name__}")
    if len(cuts) == 0:
        raise ValueError("cuts must name at least one prefix length")
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    frames = [np.asarray(frame(int(c))) for c in cuts]
    if any(f.shape[0] != frames[0].shape[0] or f.shape[2:] != frames[0].shape[2:] for f in frames):
        raise ValueError(f"frames differ in height or channels: {[f.shape for f in frames]}")
    tiles: list[np.ndarray] = []
    spacer = np.full((frames[0].shape[0], gap) + frames[0].shape[2:], WHITE, np.uint8)
    for f in frames:
        tiles += [f, spacer]
    return np.concatenate(tiles[:-1], axis=1).astype(np.uint8, copy=False)


def image_grid(images: Sequence[npt.ArrayLike], cols: int, pad: int = 2) -> U8:
    """Equal-size uint8 ``(h, w)`` or ``(h, w, 3)`` images -> one RGB grid, white gaps.

    Row-major: image ``i`` sits at row ``i // cols``, column ``i % cols``;
    ``pad`` white pixels between neighbours, none around the edge; empty
    cells of the last row stay white. Returns uint8
    ``(rows * (h + pad) - pad, cols * (w + pad) - pad, 3)`` with
    ``rows = ceil(len(images) / cols)``. Greyscale images are repeated to RGB.
    """
    ims = [as_rgb(im) for im in images]
    if not ims:
        raise ValueError("image_grid needs at least one image")
    if cols < 1 or pad < 0:
        raise ValueError(f"need cols >= 1 and pad >= 0, got cols={cols}, pad={pad}")
    h, w = ims[0].shape[:2]
    if any(im.shape[:2] != (h, w) for im in ims):
        raise ValueError(f"images must share one size, got {sorted({im.shape[:2] for im in ims})}")
    rows = -(-len(ims) // cols)
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, 3), WHITE, np.uint8)
    for i, im in enumerate(ims):
        r, c = divmod(i, cols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = im
    return out
