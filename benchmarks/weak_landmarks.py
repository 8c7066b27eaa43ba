"""Benchmark of the weak method (keypoints from class labels) on real data.

    python benchmarks/weak_landmarks.py mtfl --attribute glasses --out /tmp/weak-mtfl
    python benchmarks/weak_landmarks.py hands --out /tmp/weak-hands

mtfl: ../shared/data/mtfl-train with a class attribute of attributes.csv (glasses, pose, smile,
gender). The classifier trains on the first 8,000 annotation ids (10% of them held out for the
accuracy in its log) and everything is reported on the last 2,000: classifier accuracy, precision
and recall at r = 0.1 and 0.2 of the inter-ocular distance beside random points and Harris corners
at the same count per image, the landmark each class's keypoints hit most (by the true class of the
image), and the annotation time per image. hands: ../shared/data/hands11k with aspectOfHand, 90%
to train, the rest for accuracy and pictures (no landmarks there). Both write pictures of the maps
to OUT/pictures/ and the figures to OUT/results.json, and print Markdown for BENCHMARKS.md.

``--steps``, ``--minutes`` and ``--test-limit`` (annotate only the first N held-out images) make a
smoke run: ``--steps 30 --test-limit 20``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from keylink.config import RunConfig, WeakConfig
from keylink.data.dataset import load_folder
from keylink.data.images import Resize, load_image
from keylink.data.labels import read_labels
from keylink.evaluate import normalising_distance
from keylink.io.coco import write_json_atomic
from keylink.io.groundtruth import read_ground_truth
from keylink.methods.weak.evaluate import (
    harris_points,
    landmark_histogram,
    random_points,
    score_methods,
)
from keylink.methods.weak.pipeline import WeakAnnotator, annotate_with, content_mask
from keylink.methods.weak.train import evaluate_classifier, load_weak_run, train_classifier

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RADII = (0.1, 0.2)


def train(args, images: Path, labelled, run: Path) -> dict:
    cfg = WeakConfig(
        labels=str(args.labels_file),
        label_column=args.attribute,
        steps=args.steps,
        minutes=args.minutes,
        seed=args.seed,
        image_size=args.image_size,
        arch=args.arch,
    )
    config = RunConfig(images=str(images), method="weak", weak=cfg)
    data = load_folder(labelled.paths, Resize(cfg.image_size, cfg.resize), progress=True)
    resume = run.joinpath("checkpoints", "latest").is_file()
    result = train_classifier(config, labelled, data, run, resume=resume, progress=True)
    return {
        "steps": result.steps,
        "minutes": round(result.seconds / 60, 2),
        "images_per_s": round(result.images_per_second, 1),
        "train_images": result.train_images,
        "val_accuracy": result.val_accuracy,
        "val_balanced_accuracy": result.val_balanced_accuracy,
        "classes": labelled.counts(),
    }


def accuracy_on(run: Path, labelled) -> dict:
    config, model = load_weak_run(run)
    cfg = config.weak
    data = load_folder(labelled.paths, Resize(cfg.image_size, cfg.resize), progress=False)
    labels = torch.from_numpy(labelled.labels)
    index = np.arange(len(labelled))
    scores = evaluate_classifier(
        model, data, labels, index, torch.device("cpu"), cfg.precision, len(cfg.classes)
    )
    return {k: round(v, 4) for k, v in scores.items()} | {"images": len(labelled)}


def annotate(run: Path, paths: list[Path], pictures: int, out: Path):
    config, model = load_weak_run(run)
    annotator = WeakAnnotator(model, config)
    annotate_with(annotator, paths[:pictures], out / "pictures", progress=False)
    t0 = time.perf_counter()
    result = annotate_with(annotator, paths, None, overlays=False, progress=True)
    wall = (time.perf_counter() - t0) / len(paths)
    return (
        config,
        result,
        {
            "probe_s_per_image": round(result.seconds_per_image, 3),
            "wall_s_per_image": round(wall, 3),  # with decoding and resizing
            "keypoints_per_image": round(float(np.mean([len(k) for k in result.keypoints])), 2),
        },
    )


def mtfl(args) -> dict:
    root = DATA / "mtfl-train"
    gt = read_ground_truth(root / "annotations.json")
    n = len(gt)
    args.labels_file = root / "attributes.csv"
    labelled = read_labels(root / "images", args.labels_file, args.attribute)
    by_path = {p.resolve(): i for i, p in enumerate(labelled.paths)}
    fit_rows = [by_path[p.resolve()] for p in gt.image_paths[: n - 2000]]
    test_paths = gt.image_paths[n - 2000 :][: args.test_limit]
    test_rows = [by_path[p.resolve()] for p in test_paths]
    out = Path(args.out)
    run = out / "run"
    report = {"dataset": "mtfl", "attribute": args.attribute}
    report["training"] = train(args, root / "images", labelled.subset(fit_rows), run)
    report["held_out_accuracy"] = accuracy_on(run, labelled.subset(test_rows))
    config, result, timing = annotate(run, test_paths, args.pictures, out)
    report["annotation"] = timing
    test = gt.subset(np.arange(n - 2000, n)[: len(test_paths)])
    resize = Resize(config.weak.image_size, config.weak.resize)
    inputs = np.stack([resize.apply(load_image(p)) for p in test_paths])
    masks = np.stack([content_mask(resize, w, h) for w, h in result.sizes])
    counts = [len(k) for k in result.keypoints]
    detections = {
        "keylink": result.keypoints,
        "random": random_points(counts, result.sizes, args.seed),
        "harris": harris_points(
            inputs, counts, result.sizes, resize, config.weak.nms_radius, masks
        ),
    }
    distance, norm = normalising_distance(test.points, test.names)
    report["normalised_by"] = norm
    report |= score_methods(detections, test.points, distance, RADII)
    truth = [labelled.classes[labelled.labels[i]] for i in test_rows]
    predicted = [result.classes[c] for c in result.predicted]
    report["salient_landmarks"] = {
        "by_true_class": landmark_histogram(
            result.keypoints, test.points, distance, 0.2, test.names, truth
        ),
        "by_predicted_class": landmark_histogram(
            result.keypoints, test.points, distance, 0.2, test.names, predicted
        ),
    }
    return report


def hands(args) -> dict:
    root = DATA / "hands11k"
    args.labels_file = root / "HandInfo.csv"
    labelled = read_labels(root / "images", args.labels_file, args.attribute)
    order = np.random.default_rng(args.seed).permutation(len(labelled))
    cut = int(0.9 * len(order))
    fit_rows, test_rows = np.sort(order[:cut]), np.sort(order[cut:])[: args.test_limit]
    out = Path(args.out)
    run = out / "run"
    report = {"dataset": "hands11k", "attribute": args.attribute}
    report["training"] = train(args, root / "images", labelled.subset(fit_rows), run)
    report["held_out_accuracy"] = accuracy_on(run, labelled.subset(test_rows))
    test_paths = [labelled.paths[i] for i in test_rows]
    _, _, timing = annotate(run, test_paths, args.pictures, out)
    report["annotation"] = timing
    return report


def markdown(report: dict, command: str) -> str:
    t, acc, ann = report["training"], report["held_out_accuracy"], report["annotation"]
    lines = [
        f"`{command}` ({platform.node()}, {time.strftime('%Y-%m-%d')}): classifier "
        f"{t['steps']} steps in {t['minutes']} min on {t['train_images']} images; held-out "
        f"accuracy {100 * acc['accuracy']:.1f}% (balanced {100 * acc['balanced_accuracy']:.1f}%) "
        f"on {acc['images']} images; {ann['keypoints_per_image']} keypoints per image; "
        f"{ann['probe_s_per_image']} s per image to probe ({ann['wall_s_per_image']} s with "
        "decoding).",
    ]
    if "precision_percent" in report:
        lines += ["", "| figure | keylink | random | Harris |", "|---|---|---|---|"]
        for metric in ("precision_percent", "recall_percent"):
            for r, v in report[metric].items():
                name = metric.split("_")[0]
                lines.append(f"| {name} @ r={r} | {v['keylink']} | {v['random']} | {v['harris']} |")
        lines += ["", "Landmarks hit (r = 0.2) by true class:"]
        for name, entry in report["salient_landmarks"]["by_true_class"].items():
            counts = ", ".join(f"{k} {v}" for k, v in entry["histogram"].items())
            lines.append(
                f"- {name} ({entry['images']} images): most hit {entry['most_hit']}; {counts}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=("mtfl", "hands"))
    parser.add_argument("--attribute", help="class column (mtfl: glasses; hands: aspectOfHand)")
    parser.add_argument("--out", required=True, help="output folder (a run there is resumed)")
    parser.add_argument("--steps", type=int, default=WeakConfig.steps)
    parser.add_argument("--minutes", type=float)
    parser.add_argument("--image-size", type=int, default=WeakConfig.image_size)
    parser.add_argument("--arch", default=WeakConfig.arch)
    parser.add_argument("--test-limit", type=int, help="annotate only this many held-out images")
    parser.add_argument("--pictures", type=int, default=12, help="images to draw the maps of")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"the benchmark data is not here: {DATA} (see its README)")
    torch.set_num_threads(args.threads)
    args.attribute = args.attribute or ("glasses" if args.dataset == "mtfl" else "aspectOfHand")
    report = mtfl(args) if args.dataset == "mtfl" else hands(args)
    report["command"] = "python benchmarks/weak_landmarks.py " + " ".join(sys.argv[1:])
    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_json_atomic(Path(args.out) / "results.json", report)
    print(json.dumps(report, indent=2))
    print()
    print(markdown(report, report["command"]))


if __name__ == "__main__":
    main()
