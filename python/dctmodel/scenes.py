"""Built-in generated dataset: CLEVR-like scenes of shaded shapes (numpy only).

Each scene is a flat, softly lit background with 1..``max_objects`` objects
(spheres, cubes seen from the front, cylinders) in a few matte colours, with a
soft contact shadow.  A scene is described in resolution-independent units
(fractions of the image side), so ``render_scene(seed, index, 32)`` and
``render_scene(seed, index, 480)`` are the same scene at two resolutions.
Everything is a pure function of ``(seed, index)``: no global RNG, no download.
"""

from __future__ import annotations

import functools

import numpy as np

_COLOURS = (
    np.array(
        [
            [173, 35, 35],
            [42, 75, 215],
            [29, 105, 20],
            [129, 74, 25],
            [129, 38, 192],
            [41, 208, 208],
            [255, 238, 51],
            [87, 87, 87],
        ],
        dtype=np.float64,
    )
    / 255.0
)
_LIGHT = np.array([-0.45, -0.6, 0.66])
_LIGHT = _LIGHT / np.linalg.norm(_LIGHT)


def scene_params(seed: int, index: int, max_objects: int = 4, object_scale: float = 1.0) -> list[dict]:
    """The objects of scene ``index`` of dataset ``seed``: kind, centre, size, colour (unit square).

    ``object_scale`` multiplies every size after it is drawn, so the same ``(seed, index)`` gives
    the same kinds, places and colours at any scale."""
    rng = np.random.default_rng([int(seed), int(index), 0x5CE7E])
    n = int(rng.integers(1, max_objects + 1))
    objs = []
    for _ in range(n):
        size = float(rng.uniform(0.09, 0.2)) * float(object_scale)
        objs.append(
            dict(
                kind=int(rng.integers(0, 3)),  # 0 sphere, 1 cube, 2 cylinder
                cx=float(rng.uniform(0.15, 0.85)),
                cy=float(rng.uniform(0.35, 0.85)),
                size=size,
                colour=int(rng.integers(0, len(_COLOURS))),
                shine=float(rng.uniform(0.0, 1.0)),
            )
        )
    # Painter's algorithm: objects lower in the image are nearer the camera.
    objs.sort(key=lambda o: o["cy"])
    return objs


def _window(lo_u: float, hi_u: float, lo_v: float, hi_v: float, n: int, rows: int, cols: int) -> tuple[slice, slice]:
    """Rows and columns of the pixels whose centres ``((x + 0.5) / n, (y + 0.5) / n)`` may lie in
    the unit box ``[lo_u, hi_u] x [lo_v, hi_v]`` (one pixel of margin against rounding)."""
    x0, x1 = int(np.floor(lo_u * n - 0.5)) - 1, int(np.ceil(hi_u * n - 0.5)) + 2
    y0, y1 = int(np.floor(lo_v * n - 0.5)) - 1, int(np.ceil(hi_v * n - 0.5)) + 2
    x0, y0 = min(max(x0, 0), cols), min(max(y0, 0), rows)
    return slice(y0, min(max(y1, y0), rows)), slice(x0, min(max(x1, x0), cols))


@functools.lru_cache(maxsize=16)
def _frame(h: int, w: int, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The unit coordinates ``u, v`` of the supersampled pixel centres, float64 ``(h*s, w*s)``,
    and the empty floor, float64 ``(h*s, w*s, 3)``: the same for every scene of a size, and a
    fifth of a 32 px scene's time when drawn each time (read-only: shared)."""
    n = w * s
    ys, xs = np.mgrid[0 : h * s, 0 : w * s].astype(np.float64)
    # Unit coordinates relative to the width so the aspect ratio is preserved.
    u = (xs + 0.5) / n
    v = (ys + 0.5) / n
    # Background: grey floor with a gentle vertical light falloff, like CLEVR renders.
    base = 0.55 + 0.12 * (1.0 - v / max(v.max(), 1e-9))
    floor = np.repeat(base[..., None], 3, axis=-1)
    for a in (u, v, floor):
        a.flags.writeable = False
    return u, v, floor


def box_mean(img: np.ndarray, s: int) -> np.ndarray:
    """Mean of each ``s x s`` pixel box: float64 ``(H*s, W*s, C)`` -> ``(H, W, C)``.

    The same sums in the same order as ``img.reshape(H, s, W, s, C).mean(axis=(1, 3))``, so
    the same bits (tested), at a quarter of its time: numpy's reduction over two strided axes
    was a quarter of a 32 px scene."""
    hs, ws, c = img.shape
    a = img.reshape(hs // s, s, ws // s, s, c)
    acc = a[:, 0, :, 0].copy()
    for i in range(s):
        for j in range(s):
            if i or j:
                acc += a[:, i, :, j]
    return acc / (s * s)


def render_scene(
    seed: int,
    index: int,
    size: int,
    *,
    height: int | None = None,
    max_objects: int = 4,
    object_scale: float = 1.0,
    supersample: int = 2,
) -> np.ndarray:
    """Render scene ``index`` as uint8 ``(height or size, size, 3)`` RGB."""
    w = int(size)
    h = int(height or size)
    s = int(supersample)
    n = w * s  # pixels per unit length (units are fractions of the width)
    u, v, floor = _frame(h, w, s)
    img = floor.copy()
    objs = scene_params(seed, index, max_objects, object_scale)

    # Each shadow and object is computed only in the window of pixels it can touch: outside it
    # a shadow's factor is exactly 1 and an object's mask is empty, so every pixel gets the
    # same float64 value as a whole-frame computation (~2/3 of the time at 32 px).
    for o in objs:  # soft shadows first, so no object is darkened by a later shadow
        ex, ey = o["cx"] + 0.35 * o["size"], o["cy"] + 0.85 * o["size"]
        rx, ry = 1.3 * o["size"], 0.45 * o["size"]  # the factor is 1 where d >= 1.2
        win = _window(ex - 1.2 * rx, ex + 1.2 * rx, ey - 1.2 * ry, ey + 1.2 * ry, n, h * s, w * s)
        d = np.hypot((u[win] - ex) / rx, (v[win] - ey) / ry)
        img[win] *= (1.0 - 0.35 * np.clip(1.2 - d, 0.0, 1.0))[..., None]

    for o in objs:
        col = _COLOURS[o["colour"]]
        # Every kind lies within |dx| <= 1.1, |dy| <= 1 (in units of its size); 1.2 for margin.
        r = 1.2 * o["size"]
        win = _window(o["cx"] - r, o["cx"] + r, o["cy"] - r, o["cy"] + r, n, h * s, w * s)
        dx = (u[win] - o["cx"]) / o["size"]
        dy = (v[win] - o["cy"]) / o["size"]
        if o["kind"] == 0:  # sphere: Lambertian + specular highlight on the disc
            r2 = dx * dx + dy * dy
            inside = r2 < 1.0
            nz = np.sqrt(np.clip(1.0 - r2, 0.0, 1.0))
            lam = np.clip(dx * _LIGHT[0] + dy * _LIGHT[1] + nz * _LIGHT[2], 0.0, 1.0)
            spec = o["shine"] * np.clip(lam, 0, 1) ** 30
            shade = (0.25 + 0.75 * lam)[..., None] * col + spec[..., None]
        elif o["kind"] == 1:  # cube: front face plus a lighter top face
            front = (np.abs(dx) < 0.8) & (dy > -0.5) & (dy < 0.9)
            top = (dy <= -0.5) & (dy > -1.0) & (np.abs(dx + (dy + 0.5) * 0.6) < 0.8)
            inside = front | top
            lam = np.where(top, 0.95, 0.55 + 0.15 * (dx + 0.8) / 1.6)
            shade = lam[..., None] * col
        else:  # cylinder: side shaded across x, elliptic cap
            side = (np.abs(dx) < 0.7) & (dy > -0.6) & (dy < 0.9)
            cap = ((dx / 0.7) ** 2 + ((dy + 0.6) / 0.25) ** 2) < 1.0
            inside = side | cap
            lam = np.where(cap, 0.95, 0.35 + 0.6 * np.cos(np.clip(dx / 0.7, -1, 1) * 1.2 + 0.5) ** 2)
            shade = lam[..., None] * col
        img[win] = np.where(inside[..., None], shade, img[win])

    img = box_mean(img, s)
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
