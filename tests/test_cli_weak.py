"""The command line of the weak method end to end on a tiny labelled set, and its errors."""

import json

from keylink.cli import main

TINY = ["--image-size", "32", "--batch-size", "4", "--steps", "3", "-q"]


def test_train_annotate_evaluate_end_to_end(motif_folder, tmp_path, capsys):
    images, run = str(motif_folder / "images"), tmp_path / "run"
    args = ["train", images, "--method", "weak", "--labels", str(motif_folder / "labels.csv")]
    args += ["--label-column", "colour", "--classifier", "classifier_tiny", "--out", str(run)]
    assert main(args + TINY) == 0
    out = capsys.readouterr().out
    assert "Trained the classifier 3 steps" in out and "Held-out accuracy" in out
    assert (run / "checkpoints" / "latest").is_file()
    assert json.loads((run / "config.json").read_text())["method"] == "weak"
    assert any("val_accuracy" in line for line in (run / "metrics.jsonl").read_text().splitlines())

    # Resume continues it; without --resume an existing run is not overwritten.
    assert main(["train", images, "--method", "weak", "--out", str(run), "--resume"]
                + ["--steps", "4", "-q"]) == 0  # fmt: skip
    assert "Trained the classifier 4 steps" in capsys.readouterr().out
    assert main(args + TINY) == 2
    assert "--resume" in capsys.readouterr().err

    ann = tmp_path / "ann"
    assert main(["annotate", str(run), images, "--out", str(ann), "-q"]) == 0
    assert "keypoints per image" in capsys.readouterr().out
    doc = json.loads((ann / "annotations.json").read_text())
    assert len(doc["annotations"]) == 24 and "predicted_class" in doc["annotations"][0]
    assert len(list((ann / "overlays").glob("*.png"))) == 24
    # A weak run learns no edges: a skeleton size is refused, not silently ignored.
    edges = tmp_path / "edges"
    refused = ["annotate", str(run), images, "--out", str(edges), "--skeleton-edges", "5"]
    assert main(refused) == 2
    assert "learns no edges" in capsys.readouterr().err
    assert not edges.exists()

    metrics_file = tmp_path / "metrics.json"
    test = str(motif_folder / "corners.csv")
    evaluate = ["evaluate", str(run), "--test", test, "--images", images]
    assert main(evaluate + ["--radii", "0.5,1", "--json", str(metrics_file), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "precision @1 %" in printed and "harris" in printed and "most hit" in printed
    metrics = json.loads(metrics_file.read_text())
    for metric in ("precision_percent", "recall_percent"):
        for radius in ("0.5", "1"):
            assert set(metrics[metric][radius]) == {"keylink", "random", "harris"}
            assert all(0 <= v <= 100 for v in metrics[metric][radius].values())
    histogram = metrics["salient_landmarks"]["1"]
    assert set(next(iter(histogram.values()))["histogram"]) == {"top_left", "bottom_right"}


def test_class_subfolders_need_no_labels_file(motif_folder, tmp_path, capsys):
    import shutil

    for i in range(8):
        colour = "red" if i % 2 == 0 else "blue"
        (tmp_path / "set" / colour).mkdir(parents=True, exist_ok=True)
        shutil.copy(motif_folder / "images" / f"img_{i:02d}.png", tmp_path / "set" / colour)
    run = tmp_path / "run"
    args = ["train", str(tmp_path / "set"), "--method", "weak", "--out", str(run)]
    assert main(args + ["--classifier", "classifier_tiny", *TINY]) == 0
    assert json.loads((run / "config.json").read_text())["weak"]["classes"] == ["blue", "red"]


def test_label_mistakes_are_clear_errors(motif_folder, tmp_path, capsys):
    images, labels = str(motif_folder / "images"), str(motif_folder / "labels.csv")
    base = ["train", images, "--method", "weak", "--out", str(tmp_path / "r"), *TINY]
    assert main(base + ["--labels", labels, "--label-column", "shape"]) == 2
    err = capsys.readouterr().err
    assert "error" in err and "no column 'shape'" in err and "colour" in err
    assert main(base) == 2  # no labels and no class sub-folders
    assert "sub-folder" in capsys.readouterr().err
    assert main(base + ["--labels", str(tmp_path / "nope.csv")]) == 2
    assert "labels file not found" in capsys.readouterr().err
    autolink = ["train", images, "--out", str(tmp_path / "a"), "--labels", labels, *TINY]
    assert main(autolink) == 2
    assert "--method weak" in capsys.readouterr().err
    assert not (tmp_path / "r").exists() and not (tmp_path / "a").exists()


def test_evaluate_an_autolink_run_still_needs_fit(motif_folder, tmp_path, capsys):
    from keylink.config import RunConfig

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(RunConfig(images="x").to_json())
    assert main(["evaluate", str(run), "--test", str(motif_folder / "corners.csv"), "-q"]) == 2
    assert "--fit" in capsys.readouterr().err
