"""Sub-pixel refinement of corner-like points with the Förstner operator.

Every pixel's gradient defines a line through the pixel centre, perpendicular to the gradient;
the Förstner point of a window is the point closest (least squares, weighted by the squared
gradient) to all of those lines. In a window ``w`` it solves ``A p = b`` with

    A = sum_w [[Ix^2, IxIy], [IxIy, Iy^2]]
    b = sum_w [Ix^2 x + IxIy y, IxIy x + Iy^2 y]

On a flat patch A vanishes and on a straight edge it has rank one: there is no point to find, so
such points are left where they were (scikit-image's ``corner_subpix`` returns NaN there).

The window is weighted by a Gaussian centred on the current estimate and the solve is repeated
from the new estimate a few times: a window cut on the integer grid is lopsided around a sub-pixel
corner, which alone biases the answer by several hundredths of a pixel.

Known limit (measured in tests/test_refine.py): on an L-shaped corner (one bright quadrant) the
answer lies about 0.1 px inside the corner, a property of the operator itself (pixels near the
vertex see a mixed gradient); on a checkerboard (X) corner it is unbiased.

Coordinates follow keylink's convention: (x, y) with the centre of pixel (row r, column c) at
(c + 0.5, r + 0.5).
"""

from __future__ import annotations

import numpy as np


def image_gradients(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ix, Iy of an (H, W) image: Sobel (smoothing across the derivative keeps noise down),
    scaled to units of intensity per pixel, replicating the border."""
    padded = np.pad(np.asarray(image, dtype=np.float64), 1, mode="edge")
    # Central difference along one axis, [1, 2, 1] / 4 smoothing along the other.
    dx = (padded[:, 2:] - padded[:, :-2]) / 2
    dy = (padded[2:, :] - padded[:-2, :]) / 2
    ix = (dx[:-2] + 2 * dx[1:-1] + dx[2:]) / 4
    iy = (dy[:, :-2] + 2 * dy[:, 1:-1] + dy[:, 2:]) / 4
    return ix, iy


def forstner(
    image: np.ndarray,
    points: np.ndarray,
    window: int = 11,
    min_ratio: float = 0.1,
    min_strength: float = 1e-4,
    iterations: int = 5,
) -> tuple[np.ndarray, np.ndarray]:
    """Refine (N, 2) (x, y) points on an (H, W) grey image to sub-pixel corner positions.

    Args:
        image: (H, W) intensities, any range.
        points: (N, 2) (x, y) in keylink's convention.
        window: side of the window in pixels (odd); its Gaussian weight has sigma window / 4.
        min_ratio: A's smaller eigenvalue must be at least this share of its larger one; below
            it the window holds a straight edge (rank one) and the point is kept.
        min_strength: A's trace must exceed this share of the trace of a window full of
            full-contrast gradients (the image's range per pixel); below it the window is flat
            and the point is kept.
        iterations: solves, each with the window re-centred on the previous answer.

    Returns:
        refined (N, 2) points, and (N,) True where a point was moved. A point is kept where it
        was when any solve is ill-conditioned or the answer leaves the first window.
    """
    if window < 3 or window % 2 == 0:
        raise ValueError(f"window must be odd and >= 3, got {window}")
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"image must be (H, W), got shape {img.shape}")
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    n = len(pts)
    if n == 0:
        return pts.copy(), np.zeros(0, dtype=bool)
    h, w = img.shape
    half = window // 2
    sigma = window / 4
    ix, iy = image_gradients(img)
    # Zero gradient beyond the border: outside pixels add nothing to A or b.
    pad = half + 1
    ix = np.pad(ix, pad)
    iy = np.pad(iy, pad)
    offsets = np.arange(-pad, pad + 1)
    span = float(img.max() - img.min())
    full = np.pi * sigma**2 * max(span, 1e-12) ** 2  # trace of a window full of unit gradients

    start = pts.copy()
    current = pts.copy()
    good = np.isfinite(pts).all(axis=1)
    for _ in range(max(1, iterations)):
        cols = np.clip(np.floor(current[:, 0]).astype(int), 0, w - 1)
        rows = np.clip(np.floor(current[:, 1]).astype(int), 0, h - 1)
        rr = rows[:, None, None] + offsets[None, :, None]  # (N, P, 1) image rows
        cc = cols[:, None, None] + offsets[None, None, :]  # (N, 1, P) image columns
        gx, gy = ix[rr + pad, cc + pad], iy[rr + pad, cc + pad]  # (N, P, P)
        xs, ys = cc + 0.5, rr + 0.5
        d2 = (xs - current[:, 0, None, None]) ** 2 + (ys - current[:, 1, None, None]) ** 2
        weight = np.exp(-d2 / (2 * sigma**2)) * (d2 <= (half + 0.5) ** 2)
        sxx = (weight * gx * gx).sum(axis=(1, 2))
        sxy = (weight * gx * gy).sum(axis=(1, 2))
        syy = (weight * gy * gy).sum(axis=(1, 2))
        bx = (weight * (gx * gx * xs + gx * gy * ys)).sum(axis=(1, 2))
        by = (weight * (gx * gy * xs + gy * gy * ys)).sum(axis=(1, 2))
        trace = sxx + syy
        det = sxx * syy - sxy * sxy
        gap = np.sqrt(np.maximum((sxx - syy) ** 2 / 4 + sxy * sxy, 0.0))
        lam_max, lam_min = trace / 2 + gap, trace / 2 - gap
        ok = (trace > min_strength * full) & (lam_min > min_ratio * lam_max) & (det > 0)
        safe = np.where(ok, det, 1.0)
        x = (syy * bx - sxy * by) / safe
        y = (sxx * by - sxy * bx) / safe
        good &= ok & np.isfinite(x) & np.isfinite(y)
        current = np.where(good[:, None], np.stack([x, y], axis=1), current)
    # The answer must stay in the window the search started from.
    good &= (np.abs(current - start) <= half + 0.5).all(axis=1)
    refined = np.where(good[:, None], current, start)
    return refined, good
