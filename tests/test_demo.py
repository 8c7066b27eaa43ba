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
    assert (out / "demo.png").is_file()
    assert (out / "annotations" / "annotations.json").is_file()
    config = json.loads((out / "run" / "config.json").read_text())
    settings = {**config["model"], **config["train"]}
    assert {k: settings[k] for k in FIGURE_SETTINGS} == FIGURE_SETTINGS
    # Without progress output the results are still reported.
    printed = capsys.readouterr().out
    assert "Keypoint error after a linear fit" in printed and "Skeleton:" in printed
    assert "1/4" not in printed
