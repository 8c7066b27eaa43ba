import json

import numpy as np
import pytest

from keylink.cli import main
from keylink.evaluate import (
    fit_linear,
    normalising_distance,
    score,
    to_pixels,
    to_relative,
)


def test_linear_fit_recovers_a_linear_map_and_handles_missing_labels():
    rng = np.random.default_rng(0)
    kp = rng.uniform(-1, 1, (50, 4, 2))
    true_map = rng.normal(size=(8, 6))
    landmarks = (kp.reshape(50, 8) @ true_map).reshape(50, 3, 2)
    reg = fit_linear(kp, landmarks)
    np.testing.assert_allclose(reg.predict(kp), landmarks, atol=1e-6)
    holes = landmarks.copy()
    holes[:10, 1] = np.nan
    np.testing.assert_allclose(fit_linear(kp, holes).predict(kp), landmarks, atol=1e-6)
    # Intercepts need the option.
    shifted = landmarks + 5.0
    assert np.abs(fit_linear(kp, shifted, intercept=True).predict(kp) - shifted).max() < 1e-6


def test_ridge_shrinks_towards_zero():
    rng = np.random.default_rng(1)
    kp = rng.uniform(-1, 1, (6, 8, 2))  # fewer images than unknowns: needs regularising
    landmarks = rng.uniform(-1, 1, (6, 2, 2))
    small = np.abs(fit_linear(kp, landmarks, ridge=10.0).weights).sum()
    assert small < np.abs(fit_linear(kp, landmarks, ridge=0.01).weights).sum()


def test_relative_coordinates_are_exact_for_any_size():
    pts = np.array([[[0.5, 0.5], [199.5, 99.5]], [[10.0, 20.0], [30.0, 40.0]]])
    sizes = [(200, 100), (64, 48)]
    np.testing.assert_allclose(to_pixels(to_relative(pts, sizes), sizes), pts)


def test_nme_uses_the_eyes_and_pck_counts_within_thresholds():
    names = ["left_eye", "right_eye", "nose"]
    true = np.array([[[10.0, 10.0], [30.0, 10.0], [20.0, 20.0]]])  # inter-ocular 20
    pred = true + np.array([[[0.0, 0.0], [2.0, 0.0], [0.0, 6.0]]])
    dist, text = normalising_distance(true, names)
    assert dist[0] == 20 and "left_eye" in text
    s = score(pred, true, names, dist, pck=(0.05, 0.2))
    assert s.nme == pytest.approx(100 * (0 + 0.1 + 0.3) / 3)
    assert s.nme_per_landmark["nose"] == pytest.approx(30.0)
    assert s.error_px == pytest.approx(8 / 3)
    assert s.pck == {0.05: pytest.approx(100 / 3), 0.2: pytest.approx(200 / 3)}
    dist, text = normalising_distance(true, ["a", "b", "c"])
    assert "bounding-box" in text and dist[0] == pytest.approx(np.sqrt(20 * 10))
    with pytest.raises(ValueError, match="known"):
        normalising_distance(true, names, ("left_eye", "chin"))


def test_evaluate_command_end_to_end(figure_folder, tmp_path, capsys):
    run = tmp_path / "run"
    tiny = ["--image-size", "32", "--batch-size", "4", "--steps", "2", "--keypoints", "4", "-q"]
    assert main(["train", str(figure_folder / "images"), "--out", str(run), *tiny]) == 0
    gt = figure_folder / "annotations.json"
    metrics_file = tmp_path / "m.json"
    code = main(
        [
            "evaluate",
            str(run),
            "--fit",
            str(gt),
            "--test",
            str(gt),
            "--ridge",
            "0.1",
            "--norm",
            "head,pelvis",
            "--json",
            str(metrics_file),
            "-q",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "NME %" in out and "mean shape" in out and "left_wrist" in out
    metrics = json.loads(metrics_file.read_text())
    assert metrics["test"]["images"] == 24
    assert metrics["normalised_by"] == "distance head-pelvis"
    assert set(metrics["keylink"]) >= {"nme_percent", "pck_percent", "error_px"}
    assert main(["evaluate", str(run), "--fit", str(gt), "--test", str(gt), "--norm", "x,y"]) == 2
    assert "no landmark named" in capsys.readouterr().err


def test_name_then_annotate_writes_named_landmarks(figure_folder, tmp_path, capsys):
    from keylink.io.coco import read_coco_keypoints
    from keylink.io.groundtruth import read_ground_truth

    run = tmp_path / "run"
    tiny = ["--image-size", "32", "--batch-size", "4", "--steps", "2", "--keypoints", "4", "-q"]
    assert main(["train", str(figure_folder / "images"), "--out", str(run), *tiny]) == 0
    # Label 8 images in a plain CSV (pixel-index convention: keylink adds 0.5 when reading).
    gt = read_ground_truth(figure_folder / "annotations.json")
    rows = ["image," + ",".join(f"{n}_x,{n}_y" for n in gt.names)]
    for path, pts in list(zip(gt.image_paths, gt.points, strict=True))[:8]:
        rows.append(path.name + "," + ",".join(f"{x - 0.5:.3f},{y - 0.5:.3f}" for x, y in pts))
    labels = figure_folder / "images" / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    try:
        assert main(["name", str(run), "--labels", str(labels), "--suggest", "3", "-q"]) == 0
    finally:
        labels.unlink()
    out = capsys.readouterr().out
    assert "Cross-validated error" in out and "label them next" in out
    assert (run / "naming.json").is_file()
    ann = tmp_path / "ann"
    assert (
        main(
            [
                "annotate",
                str(run),
                str(figure_folder / "images"),
                "--out",
                str(ann),
                "--discovered",
                "-q",
            ]
        )
        == 0
    )
    records, points, category = read_coco_keypoints(ann / "annotations.json")
    assert category.keypoint_names == gt.names and points.shape == (24, 15, 3)
    assert category.skeleton == []  # a plain CSV has no skeleton
    _, found, found_cat = read_coco_keypoints(ann / "annotations_discovered.json")
    assert found.shape == (24, 4, 3) and found_cat.keypoint_names[0] == "kp01"


def test_shared_map_recovers_weighted_sums_of_keypoints():
    from keylink.evaluate import fit_shared

    rng = np.random.default_rng(3)
    kp = rng.uniform(-1, 1, (12, 16, 2))  # 12 images, 16 keypoints: too few for a full map
    marks = np.stack([kp[:, 2], 0.5 * kp[:, 5] + 0.5 * kp[:, 9] + 0.1], axis=1)
    reg = fit_shared(kp, marks, ridge=1e-6)
    test = rng.uniform(-1, 1, (50, 16, 2))
    expected = np.stack([test[:, 2], 0.5 * test[:, 5] + 0.5 * test[:, 9] + 0.1], axis=1)
    np.testing.assert_allclose(reg.predict(test), expected, atol=0.05)


def test_skeleton_agreement_matches_keypoints_to_joints_and_edges_to_bones():
    from keylink.evaluate import skeleton_agreement

    rng = np.random.default_rng(0)
    joints = rng.uniform(0, 100, (20, 3, 2))  # a chain 0-1-2
    bones = [(0, 1), (1, 2)]
    noise = rng.normal(0, 0.5, (20, 4, 2))
    # keypoint 0 on joint 2, 1 on joint 1, 2 on joint 0, 3 far from everything
    keypoints = np.concatenate([joints[:, [2, 1, 0]], joints[:, :1] + 200], axis=1) + noise
    result = skeleton_agreement(keypoints, [(0, 1), (1, 2), (0, 2), (2, 3)], joints, bones, 5.0)
    assert result.joint_of == [2, 1, 0, None]
    assert (result.edges, result.on_bones, result.bones_found) == (4, 2, 2)
    assert result.precision == 50.0 and result.recall == 100.0
    assert result.along_bones == 2  # the closing edge (0, 2) cuts across, (2, 3) is off


def test_edges_along_bones_need_not_end_on_joints():
    from keylink.evaluate import edge_offsets, skeleton_agreement

    # A straight limb from (0, 0) to (20, 0) to (40, 0); keypoints a quarter and three quarters
    # along it, one on its middle joint and one 10 px off it.
    joints = np.array([[[0.0, 0.0], [20.0, 0.0], [40.0, 0.0]]]).repeat(5, axis=0)
    keypoints = np.array([[[10.0, 0.0], [30.0, 0.0], [20.0, 0.0], [20.0, 10.0]]]).repeat(5, 0)
    bones = [(0, 1), (1, 2)]
    offsets = edge_offsets(keypoints, [(0, 1), (2, 3), (0, 3)], joints, bones)
    np.testing.assert_allclose(offsets, [0.0, 10.0, 10.0], atol=1e-6)
    result = skeleton_agreement(keypoints, [(0, 1), (2, 3), (0, 3)], joints, bones, 8.0, 3.0)
    assert (result.along_bones, result.on_bones) == (1, 0)


def test_limb_coverage_is_the_share_of_a_limb_its_edges_draw():
    from keylink.evaluate import limb_coverage

    # Two straight limbs: 0-1-2 from (0, 0) to (40, 0), and 3-4-5 from (0, 50) to (40, 50).
    joints = np.array(
        [[[0.0, 0.0], [20.0, 0.0], [40.0, 0.0], [0.0, 50.0], [20.0, 50.0], [40.0, 50.0]]]
    ).repeat(4, axis=0)
    limbs = [(0, 1, 2), (3, 4, 5)]
    # Keypoints: the first limb's ends and middle, and a point near the second limb's start.
    keypoints = np.array([[[0.0, 1.0], [20.0, 0.0], [40.0, -1.0], [0.0, 50.0]]]).repeat(4, 0)
    # One edge along the first half of limb 1: half of it drawn (and the points sampled within
    # the tolerance beyond its end); the second limb: nothing.
    np.testing.assert_allclose(
        limb_coverage(keypoints, [(0, 1)], joints, limbs, 2.0), [0.5, 0.0], atol=0.07
    )
    # End to end along limb 1; an edge across to the other limb draws neither.
    np.testing.assert_allclose(
        limb_coverage(keypoints, [(0, 1), (1, 2), (2, 3)], joints, limbs, 2.0), [1.0, 0.0]
    )
    # A learned edge shorter than twice the tolerance is a dot, not a link.
    short = keypoints.copy()
    short[:, 1] = [3.0, 0.0]
    np.testing.assert_allclose(limb_coverage(short, [(0, 1)], joints, limbs, 2.0), [0.0, 0.0])
    assert limb_coverage(keypoints, [], joints, limbs, 2.0).tolist() == [0.0, 0.0]
