"""Measuring weakly supervised keypoints against labelled landmarks.

The keypoints have no fixed identity or count, so they are scored as detections: precision is the
share of detected keypoints within r of some landmark, recall the share of landmarks with a
detected keypoint within r, r a fraction of each image's normalising distance (the inter-ocular
distance on faces). Two baselines get the same number of points per image: uniform random points
and the strongest Harris corners. Per class, a histogram of which landmark the keypoints hit says
what the classifier looks at (the poster's "salient feature").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from keylink.config import RunConfig
from keylink.data.images import Resize, load_image
from keylink.peaks import harris_response, nms_peaks

DEFAULT_RADII = (0.1, 0.2)
METHODS = ("keylink", "random", "harris")


def match(
    points: np.ndarray, landmarks: np.ndarray, distance: float
) -> tuple[np.ndarray, np.ndarray]:
    """For each of (K, 2) points, the normalised distance (divided by ``distance``) to its nearest
    (L, 2) landmark and that landmark's index; missing (NaN) landmarks are ignored, and with none
    left every point is at distance inf, index -1."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    marks = np.asarray(landmarks, dtype=np.float64)
    valid = np.isfinite(marks).all(axis=1)
    if len(pts) == 0 or not valid.any():
        return np.full(len(pts), np.inf), np.full(len(pts), -1)
    d = np.linalg.norm(pts[:, None] - marks[None], axis=-1) / distance
    d[:, ~valid] = np.inf
    return d.min(axis=1), d.argmin(axis=1)


def landmark_distances(points: np.ndarray, landmarks: np.ndarray, distance: float) -> np.ndarray:
    """(L,) normalised distance from each landmark to its nearest point (NaN for a missing
    landmark, inf when there is no point)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    marks = np.asarray(landmarks, dtype=np.float64)
    out = np.full(len(marks), np.inf)
    if len(pts):
        out = np.linalg.norm(marks[:, None] - pts[None], axis=-1).min(axis=1) / distance
    out[~np.isfinite(marks).all(axis=1)] = np.nan
    return out


def precision_recall(
    detections: Sequence[np.ndarray],
    landmarks: np.ndarray,
    distance: np.ndarray,
    radius: float,
) -> dict[str, float]:
    """Pooled over the images: precision and recall in percent at ``radius`` (a fraction of each
    image's ``distance``), and the counts behind them. Images without a usable distance are left
    out."""
    hit_points = n_points = hit_marks = n_marks = 0
    for pts, marks, d in zip(detections, landmarks, distance, strict=True):
        if not np.isfinite(d) or d <= 0:
            continue
        near, _ = match(pts, marks, d)
        hit_points += int((near <= radius).sum())
        n_points += len(near)
        to_point = landmark_distances(pts, marks, d)
        ok = ~np.isnan(to_point)
        hit_marks += int((to_point[ok] <= radius).sum())
        n_marks += int(ok.sum())
    return {
        "precision": 100.0 * hit_points / n_points if n_points else 0.0,
        "recall": 100.0 * hit_marks / n_marks if n_marks else 0.0,
        "points": n_points,
        "landmarks": n_marks,
    }


def landmark_histogram(
    detections: Sequence[np.ndarray],
    landmarks: np.ndarray,
    distance: np.ndarray,
    radius: float,
    names: Sequence[str],
    groups: Sequence[str],
) -> dict[str, dict]:
    """Per group (class): how many detected keypoints hit each landmark (the nearest within
    ``radius``), the landmark hit most often, and the group's image count."""
    out: dict[str, dict] = {}
    for pts, marks, d, group in zip(detections, landmarks, distance, groups, strict=True):
        entry = out.setdefault(group, {"images": 0, "histogram": dict.fromkeys(names, 0)})
        entry["images"] += 1
        if not np.isfinite(d) or d <= 0:
            continue
        near, which = match(pts, marks, d)
        for j in which[near <= radius]:
            entry["histogram"][names[j]] += 1
    for entry in out.values():
        counts = entry["histogram"]
        entry["most_hit"] = max(counts, key=counts.get) if any(counts.values()) else None
    return dict(sorted(out.items()))


def random_points(
    counts: Sequence[int], sizes: Sequence[tuple[int, int]], seed: int = 0
) -> list[np.ndarray]:
    """Baseline: ``counts[i]`` points uniform over image i (width, height)."""
    rng = np.random.default_rng(seed)
    return [
        rng.uniform(0, 1, (n, 2)) * np.array(wh, dtype=np.float64)
        for n, wh in zip(counts, sizes, strict=True)
    ]


def harris_points(
    model_inputs: np.ndarray,
    counts: Sequence[int],
    sizes: Sequence[tuple[int, int]],
    resize: Resize,
    radius: int,
    masks: np.ndarray | None = None,
    sigma: float = 1.5,
) -> list[np.ndarray]:
    """Baseline: the ``counts[i]`` strongest Harris corners of each (S, S, 3) uint8 model input
    (non-maximum suppressed with the same radius as the keypoints), in original pixels."""
    out = []
    for i, (n, (w, h)) in enumerate(zip(counts, sizes, strict=True)):
        grey = torch.from_numpy(model_inputs[i]).float().mean(dim=-1) / 255
        response = harris_response(grey[None, None], sigma=sigma)[0]
        if masks is not None:
            response = torch.where(
                torch.from_numpy(masks[i]), response, torch.full_like(response, -np.inf)
            )
        pts, _ = nms_peaks(response, radius)  # weak corners too, when strong ones run out
        out.append(resize.to_original(pts[:n], w, h).reshape(-1, 2))
    return out


def score_methods(
    detections: dict[str, Sequence[np.ndarray]],
    landmarks: np.ndarray,
    distance: np.ndarray,
    radii: Sequence[float] = DEFAULT_RADII,
) -> dict[str, dict[str, dict[str, float]]]:
    """``{"precision_percent": {radius: {method: value}}, "recall_percent": {...}}``."""
    out: dict[str, dict[str, dict[str, float]]] = {"precision_percent": {}, "recall_percent": {}}
    for r in radii:
        key = f"{r:g}"
        out["precision_percent"][key] = {}
        out["recall_percent"][key] = {}
        for method, found in detections.items():
            pr = precision_recall(found, landmarks, distance, r)
            out["precision_percent"][key][method] = round(pr["precision"], 2)
            out["recall_percent"][key][method] = round(pr["recall"], 2)
    return out


def evaluate_weak(
    run_dir: str | Path,
    test: str | Path,
    *,
    images: str | Path | None = None,
    norm: tuple[str, str] | None = None,
    radii: Sequence[float] = DEFAULT_RADII,
    groups: Sequence[str] | None = None,
    device: str = "auto",
    progress: bool = True,
    seed: int = 0,
) -> dict:
    """Annotate the ground truth's images with a weak run and score the keypoints against its
    landmarks (precision and recall at each radius, beside random points and Harris corners at
    the same count per image), with the per-class landmark histogram. ``groups`` gives each image's
    class for the histogram (default: the classifier's prediction)."""
    from keylink.evaluate import normalising_distance
    from keylink.io.groundtruth import read_ground_truth
    from keylink.methods.weak.pipeline import annotate_weak, content_mask

    gt = read_ground_truth(test, images)
    result = annotate_weak(run_dir, gt.image_paths, None, device=device, progress=progress)
    if result.skipped:
        path, why = result.skipped[0]
        raise ValueError(f"a labelled image could not be read: {path}: {why}")
    config = RunConfig.load(Path(run_dir) / "config.json")
    resize = Resize(config.weak.image_size, config.weak.resize)
    inputs = np.stack([resize.apply(load_image(p)) for p in result.paths])
    masks = np.stack([content_mask(resize, w, h) for w, h in result.sizes])
    counts = [len(k) for k in result.keypoints]
    detections = {
        "keylink": result.keypoints,
        "random": random_points(counts, result.sizes, seed),
        "harris": harris_points(
            inputs, counts, result.sizes, resize, config.weak.nms_radius, masks
        ),
    }
    distance, norm_text = normalising_distance(gt.points, gt.names, norm)
    if groups is None:
        groups = [result.classes[int(c)] for c in result.predicted]
        grouped_by = "predicted class"
    else:
        if len(groups) != len(gt):
            raise ValueError(f"{len(groups)} classes given for {len(gt)} images")
        grouped_by = "given class"
    return {
        "run": str(run_dir),
        "test": {"file": str(test), "images": len(gt)},
        "normalised_by": norm_text,
        "radii": [float(r) for r in radii],
        "keypoints_per_image": round(float(np.mean(counts)), 2),
        "seconds_per_image": round(result.seconds_per_image, 4),
        **score_methods(detections, gt.points, distance, radii),
        "salient_landmarks": {
            "grouped_by": grouped_by,
            **{
                f"{r:g}": landmark_histogram(
                    result.keypoints, gt.points, distance, r, gt.names, groups
                )
                for r in radii
            },
        },
    }
