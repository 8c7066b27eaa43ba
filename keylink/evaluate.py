"""Measuring discovered keypoints against labelled landmarks: the linear-fit protocol of
unsupervised keypoint papers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class LinearRegressor:
    """Maps the 2K discovered coordinates of an image to its L landmarks (least squares)."""

    weights: np.ndarray  # (2K [+1], 2L)
    intercept: bool

    def predict(self, keypoints: np.ndarray) -> np.ndarray:
        """(N, K, 2) -> (N, L, 2)."""
        x = _design(keypoints, self.intercept)
        return (x @ self.weights).reshape(len(keypoints), -1, 2)


def _design(keypoints: np.ndarray, intercept: bool) -> np.ndarray:
    x = np.asarray(keypoints, dtype=np.float64).reshape(len(keypoints), -1)
    if intercept:
        x = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    return x


def fit_linear(
    keypoints: np.ndarray, landmarks: np.ndarray, *, intercept: bool = False, ridge: float = 0.0
) -> LinearRegressor:
    """Least squares from (N, K, 2) keypoints to (N, L, 2) landmarks; ``ridge`` adds an L2 penalty
    (scaled by the data's mean squared value so it is unit-free)."""
    x = _design(keypoints, intercept)
    y = np.asarray(landmarks, dtype=np.float64).reshape(len(landmarks), -1)
    gram = x.T @ x
    if ridge > 0:
        gram = gram + ridge * np.trace(gram) / len(gram) * np.eye(len(gram))
    weights = np.linalg.lstsq(gram, x.T @ y, rcond=None)[0]
    return LinearRegressor(weights, intercept)


def mean_point_error(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean Euclidean distance between (N, L, 2) point sets."""
    return float(np.linalg.norm(pred - true, axis=-1).mean())


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
