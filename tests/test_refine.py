"""The Förstner operator on rendered corners, straight edges and flat patches."""

import numpy as np
import pytest

from keylink.refine import forstner


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    t = np.arange(-4, 5)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    padded = np.pad(image, 4, mode="edge")
    rows = np.stack([np.convolve(r, k, "valid") for r in padded])
    return np.stack([np.convolve(c, k, "valid") for c in rows.T]).T


def render(inside, size: int = 32, supersample: int = 16, blur: float = 0.7) -> np.ndarray:
    """An image whose pixels are the covered share of the region ``inside(x, y)`` (exact area up
    to the supersampling), seen through a Gaussian blur of ``blur`` px (a lens)."""
    c = (np.arange(size * supersample) + 0.5) / supersample
    x, y = np.meshgrid(c, c)
    covered = inside(x, y).astype(np.float64)
    image = covered.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
    return _blur(image, blur) if blur else image


def checkerboard_corner(x0: float, y0: float, angle: float):
    ca, sa = np.cos(angle), np.sin(angle)
    return lambda x, y: (
        ((ca * (x - x0) + sa * (y - y0)) > 0) ^ ((ca * (y - y0) - sa * (x - x0)) > 0)
    )


@pytest.mark.parametrize("seed", range(6))
def test_recovers_a_rendered_corner_within_five_hundredths_of_a_pixel(seed):
    rng = np.random.default_rng(seed)
    x0, y0 = 16 + rng.uniform(-1, 1, 2)
    angle = rng.uniform(0, np.pi / 2)
    image = 40 + 180 * render(checkerboard_corner(x0, y0, angle))
    start = np.array([[np.floor(x0) + 0.5 + rng.integers(-1, 2), np.floor(y0) + 0.5]])
    refined, moved = forstner(image, start, window=15)
    assert moved[0]
    assert np.hypot(*(refined[0] - [x0, y0])) < 0.05


def test_an_l_corner_is_found_a_little_inside():
    # One bright quadrant: the operator's known bias puts the answer slightly inside the corner.
    x0, y0 = 15.3, 16.6
    image = render(lambda x, y: (x > x0) & (y > y0))
    refined, moved = forstner(image, [[15.5, 16.5]], window=15)
    assert moved[0]
    error = refined[0] - [x0, y0]
    assert np.hypot(*error) < 0.25
    assert error[0] > 0 and error[1] > 0  # inside the bright quadrant


@pytest.mark.parametrize("angle", [0.0, 0.4, np.pi / 4, 1.3])
def test_a_point_on_a_straight_edge_stays_where_it_was(angle):
    normal = np.array([np.cos(angle), np.sin(angle)])
    image = render(lambda x, y: (x - 16.2) * normal[0] + (y - 15.7) * normal[1] > 0)
    points = np.array([[16.5, 15.5], [14.5, 18.5], [19.5, 13.5]])
    refined, moved = forstner(image, points, window=11)
    assert not moved.any()
    np.testing.assert_array_equal(refined, points)


def test_a_point_on_a_flat_patch_stays_where_it_was():
    image = np.full((32, 32), 0.3)
    image[:, 24:] = 0.9  # contrast elsewhere in the image does not matter
    points = np.array([[8.2, 10.7], [0.5, 0.5]])
    refined, moved = forstner(image, points, window=7)
    assert not moved.any()
    np.testing.assert_array_equal(refined, points)


def test_corner_near_the_border_and_empty_input():
    image = render(checkerboard_corner(3.4, 4.2, 0.2))
    refined, moved = forstner(image, [[3.5, 4.5]], window=7)
    assert moved[0] and np.hypot(*(refined[0] - [3.4, 4.2])) < 0.15
    refined, moved = forstner(image, np.zeros((0, 2)))
    assert refined.shape == (0, 2) and moved.shape == (0,)
    with pytest.raises(ValueError, match="odd"):
        forstner(image, [[1.0, 1.0]], window=4)
