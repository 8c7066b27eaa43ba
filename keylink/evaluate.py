"""Measuring discovered keypoints against labelled landmarks: the linear-fit protocol of
unsupervised keypoint papers.

A linear regressor maps the 2K discovered coordinates of an image to its L landmarks. It is fitted
on a labelled split and measured on a test split, in image-relative coordinates (each image's own
width and height map to [-1, 1]) so that images of different sizes are handled exactly; errors are
measured back in each image's pixels and normalised by a per-image distance (NME).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from keylink.geometry import segment_distance_sq

DEFAULT_PCK = (0.05, 0.1, 0.2)
EYE_NAMES = (("left_eye", "right_eye"), ("lefteye", "righteye"), ("leye", "reye"))


@dataclass
class LinearRegressor:
    """Maps the 2K discovered coordinates of an image to its L landmarks (least squares)."""

    weights: np.ndarray  # (2K [+1], 2L)
    intercept: bool
    ridge: float = 0.0

    def predict(self, keypoints: np.ndarray) -> np.ndarray:
        """(N, K, 2) -> (N, L, 2)."""
        x = _design(keypoints, self.intercept)
        return (x @ self.weights).reshape(len(keypoints), -1, 2)

    def to_dict(self) -> dict:
        return {
            "weights": self.weights.tolist(),
            "intercept": self.intercept,
            "ridge": self.ridge,
        }

    @classmethod
    def from_dict(cls, data: dict) -> LinearRegressor:
        return cls(np.asarray(data["weights"], dtype=np.float64), data["intercept"], data["ridge"])


def _design(keypoints: np.ndarray, intercept: bool) -> np.ndarray:
    x = np.asarray(keypoints, dtype=np.float64).reshape(len(keypoints), -1)
    if intercept:
        x = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    return x


def fit_linear(
    keypoints: np.ndarray, landmarks: np.ndarray, *, intercept: bool = False, ridge: float = 0.0
) -> LinearRegressor:
    """Least squares from (N, K, 2) keypoints to (N, L, 2) landmarks.

    ``ridge`` adds an L2 penalty relative to the mean diagonal of X^T X, so it is unit-free; the
    intercept (when asked for) is not penalised, so strong ridge shrinks towards the mean shape.
    Missing (NaN) landmarks are left out of their own column's fit."""
    x = _design(keypoints, False)
    y = np.asarray(landmarks, dtype=np.float64).reshape(len(landmarks), -1)
    weights = np.zeros((x.shape[1] + intercept, y.shape[1]))
    for cols, rows in _column_groups(np.isfinite(y)):
        xs, ys = x[rows], y[rows][:, cols]
        x_mean = xs.mean(axis=0) if intercept else np.zeros(xs.shape[1])
        y_mean = ys.mean(axis=0) if intercept else np.zeros(ys.shape[1])
        xc = xs - x_mean
        gram = xc.T @ xc
        scale = np.trace(gram) / len(gram) + 1e-12
        # A tiny floor keeps the solve defined when K is large and images are few.
        penalty = max(ridge, 1e-9) * scale * np.eye(len(gram))
        w = np.linalg.solve(gram + penalty, xc.T @ (ys - y_mean))
        weights[: x.shape[1], cols] = w
        if intercept:
            weights[-1, cols] = y_mean - x_mean @ w
    return LinearRegressor(weights, intercept, ridge)


def fit_shared(
    keypoints: np.ndarray, landmarks: np.ndarray, *, ridge: float = 0.0
) -> LinearRegressor:
    """A landmark as a weighted sum of keypoints, the same weights for x and y, plus an offset.

    K weights per landmark instead of 2K per coordinate: what few labelled images can pin down.
    Returned as an ordinary LinearRegressor (with intercept, unpenalised)."""
    kp = np.asarray(keypoints, dtype=np.float64)
    y = np.asarray(landmarks, dtype=np.float64)
    n, k, _ = kp.shape
    n_marks = y.shape[1]
    weights = np.zeros((2 * k + 1, 2 * n_marks))
    for mark in range(n_marks):
        rows = np.isfinite(y[:, mark]).all(axis=-1)
        xs, ys = kp[rows], y[rows, mark]
        x_mean, y_mean = xs.mean(axis=0), ys.mean(axis=0)  # (K, 2), (2,)
        design = (xs - x_mean).transpose(0, 2, 1).reshape(-1, k)  # (2n, K): x rows then y rows
        target = (ys - y_mean).reshape(-1)
        gram = design.T @ design
        penalty = max(ridge, 1e-9) * (np.trace(gram) / k + 1e-12) * np.eye(k)
        a = np.linalg.solve(gram + penalty, design.T @ target)
        weights[0 : 2 * k : 2, 2 * mark] = a
        weights[1 : 2 * k : 2, 2 * mark + 1] = a
        weights[-1, 2 * mark : 2 * mark + 2] = y_mean - a @ x_mean
    return LinearRegressor(weights, True, ridge)


def _column_groups(valid: np.ndarray):
    """Groups of output columns that share the same labelled rows (usually just one group)."""
    groups: dict[bytes, list[int]] = {}
    for j in range(valid.shape[1]):
        groups.setdefault(valid[:, j].tobytes(), []).append(j)
    for cols in groups.values():
        yield np.array(cols), valid[:, cols[0]]


def to_relative(points: np.ndarray, sizes: Sequence[tuple[int, int]]) -> np.ndarray:
    """(N, P, 2) pixel coordinates -> image-relative [-1, 1] coordinates."""
    wh = np.asarray(sizes, dtype=np.float64)[:, None, :]
    return np.asarray(points, dtype=np.float64) / wh * 2 - 1


def to_pixels(points: np.ndarray, sizes: Sequence[tuple[int, int]]) -> np.ndarray:
    wh = np.asarray(sizes, dtype=np.float64)[:, None, :]
    return (np.asarray(points, dtype=np.float64) + 1) / 2 * wh


def mean_point_error(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean Euclidean distance between (N, L, 2) point sets, ignoring missing points."""
    return float(np.nanmean(np.linalg.norm(pred - true, axis=-1)))


def linear_fit_error(
    train_keypoints: np.ndarray,
    train_landmarks: np.ndarray,
    test_keypoints: np.ndarray,
    test_landmarks: np.ndarray,
    *,
    intercept: bool = False,
    ridge: float = 1e-6,
) -> float:
    """Mean error on the test split after fitting the regressor on the train split."""
    reg = fit_linear(train_keypoints, train_landmarks, intercept=intercept, ridge=ridge)
    return mean_point_error(reg.predict(test_keypoints), test_landmarks)


def normalising_distance(
    landmarks: np.ndarray, names: Sequence[str], norm: tuple[str, str] | None = None
) -> tuple[np.ndarray, str]:
    """Per-image distance that errors are divided by, and its description: between the two named
    landmarks (``norm``; by default the eyes when there are eye landmarks), else the size of the
    landmarks' bounding box (square root of its area)."""
    lower = [n.lower() for n in names]
    if norm is None:
        for a, b in EYE_NAMES:
            if a in lower and b in lower:
                norm = (names[lower.index(a)], names[lower.index(b)])
                break
    if norm is not None:
        for name in norm:
            if name not in names:
                raise ValueError(f"--norm: no landmark named {name!r}; known: {', '.join(names)}")
        a, b = names.index(norm[0]), names.index(norm[1])
        d = np.linalg.norm(landmarks[:, a] - landmarks[:, b], axis=-1)
        return d, f"distance {norm[0]}-{norm[1]}"
    span = np.nanmax(landmarks, axis=1) - np.nanmin(landmarks, axis=1)
    return np.sqrt(np.prod(span, axis=-1)), "landmark bounding-box size"


@dataclass
class Scores:
    """Errors of predicted landmarks against the truth."""

    nme: float  # percent of the normalising distance
    nme_per_landmark: dict[str, float]
    error_px: float
    error_px_per_landmark: dict[str, float]
    pck: dict[float, float]  # threshold (fraction of the normalising distance) -> percent
    n_images: int
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "nme_percent": round(self.nme, 3),
            "nme_percent_per_landmark": {k: round(v, 3) for k, v in self.nme_per_landmark.items()},
            "error_px": round(self.error_px, 3),
            "error_px_per_landmark": {
                k: round(v, 3) for k, v in self.error_px_per_landmark.items()
            },
            "pck_percent": {str(k): round(v, 2) for k, v in self.pck.items()},
            "images": self.n_images,
            **self.extra,
        }


def score(
    pred: np.ndarray,
    true: np.ndarray,
    names: Sequence[str],
    norm_distance: np.ndarray,
    pck: Sequence[float] = DEFAULT_PCK,
) -> Scores:
    """NME, pixel error and PCK of (N, L, 2) predictions; NaN truths are left out."""
    err = np.linalg.norm(pred - true, axis=-1)  # (N, L)
    usable = np.isfinite(err) & (norm_distance[:, None] > 0)
    rel = np.where(usable, err / np.where(norm_distance > 0, norm_distance, 1)[:, None], np.nan)
    return Scores(
        nme=float(np.nanmean(rel) * 100),
        nme_per_landmark={n: float(np.nanmean(rel[:, i]) * 100) for i, n in enumerate(names)},
        error_px=float(np.nanmean(err)),
        error_px_per_landmark={n: float(np.nanmean(err[:, i])) for i, n in enumerate(names)},
        pck={t: float(np.mean(rel[usable] <= t) * 100) for t in pck},
        n_images=len(pred),
    )


def pixel_pck(pred: np.ndarray, true: np.ndarray, thresholds_px: Sequence[float]) -> dict:
    err = np.linalg.norm(pred - true, axis=-1)
    ok = np.isfinite(err)
    return {f"{t:g}px": float(np.mean(err[ok] <= t) * 100) for t in thresholds_px}


@dataclass
class SkeletonAgreement:
    """How a learned skeleton matches a true one, once each keypoint is matched to the joint it
    stays nearest to (over all images) if it stays within ``radius`` of it on average."""

    joint_of: list[int | None]  # per keypoint: its joint, None if it follows none
    edges: int  # learned edges
    on_bones: int  # learned edges that join the two ends of a true bone
    bones: int  # true bones
    bones_found: int  # true bones with a learned edge along them
    along_bones: int  # learned edges that run along the true skeleton (see skeleton_agreement)

    @property
    def precision(self) -> float:
        return 100.0 * self.on_bones / self.edges if self.edges else 0.0

    @property
    def recall(self) -> float:
        return 100.0 * self.bones_found / self.bones if self.bones else 0.0

    def to_dict(self) -> dict:
        return {
            "edges": self.edges,
            "edges_on_bones": self.on_bones,
            "edge_precision_percent": round(self.precision, 1),
            "bones": self.bones,
            "bones_found": self.bones_found,
            "bone_recall_percent": round(self.recall, 1),
            "edges_along_bones": self.along_bones,
            "joints_followed": sorted({j for j in self.joint_of if j is not None}),
        }


def skeleton_agreement(
    keypoints: np.ndarray,
    skeleton: Sequence[tuple[int, int]],
    joints: np.ndarray,
    bones: Sequence[tuple[int, int]],
    radius: float,
    tolerance: float | None = None,
) -> SkeletonAgreement:
    """Compare a learned skeleton on (N, K, 2) keypoints with true ``bones`` on (N, J, 2) joints
    (same units as ``radius``). An edge counts as on a bone when its two keypoints follow the two
    ends of that bone. An edge runs along the bones when, in at least half of the images, no point
    of it is farther than ``tolerance`` (default ``radius / 2``) from the true skeleton's lines
    and it is longer than twice that: this also counts edges whose ends sit between joints, or
    that span two bones of a straight limb, which the picture shows as on the limbs."""
    dist = np.linalg.norm(keypoints[:, :, None] - joints[:, None], axis=-1)  # (N, K, J)
    mean = np.nanmean(dist, axis=0)
    nearest = mean.argmin(axis=1)
    joint_of = [int(j) if mean[k, j] <= radius else None for k, j in enumerate(nearest)]
    true = {frozenset(b) for b in bones}
    hits = {
        frozenset((joint_of[i], joint_of[j]))
        for i, j in skeleton
        if joint_of[i] is not None and joint_of[j] is not None
    } & true
    on = sum(
        1
        for i, j in skeleton
        if None not in (joint_of[i], joint_of[j]) and frozenset((joint_of[i], joint_of[j])) in true
    )
    tolerance = radius / 2 if tolerance is None else tolerance
    offsets = edge_offsets(keypoints, skeleton, joints, bones)
    # An edge between two keypoints on the same spot lies on the bones trivially: not counted.
    lengths = np.array(
        [
            np.nanmedian(np.linalg.norm(keypoints[:, i] - keypoints[:, j], axis=-1))
            for i, j in skeleton
        ]
    )
    along = int(np.sum((offsets <= tolerance) & (lengths > 2 * tolerance)))
    return SkeletonAgreement(joint_of, len(skeleton), on, len(true), len(hits), along)


def edge_offsets(
    keypoints: np.ndarray,
    skeleton: Sequence[tuple[int, int]],
    joints: np.ndarray,
    bones: Sequence[tuple[int, int]],
    samples: int = 16,
) -> np.ndarray:
    """Per learned edge, the median over images of its largest distance from the true skeleton:
    points along the segment between its keypoints, each measured to the nearest true bone
    segment. Images where an edge's keypoint or a bone's joint is NaN are left out."""
    if not len(skeleton):
        return np.zeros(0)
    kp = torch.as_tensor(np.asarray(keypoints, dtype=np.float64))
    jt = torch.as_tensor(np.asarray(joints, dtype=np.float64))
    t = torch.linspace(0.0, 1.0, samples, dtype=torch.float64)[None, :, None]
    bone_a = jt[:, [a for a, _ in bones]][:, None]  # (N, 1, M, 2)
    bone_b = jt[:, [b for _, b in bones]][:, None]
    offsets = []
    for i, j in skeleton:
        points = kp[:, i, None] * (1 - t) + kp[:, j, None] * t  # (N, samples, 2)
        gap = segment_distance_sq(points[:, :, None], bone_a, bone_b).sqrt().numpy()  # (N, s, M)
        worst = np.nanmin(gap, axis=-1).max(axis=-1)  # NaN where an image lacks the edge
        offsets.append(np.nanmedian(worst) if np.isfinite(worst).any() else np.inf)
    return np.asarray(offsets)


def limb_coverage(
    keypoints: np.ndarray,
    skeleton: Sequence[tuple[int, int]],
    joints: np.ndarray,
    limbs: Sequence[Sequence[int]],
    tolerance: float,
    samples: int = 16,
) -> np.ndarray:
    """Per limb (a chain of joint indices, such as shoulder-elbow-wrist), the share of its length
    that the learned skeleton draws, averaged over images: the share of points along the limb
    within ``tolerance`` of a learned edge that runs along that limb (no point of the edge
    farther than ``tolerance`` from the limb, and the edge longer than twice that). A limb linked
    joint to joint scores near 1; one left out, or crossed by edges to elsewhere, 0.
    keypoints: (N, K, 2); joints: (N, J, 2), in the same units as ``tolerance``."""
    kp = torch.as_tensor(np.asarray(keypoints, dtype=np.float64))
    jt = torch.as_tensor(np.asarray(joints, dtype=np.float64))
    if not len(skeleton):
        return np.zeros(len(limbs))
    t = torch.linspace(0.0, 1.0, samples, dtype=torch.float64)[None, :, None]
    first = kp[:, [i for i, _ in skeleton]]  # (N, E, 2)
    second = kp[:, [j for _, j in skeleton]]
    edge_points = first[:, :, None] * (1 - t[:, None]) + second[:, :, None] * t[:, None]
    long = (first - second).norm(dim=-1) > 2 * tolerance  # (N, E)
    shares = []
    for limb in limbs:
        a = jt[:, list(limb[:-1])]  # (N, S, 2): the limb's segments
        b = jt[:, list(limb[1:])]
        # An edge runs along the limb when all its points lie near one of the limb's segments.
        gap = segment_distance_sq(edge_points[..., None, :], a[:, None, None], b[:, None, None])
        along = long & (gap.amin(-1).amax(-1) <= tolerance**2)  # (N, E)
        limb_points = (a[:, :, None] * (1 - t[:, None]) + b[:, :, None] * t[:, None]).flatten(1, 2)
        near = segment_distance_sq(limb_points[:, :, None], first[:, None], second[:, None])
        drawn = ((near <= tolerance**2) & along[:, None]).any(-1)  # (N, points)
        shares.append(float(drawn.double().mean()))
    return np.asarray(shares)
