"""Few-shot naming: a regularised linear map from discovered keypoints to the landmarks a user
labelled on a handful of images, chosen and judged by cross-validation."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from keylink.evaluate import LinearRegressor, fit_linear, fit_shared, to_pixels

# The largest ridges shrink the map to the mean landmark positions (the intercept is not
# penalised), so cross-validation can fall back on the mean shape when the keypoints don't help.
RIDGE_GRID = (1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0, 1e4)
# "shared": each landmark a weighted sum of keypoints (few unknowns: few labels suffice);
# "full": any linear map of all 2K coordinates (the evaluation protocol's; needs more labels).
MAPS = ("shared", "full")


def fit_map(kind: str, keypoints: np.ndarray, landmarks: np.ndarray, ridge: float):
    if kind == "shared":
        return fit_shared(keypoints, landmarks, ridge=ridge)
    return fit_linear(keypoints, landmarks, intercept=True, ridge=ridge)


NAMING_FILE = "naming.json"


@dataclass
class Naming:
    """Everything needed to turn discovered keypoints into named landmarks."""

    names: list[str]
    skeleton: list[tuple[int, int]]
    regressor: LinearRegressor
    cv_error_px: float  # cross-validated mean landmark error on the labelled images
    cv_nme_percent: float
    normalised_by: str
    labelled_images: int
    labels_file: str
    kind: str = "shared"
    fold_regressors: list[LinearRegressor] = field(default_factory=list)

    def predict(self, keypoints_rel: np.ndarray) -> np.ndarray:
        """(N, K, 2) image-relative keypoints -> (N, L, 2) image-relative landmarks."""
        return self.regressor.predict(keypoints_rel)

    def confidence(self, keypoint_confidence: np.ndarray) -> np.ndarray:
        """(N, K) -> (N, L): each landmark's confidence is the mean confidence of the discovered
        keypoints, weighted by how much the landmark depends on each of them."""
        k = keypoint_confidence.shape[1]
        w = np.abs(self.regressor.weights[: 2 * k]).reshape(k, 2, -1, 2).sum(axis=(1, 3))  # (K, L)
        w = w / np.maximum(w.sum(axis=0, keepdims=True), 1e-12)
        return keypoint_confidence @ w

    def disagreement(self, keypoints_rel: np.ndarray) -> np.ndarray:
        """(N,) spread of the cross-validation folds' predictions (image-relative units): high
        where the labelled images did not cover what an image shows."""
        if len(self.fold_regressors) < 2:
            return np.zeros(len(keypoints_rel))
        preds = np.stack([r.predict(keypoints_rel) for r in self.fold_regressors])
        return np.nanmean(np.linalg.norm(preds.std(axis=0), axis=-1), axis=-1)

    def save(self, run_dir: str | Path) -> Path:
        from keylink.io.coco import write_json_atomic

        path = Path(run_dir) / NAMING_FILE
        write_json_atomic(
            path,
            {
                "names": self.names,
                "skeleton": [list(e) for e in self.skeleton],
                "regressor": self.regressor.to_dict(),
                "cv_error_px": self.cv_error_px,
                "cv_nme_percent": self.cv_nme_percent,
                "normalised_by": self.normalised_by,
                "labelled_images": self.labelled_images,
                "labels_file": self.labels_file,
                "kind": self.kind,
                "fold_regressors": [r.to_dict() for r in self.fold_regressors],
            },
        )
        return path

    @classmethod
    def load(cls, run_dir: str | Path) -> Naming | None:
        path = Path(run_dir) / NAMING_FILE
        if not path.is_file():
            return None
        d = json.loads(path.read_text())
        return cls(
            names=d["names"],
            skeleton=[tuple(e) for e in d["skeleton"]],
            regressor=LinearRegressor.from_dict(d["regressor"]),
            cv_error_px=d["cv_error_px"],
            cv_nme_percent=d["cv_nme_percent"],
            normalised_by=d["normalised_by"],
            labelled_images=d["labelled_images"],
            labels_file=d["labels_file"],
            kind=d.get("kind", "full"),
            fold_regressors=[LinearRegressor.from_dict(r) for r in d["fold_regressors"]],
        )


def folds(n: int, max_folds: int = 10, seed: int = 0) -> list[np.ndarray]:
    """Test indices of each fold: leave-one-out up to ``max_folds`` images, else k-fold."""
    order = np.random.default_rng(seed).permutation(n)
    return [f for f in np.array_split(order, min(n, max_folds)) if len(f)]


def cross_validate(
    keypoints_rel: np.ndarray,
    landmarks_rel: np.ndarray,
    sizes: list[tuple[int, int]],
    ridge: float,
    norm_distance: np.ndarray,
    kind: str = "shared",
) -> tuple[float, float, list[LinearRegressor]]:
    """Mean pixel error and NME (percent) of held-out predictions, and the fold regressors."""
    n = len(keypoints_rel)
    pred = np.full_like(landmarks_rel, np.nan)
    regressors = []
    for test in folds(n):
        train = np.setdiff1d(np.arange(n), test)
        reg = fit_map(kind, keypoints_rel[train], landmarks_rel[train], ridge)
        pred[test] = reg.predict(keypoints_rel[test])
        regressors.append(reg)
    err = np.linalg.norm(to_pixels(pred, sizes) - to_pixels(landmarks_rel, sizes), axis=-1)
    nme = np.nanmean(err / np.maximum(norm_distance, 1e-9)[:, None]) * 100
    return float(np.nanmean(err)), float(nme), regressors


def fit_naming(
    keypoints_rel: np.ndarray,
    landmarks_rel: np.ndarray,
    sizes: list[tuple[int, int]],
    names: list[str],
    skeleton: list[tuple[int, int]],
    norm_distance: np.ndarray,
    normalised_by: str,
    labels_file: str,
    ridge: float | None = None,
) -> Naming:
    """Choose the map and the ridge by cross-validation (the ridge unless given) and fit on all
    labelled images."""
    if len(keypoints_rel) < 3:
        raise ValueError(f"naming needs at least 3 labelled images, got {len(keypoints_rel)}")
    candidates = RIDGE_GRID if ridge is None else (ridge,)
    results = [
        (cross_validate(keypoints_rel, landmarks_rel, sizes, r, norm_distance, kind), kind, r)
        for kind in MAPS
        for r in candidates
    ]
    (err_px, nme, fold_regs), kind, best = min(results, key=lambda item: item[0][0])
    regressor = fit_map(kind, keypoints_rel, landmarks_rel, best)
    return Naming(
        names=list(names),
        skeleton=list(skeleton),
        regressor=regressor,
        cv_error_px=err_px,
        cv_nme_percent=nme,
        normalised_by=normalised_by,
        labelled_images=len(keypoints_rel),
        labels_file=labels_file,
        kind=kind,
        fold_regressors=fold_regs,
    )
