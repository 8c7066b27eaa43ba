"""``keylink demo`` end to end at a tiny size: every stage runs and writes what it promises."""

import json

from keylink.demo import FIGURE_SETTINGS, run_demo


def test_demo_writes_metrics_pictures_and_uses_the_figure_settings(tmp_path, capsys):
    out = tmp_path / "demo"
    metrics = run_demo(out, keypoints=4, steps=2, n_images=16, n_test=6, progress=False)
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert metrics["training_steps"] == 2
    assert metrics["error_px"] > 0 and metrics["mean_shape_baseline_px"] > 0
    assert {"edges", "edges_on_bones", "joints_followed"} <= metrics["skeleton_vs_truth"].keys()
    assert set(metrics["limbs_drawn"]) == {"left_arm", "right_arm", "left_leg", "right_leg"}
    assert (out / "demo.png").is_file()
    assert (out / "annotations" / "annotations.json").is_file()
    config = json.loads((out / "run" / "config.json").read_text())
    settings = {**config["model"], **config["train"]}
    assert {k: settings[k] for k in FIGURE_SETTINGS} == FIGURE_SETTINGS
    assert settings["skeleton_edges"] == 5  # 1.25 K: more than a tree's K - 1
    # Without progress output the results are still reported.
    printed = capsys.readouterr().out
    assert "Keypoint error after a linear fit" in printed and "Skeleton:" in printed
    assert "Share of each limb the skeleton draws" in printed
    assert "1/4" not in printed


def test_demo_says_when_its_time_bound_stopped_training_early(tmp_path, capsys):
    # A bound far shorter than one step: the first step runs, then the bound stops training.
    metrics = run_demo(
        tmp_path / "demo",
        keypoints=4,
        steps=50,
        minutes=1e-6,
        n_images=16,
        n_test=6,
        progress=False,
    )
    assert metrics["training_stopped_by"] == "minutes" and metrics["training_steps"] < 50
    printed = capsys.readouterr().out
    assert "Training stopped at its 1e-06-minute bound" in printed
    assert "keylink demo --minutes" in printed
