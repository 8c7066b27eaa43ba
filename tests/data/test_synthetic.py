"""Tests for the synthetic articulated-figure data set."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from keylink.data import synthetic
from keylink.data.synthetic import JOINT_NAMES, SKELETON, generate, render_figure, write_dataset

# Joints with something drawn centred on them (neck and pelvis are midpoints inside the body).
DRAWN = [i for i, name in enumerate(JOINT_NAMES) if name not in ("neck", "pelvis")]


def idx(name: str) -> int:
    return JOINT_NAMES.index(name)


@pytest.fixture(scope="module")
def batch() -> tuple[np.ndarray, np.ndarray]:
    return generate(200, size=64, seed=123)


def intensity_centroid(a: np.ndarray) -> np.ndarray:
    """(x, y) centroid of a 2D array, pixel (0, 0) centred at (0.5, 0.5)."""
    a = a.astype(np.float64)
    ys, xs = np.mgrid[: a.shape[0], : a.shape[1]] + 0.5
    return np.array([(a * xs).sum(), (a * ys).sum()]) / a.sum()


def test_names_and_skeleton() -> None:
    assert JOINT_NAMES == (
        "head",
        "neck",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
        "pelvis",
    )
    bones = {frozenset(JOINT_NAMES[i] for i in pair) for pair in SKELETON}
    expected = [("head", "neck"), ("neck", "pelvis"), ("left_shoulder", "right_shoulder")]
    expected += [("left_hip", "right_hip")]
    for side in ("left", "right"):
        expected += [(f"{side}_shoulder", f"{side}_elbow"), (f"{side}_elbow", f"{side}_wrist")]
        expected += [(f"{side}_hip", f"{side}_knee"), (f"{side}_knee", f"{side}_ankle")]
    assert len(SKELETON) == len(bones) == len(expected)
    assert bones == {frozenset(pair) for pair in expected}


def test_shapes_and_dtypes() -> None:
    img, kp = render_figure(np.random.default_rng(0), size=48)
    assert img.shape == (48, 48, 3) and img.dtype == np.uint8
    assert kp.shape == (15, 2) and kp.dtype == np.float32
    images, joints = generate(3, size=40, seed=1)
    assert images.shape == (3, 40, 40, 3) and images.dtype == np.uint8
    assert joints.shape == (3, 15, 2) and joints.dtype == np.float32
    images, joints = generate(0, size=32)
    assert images.shape == (0, 32, 32, 3) and joints.shape == (0, 15, 2)


def test_deterministic_per_seed() -> None:
    a_img, a_kp = generate(4, size=48, seed=7)
    b_img, b_kp = generate(4, size=48, seed=7)
    c_img, c_kp = generate(4, size=48, seed=8)
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_kp, b_kp)
    assert not np.array_equal(a_img, c_img)
    assert not np.allclose(a_kp, c_kp)
    # Images within one call differ too.
    assert not np.array_equal(a_img[0], a_img[1])


def test_joints_inside_and_structured(batch: tuple[np.ndarray, np.ndarray]) -> None:
    _, kp = batch
    assert np.isfinite(kp).all()
    assert (kp > 0).all() and (kp < 64).all()
    # Midpoint definitions and image-left / image-right sides (tilt is only about 15 degrees).
    ls, rs, lh, rh = (
        kp[:, idx(n)] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")
    )
    np.testing.assert_allclose(kp[:, idx("neck")], (ls + rs) / 2, atol=1e-5)
    np.testing.assert_allclose(kp[:, idx("pelvis")], (lh + rh) / 2, atol=1e-5)
    assert (ls[:, 0] < rs[:, 0]).all() and (lh[:, 0] < rh[:, 0]).all()
    # Upright: the head is above the pelvis.
    assert (kp[:, idx("head"), 1] < kp[:, idx("pelvis"), 1]).all()


def test_joints_move_a_lot(batch: tuple[np.ndarray, np.ndarray]) -> None:
    _, kp = batch
    size = 64
    for name in ("left_wrist", "right_wrist", "left_ankle", "right_ankle"):
        assert (kp[:, idx(name)].std(axis=0) > 0.1 * size).all(), name
    # Not just placement: wrists also move relative to the shoulders.
    for side in ("left", "right"):
        rel = kp[:, idx(f"{side}_wrist")] - kp[:, idx(f"{side}_shoulder")]
        assert (rel.std(axis=0) > 0.05 * size).all()


def test_elbows_bend_at_most_the_limit(batch: tuple[np.ndarray, np.ndarray]) -> None:
    # The generator honours ELBOW_BEND_MAX, and it stays small: a straight edge from the shoulder
    # then follows the arm (BENCHMARKS.md, session 24).
    assert synthetic.ELBOW_BEND_MAX <= 45
    _, kp = batch
    for side in ("left", "right"):
        sh, el, wr = (kp[:, idx(f"{side}_{j}")] for j in ("shoulder", "elbow", "wrist"))
        upper, fore = el - sh, wr - el
        cos = (upper * fore).sum(1) / np.linalg.norm(upper, axis=1) / np.linalg.norm(fore, axis=1)
        bend = np.degrees(np.arccos(np.clip(cos, -1, 1)))
        # Joints snap to a quarter-pixel grid of the 64 px images, which tilts a segment slightly.
        assert bend.max() < synthetic.ELBOW_BEND_MAX + 8
        assert bend.max() > 0.7 * synthetic.ELBOW_BEND_MAX  # the whole range is used


def test_figure_contrasts_with_background(batch: tuple[np.ndarray, np.ndarray]) -> None:
    images, kp = batch
    f = images.astype(np.float64)
    dists = []
    for img, joints in zip(f, kp, strict=True):
        ij = np.floor(joints[DRAWN]).astype(int)
        on_body = img[ij[:, 1], ij[:, 0]]  # (n_joints, 3)
        corners = np.concatenate(
            [img[:3, :3], img[:3, -3:], img[-3:, :3], img[-3:, -3:]], axis=0
        ).reshape(-1, 3)
        dists.append(np.abs(on_body - corners.mean(axis=0)).sum(axis=1).mean())
    dists = np.array(dists)
    assert dists.mean() > 100  # summed absolute RGB difference, 0..765
    assert (dists > 40).mean() > 0.95


@pytest.mark.parametrize("seed", range(5))
def test_disc_is_centred_on_snapped_point(seed: int) -> None:
    rng = np.random.default_rng(seed)
    coverage = [0] + [255] * 255
    for _ in range(40):
        want = rng.uniform(6.0, 26.0, size=2)
        centre = (synthetic._snap(want[0]), synthetic._snap(want[1]))
        # Snapping moves a point by at most an eighth of a pixel.
        assert np.abs(np.array(centre) - want).max() <= 0.125 + 1e-9
        canvas = synthetic._Canvas(32)
        canvas.disc(centre, rng.uniform(1.5, 4.0), 1)
        got = intensity_centroid(canvas.downsample(coverage))
        np.testing.assert_allclose(got, centre, atol=0.1)


def test_disc_at_image_centre_is_symmetric() -> None:
    # (8, 8) is the corner shared by pixels 7 and 8: the exact centre of a 16 x 16 image.
    canvas = synthetic._Canvas(16)
    canvas.disc((8.0, 8.0), 2.0, 1)
    a = canvas.downsample([0] + [255] * 255).astype(int)
    np.testing.assert_array_equal(a, a[::-1, :])
    np.testing.assert_array_equal(a, a[:, ::-1])
    np.testing.assert_array_equal(a, a.T)
    assert a[7, 7] == 255 and a[0, 0] == 0


def test_drawn_joints_lie_on_snap_grid(batch: tuple[np.ndarray, np.ndarray]) -> None:
    _, kp = batch
    scaled = kp[:, DRAWN] / synthetic._GRID
    np.testing.assert_allclose(scaled, np.round(scaled), atol=1e-4)


def test_write_dataset_matches_generate(tmp_path) -> None:
    n, size, seed = 5, 48, 3
    out = write_dataset(tmp_path / "nested" / "synth", n, size=size, seed=seed)
    assert out == tmp_path / "nested" / "synth"
    images, joints = generate(n, size=size, seed=seed)

    coco = json.loads((out / "annotations.json").read_text())
    (cat,) = coco["categories"]
    assert cat["id"] == 1 and cat["name"] == "figure"
    assert cat["keypoints"] == list(JOINT_NAMES)
    assert cat["skeleton"] == [[a + 1, b + 1] for a, b in SKELETON]
    assert len(coco["images"]) == len(coco["annotations"]) == n
    assert len({im["id"] for im in coco["images"]}) == n
    assert len({ann["id"] for ann in coco["annotations"]}) == n

    by_id = {im["id"]: im for im in coco["images"]}
    for i, ann in enumerate(coco["annotations"]):
        im = by_id[ann["image_id"]]
        assert im["file_name"] == f"{i:06d}.png"
        assert (im["width"], im["height"]) == (size, size)
        with Image.open(out / "images" / im["file_name"]) as pil:
            assert pil.size == (size, size)
            np.testing.assert_array_equal(np.asarray(pil.convert("RGB")), images[i])

        assert ann["category_id"] == 1 and ann["iscrowd"] == 0
        assert ann["num_keypoints"] == len(JOINT_NAMES)
        kp = np.array(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        assert (kp[:, 2] == 2).all()
        np.testing.assert_allclose(kp[:, :2], joints[i], atol=1e-6)

        x, y, w, h = ann["bbox"]
        assert w > 0 and h > 0
        assert ann["area"] == pytest.approx(w * h, rel=1e-3)
        assert x >= 0 and y >= 0 and x + w <= size + 1e-6 and y + h <= size + 1e-6
        assert (kp[:, 0] >= x).all() and (kp[:, 0] <= x + w).all()
        assert (kp[:, 1] >= y).all() and (kp[:, 1] <= y + h).all()
