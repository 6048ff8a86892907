"""Sample-quality metrics over feature vectors: FID, sFID, precision/recall, KID (pure NumPy).

The features come from :mod:`dctmodel.inception` (Inception-v3, the FID
network); everything here is arithmetic on ``(N, D)`` float arrays, so it is
tested on hand-made sets without the network.

* FID (Heusel et al. 2017): ``|mu_r - mu_f|^2 + tr(S_r + S_f - 2 (S_r S_f)^(1/2))``
  of the Gaussians fitted to the two sets.  sFID (Nash et al. 2021) is the
  same distance on spatial features.
* Precision and recall (Kynkaenniemi et al. 2019, ``k = 3``): a real sample's
  manifold ball has the radius of its k-th nearest real neighbour; precision
  is the share of generated samples inside some real ball, recall the share
  of real samples inside some generated ball.
* KID (Binkowski et al. 2018): unbiased MMD^2 with the cubic polynomial kernel
  ``(x.y / D + 1)^3``, averaged over random subsets.
"""

from __future__ import annotations

import numpy as np


def gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` (float64, ``N - 1`` normalised) of ``(N, D)`` features."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"features must be (N, D) with N >= 2, got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Frechet distance between two Gaussians.

    ``tr((S1 S2)^(1/2))`` is computed as the sum of square roots of the
    eigenvalues of the symmetric ``S1^(1/2) S2 S1^(1/2)`` (the same spectrum as
    ``S1 S2``), which needs only ``eigh`` and stays real where a general
    matrix square root of a rank-deficient product (N < D) picks up imaginary
    round-off.
    """
    w, v = np.linalg.eigh(np.asarray(cov1, np.float64))
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root1 @ np.asarray(cov2, np.float64) @ root1
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * tr_sqrt)


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    """FID between two feature sets ``(N, D)`` and ``(M, D)``."""
    return frechet_distance(*gaussian(real), *gaussian(fake))


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def knn_radii(x: np.ndarray, k: int = 3) -> np.ndarray:
    """Squared distance of each row of ``x`` to its k-th nearest other row, ``(N,)``."""
    if len(x) <= k:
        raise ValueError(f"need more than k={k} samples for k-NN radii, got {len(x)}")
    d = _sq_dists(x, x)
    np.fill_diagonal(d, np.inf)
    return np.partition(d, k - 1, axis=1)[:, k - 1]


def _coverage(points: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> float:
    """Share of ``points`` inside at least one ball (``centres``, squared ``radii``)."""
    return float((_sq_dists(points, centres) <= radii[None, :]).any(axis=1).mean())


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaenniemi et al. 2019) of ``fake`` against ``real``."""
    return (_coverage(fake, real, knn_radii(real, k)), _coverage(real, fake, knn_radii(fake, k)))


def kid(
    real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance: mean and standard deviation over ``subsets`` random subsets
    of ``min(subset_size, N, M)`` samples a side (unbiased MMD^2, cubic polynomial kernel)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    n = min(subset_size, len(real), len(fake))
    if n < 2:
        raise ValueError("KID needs at least 2 samples a side")
    d = real.shape[1]
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(subsets):
        x = real[rng.choice(len(real), n, replace=False)]
        y = fake[rng.choice(len(fake), n, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        off = n * (n - 1)
        vals.append((kxx.sum() - np.trace(kxx)) / off + (kyy.sum() - np.trace(kyy)) / off - 2 * kxy.mean())
    return float(np.mean(vals)), float(np.std(vals))


def all_metrics(real: dict, fake: dict, k: int = 3) -> dict:
    """Every metric from feature dicts with ``pool`` ``(N, 2048)`` and ``spatial`` ``(N, D_s)``."""
    p, r = precision_recall(real["pool"], fake["pool"], k)
    kid_mean, kid_std = kid(real["pool"], fake["pool"])
    return {
        "fid": fid(real["pool"], fake["pool"]),
        "sfid": fid(real["spatial"], fake["spatial"]),
        "precision": p,
        "recall": r,
        "kid": kid_mean,
        "kid_std": kid_std,
        "num_real": int(len(real["pool"])),
        "num_fake": int(len(fake["pool"])),
    }
