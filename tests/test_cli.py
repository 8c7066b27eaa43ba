"""The command line end to end on a tiny synthetic set, and its handling of bad input."""

import json
import shutil
import subprocess
import sys

import pytest

from keylink.cli import build_parser, main
from keylink.config import FIGURE_SETTINGS, as_flags, default_preset
from keylink.data.images import ImageSkippedWarning

TINY = ["--image-size", "32", "--batch-size", "4", "--steps", "3", "--keypoints", "4", "-q"]


def test_train_then_annotate_end_to_end(figure_folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(figure_folder / "images"), "--out", str(run), *TINY]) == 0
    assert "Trained 3 steps" in capsys.readouterr().out
    assert (run / "checkpoints" / "latest").is_file()
    config = json.loads((run / "config.json").read_text())
    # The device picks the preset: cpu here, paper on a GPU machine.
    assert config["model"]["keypoints"] == 4 and config["train"]["preset"] == default_preset()
    equivariance = {"cpu": 30.0, "paper": 0.0}[default_preset()]
    assert config["train"]["equivariance"] == equivariance  # the preset's, unless asked otherwise

    out = tmp_path / "ann"
    assert main(["annotate", str(run), str(figure_folder / "images"), "--out", str(out), "-q"]) == 0
    doc = json.loads((out / "annotations.json").read_text())
    assert len(doc["images"]) == len(doc["annotations"]) == 24
    ann = doc["annotations"][0]
    assert len(ann["keypoints"]) == 12 and len(ann["keypoint_scores"]) == 4
    assert 0.0 <= ann["score"] <= 1.0
    category = doc["categories"][0]
    assert len(category["keypoints"]) == 4
    assert all(1 <= i <= 4 for edge in category["skeleton"] for i in edge)
    xs = ann["keypoints"][0::3]
    assert all(0 <= x <= 64 for x in xs)  # original image coordinates (64 px images)
    assert len(list((out / "overlays").glob("*.png"))) == 24

    # The skeleton's size can be chosen at annotation time (what it keeps: test_inference.py).
    one = tmp_path / "one"
    args = ["annotate", str(run), str(figure_folder / "images"), "--out", str(one), "-q"]
    assert main([*args, "--no-overlays", "--skeleton-edges", "1"]) == 0
    skeleton = json.loads((one / "annotations.json").read_text())["categories"][0]["skeleton"]
    assert len(skeleton) <= 1
    # 0 keeps keypoints only, as the API's skeleton_edges=0 does; below 0 is refused.
    assert main([*args, "--skeleton-edges", "0"]) == 0
    category = json.loads((one / "annotations.json").read_text())["categories"][0]
    assert category["skeleton"] == [] and len(list((one / "overlays").glob("*.png"))) == 24
    with pytest.raises(SystemExit):
        main([*args, "--skeleton-edges", "-1"])


def test_the_figure_settings_named_in_the_help_are_the_demos(capsys):
    # `keylink train --help` lists them as flags: copied, they must train as keylink demo does.
    flags = as_flags(FIGURE_SETTINGS)
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    squeeze = "".join  # argparse wraps the help, even inside a flag
    assert squeeze(flags.split()) in squeeze(capsys.readouterr().out.split())
    args = build_parser().parse_args(["train", "images", "--out", "run", *flags.split()])
    assert {name: getattr(args, name) for name in FIGURE_SETTINGS} == FIGURE_SETTINGS


def test_resume_continues_a_run(figure_folder, tmp_path, capsys):
    run = tmp_path / "run"
    main(["train", str(figure_folder / "images"), "--out", str(run), *TINY])
    assert (
        main(
            [
                "train",
                str(figure_folder / "images"),
                "--out",
                str(run),
                "--resume",
                "--steps",
                "5",
                "-q",
            ]
        )
        == 0
    )
    assert "Trained 5 steps" in capsys.readouterr().out
    # Without --resume an existing run is not overwritten.
    assert main(["train", str(figure_folder / "images"), "--out", str(run), *TINY]) == 2
    assert "--resume" in capsys.readouterr().err


def test_empty_folder_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["train", str(tmp_path / "empty"), "--out", str(tmp_path / "r"), *TINY]) == 2
    err = capsys.readouterr().err
    assert "error" in err and "image" in err
    assert not (tmp_path / "r").exists()


def test_folder_without_readable_images_is_a_clear_error(tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.jpg").write_text("not an image")
    (folder / "b.png").write_bytes(b"")
    with pytest.warns(ImageSkippedWarning):
        assert main(["train", str(folder), "--out", str(tmp_path / "r"), *TINY]) == 2
    assert "no readable image" in capsys.readouterr().err


def test_corrupt_files_are_skipped_with_a_warning_and_counted(figure_folder, tmp_path, capsys):
    folder = tmp_path / "mixed"
    shutil.copytree(figure_folder / "images", folder)
    (folder / "notes.jpg").write_text("not an image")
    good = (folder / "000000.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    run = tmp_path / "run"
    with pytest.warns(ImageSkippedWarning) as warned:
        assert main(["train", str(folder), "--out", str(run), *TINY]) == 0
    messages = " ".join(str(w.message) for w in warned)
    assert "notes.jpg" in messages and "truncated.png" in messages
    assert "Skipped 2 unreadable" in capsys.readouterr().out
    assert len((run / "skipped.txt").read_text().splitlines()) == 2
    out = tmp_path / "ann"
    with pytest.warns(ImageSkippedWarning):
        assert (
            main(["annotate", str(run), str(folder), "--out", str(out), "-q", "--no-overlays"]) == 0
        )
    doc = json.loads((out / "annotations.json").read_text())
    assert len(doc["images"]) == 24
    assert len(doc["info"]["skipped_files"]) == 2


def test_bad_options_and_missing_run(tmp_path, figure_folder, capsys):
    with pytest.raises(SystemExit):
        main(["train", str(figure_folder), "--out", str(tmp_path / "r"), "--keypoints", "0"])
    assert main(["annotate", str(tmp_path / "nothing"), str(figure_folder), "--out", "x"]) == 2
    assert "not a keylink run" in capsys.readouterr().err


def test_equivariance_and_symmetry_options_reach_the_run_config(figure_folder, tmp_path):
    run = tmp_path / "run"
    args = ["--equivariance", "1", "--warp-elastic", "0", "--flip-symmetry", "3", *TINY]
    args += ["--flip-symmetry-at", "0.5"]
    assert main(["train", str(figure_folder / "images"), "--out", str(run), *args]) == 0
    config = json.loads((run / "config.json").read_text())["train"]
    assert (config["equivariance"], config["warp_elastic"]) == (1.0, 0.0)
    assert (config["flip_symmetry"], config["flip_symmetry_at"]) == (3.0, 0.5)
    with pytest.raises(SystemExit):
        main(["train", str(figure_folder), "--out", str(tmp_path / "r"), "--equivariance", "-1"])


def test_edge_and_separation_options_reach_the_run_config(figure_folder, tmp_path):
    run = tmp_path / "run"
    args = ["--no-edge-saturate", "--edge-normalize", "--edge-lr", "1e-4", *TINY]
    args += ["--edge-length-decay", "0.3"]
    args += ["--separation-sigma", "0.2", "--separation-kernel", "laplace"]
    assert main(["train", str(figure_folder / "images"), "--out", str(run), *args]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["edge_saturate"] is False
    assert config["model"]["edge_normalize"] is True
    train = config["train"]
    assert (train["edge_lr"], train["edge_length_decay"], train["separation_sigma"]) == (
        1e-4,
        0.3,
        0.2,
    )
    assert train["separation_kernel"] == "laplace"


def test_help_explains_the_commands():
    out = subprocess.run(
        [sys.executable, "-m", "keylink.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for word in ("train", "annotate", "demo"):
        assert word in out
    out = subprocess.run(
        [sys.executable, "-m", "keylink.cli", "train", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--minutes" in out and "--resume" in out and "--preset" in out
