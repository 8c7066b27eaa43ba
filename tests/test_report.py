from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keylink.report import draw_keypoints, heatmap_overlay, image_grid, keypoint_colors, save_png


def test_keypoint_colors_distinct_and_stable() -> None:
    for k in (1, 5, 17, 40):
        colours = keypoint_colors(k)
        assert colours.shape == (k, 3) and colours.dtype == np.uint8
        assert len({tuple(c) for c in colours}) == k
        np.testing.assert_array_equal(colours, keypoint_colors(k))
    assert keypoint_colors(0).shape == (0, 3)


def test_draw_keypoints_shape_and_position_with_scale() -> None:
    image = np.zeros((40, 50, 3), dtype=np.uint8)
    keypoints = np.array([[10.5, 20.5], [30.25, 8.75], [np.nan, np.nan], [45.0, 35.0]])
    out = draw_keypoints(image, keypoints, skeleton=[(0, 1), (1, 2)], scale=3)
    assert out.shape == (120, 150, 3) and out.dtype == np.uint8
    colours = keypoint_colors(4)
    for i in (0, 1, 3):
        x, y = keypoints[i] * 3  # the point's position in the enlarged picture
        col, row = int(x), int(y)  # the pixel that contains it
        patch = out[row - 1 : row + 2, col - 1 : col + 2].reshape(-1, 3)
        assert (patch == colours[i]).all(), (i, patch)
    # The skeleton line 0-1 is drawn; the NaN keypoint 2 and its edge are not, and a corner far
    # from every keypoint stays black.
    mid = (keypoints[0] + keypoints[1]) / 2 * 3
    assert out[int(mid[1]), int(mid[0])].any()
    assert not out[110:, :20].any()
    # The input is not modified.
    assert not image.any()


def test_draw_keypoints_options() -> None:
    image = np.full((30, 30), 0.5)  # float grey image
    keypoints = np.array([[5.0, 5.0, 2], [25.0, 25.0, 2], [15.0, 5.0, 0]])  # COCO x, y, v
    colors = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)
    out = draw_keypoints(
        image,
        keypoints,
        skeleton=[(0, 1), (1, 2)],
        edge_weights=[0.0, 1.0],
        confidences=np.array([1.0, 0.2, 1.0]),
        labels=["a", "b", "c"],
        colors=colors,
        scale=2,
    )
    assert out.shape == (60, 60, 3)
    np.testing.assert_array_equal(out[10, 10], [255, 0, 0])
    # Low confidence: the disc is translucent, a blend of green and the grey image.
    r, g, b = (int(v) for v in out[50, 50])
    assert g > r + 40 and r > 0
    # v == 0: keypoint 2 is not drawn; weight-0 edge 0-1 is invisible.
    np.testing.assert_array_equal(out[30, 30], [128, 128, 128])
    assert (out[10, 30] != [0, 0, 255]).any()
    with pytest.raises(ValueError):
        draw_keypoints(image, keypoints, skeleton=[(0, 5)])
    with pytest.raises(ValueError):
        draw_keypoints(image, keypoints, skeleton=[(0, 1)], edge_weights=[1.0, 2.0])
    with pytest.raises(ValueError):
        draw_keypoints(image, keypoints, scale=0)


def test_image_grid_size_arithmetic() -> None:
    images = [np.full((20, 30, 3), i * 40, dtype=np.uint8) for i in range(5)]
    images[3] = np.zeros((7, 9, 3), dtype=np.uint8)  # resized to 20 x 30
    grid = image_grid(images, columns=2, pad=3)
    assert grid.shape == (3 * 20 + 4 * 3, 2 * 30 + 3 * 3, 3) and grid.dtype == np.uint8
    # Tile 2 (row 1, col 0) starts at (pad + h + pad, pad).
    np.testing.assert_array_equal(grid[26:46, 3:33], 80)
    np.testing.assert_array_equal(grid[:3], 255)  # padding
    np.testing.assert_array_equal(grid[49:, 36:], 255)  # empty last cell
    assert image_grid(images[:2], columns=4, pad=0).shape == (20, 60, 3)
    titled = image_grid(images[:2], columns=2, titles=["first", "second"])
    assert titled.shape == (24, 66, 3)
    assert (titled != image_grid(images[:2], columns=2)).any()


def test_heatmap_overlay_peak() -> None:
    image = np.full((60, 90, 3), 100, dtype=np.uint8)
    ys, xs = np.indices((12, 18))
    heatmap = np.exp(-((xs - 13) ** 2 + (ys - 3) ** 2) / 4.0)
    out = heatmap_overlay(image, heatmap, alpha=0.6)
    assert out.shape == (60, 90, 3) and out.dtype == np.uint8
    brightness = out.astype(float).sum(axis=2)
    row, col = np.unravel_index(np.argmax(brightness), brightness.shape)
    # Heatmap cell (13, 3) has its centre at (13.5, 3.5) * 5 in the image.
    assert abs(col + 0.5 - 67.5) <= 3 and abs(row + 0.5 - 17.5) <= 3
    assert brightness[row, col] > brightness[55, 5] + 200
    flat = heatmap_overlay(image, np.ones((3, 3)), alpha=0.0)
    np.testing.assert_array_equal(flat, image)


def test_save_png(tmp_path: Path) -> None:
    image = np.random.default_rng(0).integers(0, 256, (8, 9, 3), dtype=np.uint8)
    path = tmp_path / "a" / "b" / "pic.png"
    save_png(path, image)
    save_png(path, image)  # overwriting works
    with Image.open(path) as im:
        np.testing.assert_array_equal(np.asarray(im), image)
    assert sorted(p.name for p in path.parent.iterdir()) == ["pic.png"]


def test_skeleton_strengths_keep_weak_edges_visible() -> None:
    from keylink.report import skeleton_strengths

    strengths = skeleton_strengths([2.0, 0.2, 0.002, 1e-9])
    np.testing.assert_allclose(strengths[:3], [1.0, 1.0 - 0.65 / 3, 0.35])
    assert strengths[3] == 0.35  # never fainter than the floor
    assert skeleton_strengths([]) == []
