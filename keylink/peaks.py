"""Peaks of 2D maps: non-maximum suppression, the most confident share, Harris corners.

Points are (x, y) in keylink's convention: the centre of pixel (row r, column c) is
(c + 0.5, r + 0.5).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def nms_peaks(
    score: torch.Tensor | np.ndarray, radius: int, threshold: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of an (H, W) map, no two within ``radius`` pixels, strongest first.

    A pixel is a candidate when it is the maximum of the (2 radius + 1)^2 square around it and
    above ``threshold`` (default: above the map's minimum, so a constant map has no peak); then,
    strongest first, a candidate is dropped when a stronger kept peak is within ``radius``
    (Euclidean, at most ``radius``), which also leaves one peak per plateau.

    Returns (K, 2) (x, y) pixel centres and their (K,) scores, by decreasing score.
    """
    s = torch.as_tensor(score, dtype=torch.float32)
    if s.ndim != 2:
        raise ValueError(f"score must be (H, W), got shape {tuple(s.shape)}")
    if radius < 1:
        raise ValueError(f"radius must be >= 1, got {radius}")
    s = torch.nan_to_num(s.detach().cpu(), nan=-math.inf)
    pooled = F.max_pool2d(s[None, None], 2 * radius + 1, stride=1, padding=radius)[0, 0]
    floor = float(s.min()) if threshold is None else threshold
    found = torch.nonzero((s == pooled) & (s > floor))
    values = s[found[:, 0], found[:, 1]].numpy().astype(np.float64)
    order = np.argsort(-values, kind="stable")
    rows, cols = found[:, 0].numpy()[order], found[:, 1].numpy()[order]
    values = values[order]
    xy = np.stack([cols + 0.5, rows + 0.5], axis=1).astype(np.float64)
    # Greedy suppression on a grid (linear in the candidates, however large a plateau is).
    h, w = s.shape
    d = np.arange(-radius, radius + 1)
    disk = d[:, None] ** 2 + d[None, :] ** 2 <= radius**2
    blocked = np.zeros((h + 2 * radius, w + 2 * radius), dtype=bool)
    keep: list[int] = []
    for i, (r, c) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
        if blocked[r + radius, c + radius]:
            continue
        keep.append(i)
        blocked[r : r + 2 * radius + 1, c : c + 2 * radius + 1] |= disk
    return xy[keep].reshape(-1, 2), values[keep]


def keep_share(count: int, share: float) -> int:
    """How many of ``count`` peaks the most confident ``share`` is: ceil(share * count), at least
    one when there is any (rounded first, so that 0.4 of 10 is 4, not 5)."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be in (0, 1], got {share}")
    if count <= 0:
        return 0
    return max(1, math.ceil(round(share * count, 9)))


def top_share(
    points: np.ndarray, scores: np.ndarray, share: float
) -> tuple[np.ndarray, np.ndarray]:
    """The most confident ``share`` of (K, 2) points with (K,) scores, by decreasing score."""
    order = np.argsort(-np.asarray(scores), kind="stable")[: keep_share(len(scores), share)]
    return np.asarray(points)[order].reshape(-1, 2), np.asarray(scores)[order]


def harris_response(grey: torch.Tensor, sigma: float = 1.5, k: float = 0.05) -> torch.Tensor:
    """Harris corner response det(M) - k trace(M)^2 of (B, 1, H, W) grey images, with M the
    Gaussian-weighted (``sigma`` px) structure tensor of Sobel gradients; (B, H, W)."""
    x = grey.float()
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8
    kernels = torch.stack([sobel, sobel.T])[:, None].to(x)
    g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernels)
    ix, iy = g[:, :1], g[:, 1:]
    products = torch.cat([ix * ix, ix * iy, iy * iy], dim=1)
    m = gaussian_blur(products, sigma)
    det = m[:, 0] * m[:, 2] - m[:, 1] ** 2
    trace = m[:, 0] + m[:, 2]
    return det - k * trace**2


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W), reflecting the border; sigma <= 0 is a no-op."""
    if sigma <= 0:
        return x
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    mode = "reflect" if min(x.shape[-2:]) > radius else "replicate"
    y = F.pad(x, (radius, radius, 0, 0), mode=mode)
    y = F.conv2d(y, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1).contiguous(), groups=c)
    y = F.pad(y, (0, 0, radius, radius), mode=mode)
    return F.conv2d(y, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1).contiguous(), groups=c)
