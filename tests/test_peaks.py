"""Non-maximum suppression, the most confident share, Harris corners."""

import numpy as np
import pytest
import torch

from keylink.peaks import gaussian_blur, harris_response, keep_share, nms_peaks, top_share

BUMPS = [  # (x pixel, y pixel, height): 10 separated peaks of distinct heights
    (5, 5, 1.0), (20, 6, 0.9), (35, 5, 0.8), (6, 20, 0.7), (21, 21, 0.6),
    (36, 20, 0.5), (5, 35, 0.4), (20, 36, 0.3), (35, 35, 0.2), (28, 12, 0.1),
]  # fmt: skip


def bump_map(size: int = 42, sigma: float = 1.5) -> np.ndarray:
    y, x = np.mgrid[:size, :size]
    out = np.zeros((size, size))
    for bx, by, height in BUMPS:
        out = np.maximum(out, height * np.exp(-((x - bx) ** 2 + (y - by) ** 2) / (2 * sigma**2)))
    return out


def test_nms_finds_every_peak_strongest_first():
    points, scores = nms_peaks(bump_map(), radius=3)
    assert len(points) == 10
    np.testing.assert_allclose(points, [(x + 0.5, y + 0.5) for x, y, _ in BUMPS])
    np.testing.assert_allclose(scores, [h for *_, h in BUMPS])


def test_top_forty_percent_keeps_the_four_strongest():
    points, scores = top_share(*nms_peaks(bump_map(), radius=3), share=0.4)
    np.testing.assert_allclose(points, [(x + 0.5, y + 0.5) for x, y, _ in BUMPS[:4]])
    np.testing.assert_allclose(scores, [1.0, 0.9, 0.8, 0.7])


@pytest.mark.parametrize(("count", "kept"), [(0, 0), (1, 1), (2, 1), (5, 2), (7, 3), (10, 4)])
def test_keep_share_rounds_up(count, kept):
    assert keep_share(count, 0.4) == kept


def test_a_large_radius_suppresses_the_weaker_of_two_close_peaks():
    points, _ = nms_peaks(bump_map(), radius=16)
    # (5, 5) wins over its neighbours (20, 6), (6, 20) and (21, 21) within 16 px.
    assert tuple(points[0]) == (5.5, 5.5)
    assert not any(np.hypot(*(p - [20.5, 6.5])) < 1 for p in points)


def test_plateau_gives_one_peak_and_a_constant_map_none():
    m = np.zeros((20, 20))
    m[10, 4:9] = 1.0
    points, _ = nms_peaks(m, radius=6)
    assert len(points) == 1
    assert nms_peaks(np.ones((20, 20)), radius=3)[0].shape == (0, 2)
    points, _ = nms_peaks(np.ones((20, 20)), radius=5, threshold=0.0)  # huge plateau: fast
    assert 4 <= len(points) <= 16


def test_harris_prefers_a_corner_to_an_edge():
    image = torch.zeros(1, 1, 32, 32)
    image[..., 16:, 16:] = 1.0  # corner at (16, 16), edges along x = 16 and y = 16
    response = harris_response(image)[0]
    points, _ = nms_peaks(response, radius=4, threshold=0.0)
    assert np.hypot(*(points[0] - [16, 16])) < 1.5
    assert response[24, 16] < 0  # on an edge the response is negative


def test_gaussian_blur_keeps_the_mean_and_a_zero_sigma_is_identity():
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(gaussian_blur(x, 0.0), x)
    y = gaussian_blur(torch.ones(1, 1, 16, 16), 2.0)
    torch.testing.assert_close(y, torch.ones_like(y))
