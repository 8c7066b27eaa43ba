"""``keylink demo``: the whole pipeline on synthetic articulated figures with known joints."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from keylink import api
from keylink.config import DEMO_MINUTES, DEMO_STEPS, FIGURE_SETTINGS
from keylink.data.images import load_image
from keylink.data.synthetic import LIMBS, SKELETON, write_dataset
from keylink.evaluate import fit_linear, limb_coverage, mean_point_error, skeleton_agreement
from keylink.inference import annotate_with
from keylink.io.coco import read_coco_keypoints
from keylink.methods.autolink import AutoLink
from keylink.report import draw_keypoints, image_grid, save_png, skeleton_strengths

IMAGE_SIZE = 128  # side of the generated images; the cpu preset trains on them at 64 px
JOINT_RADIUS = 8.0  # px: a keypoint follows a joint when it stays this near it on average
LIMB_TOLERANCE = 3.0  # px, about a limb's half width: an edge this near the bones runs along them
# px: how near a limb a learned edge must stay, and a point of the limb to that edge, for the
# point to count as drawn (an arm's half width plus a little of the keypoints' error).
LIMB_DRAWN_TOLERANCE = JOINT_RADIUS / 2
# The skeleton keeps the 1.25 K strongest edges rather than a tree's K - 1: the torso is learned
# as a box of edges with diagonals, and under K - 1 those crowd out arm edges half as strong as
# the strongest (session 18: more of the arms drawn and more edges along the bones).
SKELETON_EDGES_PER_KEYPOINT = 1.25


def run_demo(
    out: str | Path,
    *,
    keypoints: int = 16,
    minutes: float = DEMO_MINUTES,
    steps: int = DEMO_STEPS,
    n_images: int = 3000,
    n_test: int = 600,
    seed: int = 0,
    progress: bool = True,
    **overrides,
) -> dict:
    """Generate, train, annotate and measure. Returns the metrics it also writes to
    ``OUT/metrics.json``; pictures go to ``OUT/demo.png``. Trains the cpu preset with
    :data:`FIGURE_SETTINGS`; ``overrides`` change any setting (ModelConfig or TrainConfig
    fields), as in :func:`keylink.api.train`."""
    out = Path(out)
    started = time.time()
    say = print if progress else (lambda *a, **k: None)
    say(f"1/4 generating {n_images} training and {n_test} test figures in {out / 'data'}")
    train_dir = write_dataset(out / "data" / "train", n_images, IMAGE_SIZE, seed=seed)
    test_dir = write_dataset(out / "data" / "test", n_test, IMAGE_SIZE, seed=seed + 10_000)

    skeleton_edges = math.ceil(SKELETON_EDGES_PER_KEYPOINT * keypoints)
    settings = {**FIGURE_SETTINGS, "skeleton_edges": skeleton_edges, **overrides}
    say(
        f"2/4 training {keypoints} keypoints for at most {minutes:g} min (cpu preset with "
        + ", ".join(f"{k}={v}" for k, v in settings.items())
        + ")"
    )
    run_dir = out / "run"
    resume = (run_dir / "checkpoints" / "latest").is_file()
    result = api.train(
        train_dir / "images",
        run_dir,
        keypoints,
        preset_name="cpu",
        steps=steps,
        minutes=minutes,
        seed=seed,
        resume=resume,
        progress=progress,
        **settings,
    )

    say("3/4 annotating the test figures")
    annotations = api.annotate(run_dir, test_dir / "images", out / "annotations", progress=progress)

    say("4/4 measuring against the true joints")
    _, truth, _ = read_coco_keypoints(test_dir / "annotations.json")
    true_xy = truth[..., :2]
    half = len(true_xy) // 2

    def fit_error(found: np.ndarray) -> float:
        # The linear-fit protocol, fitted on one half of the test figures, measured on the other.
        reg = fit_linear(found[:half], true_xy[:half], intercept=True, ridge=1e-6)
        return mean_point_error(reg.predict(found[half:]), true_xy[half:])

    error = fit_error(annotations.keypoints)
    # Baselines: the same fit from an untrained detector's keypoints, and the mean pose.
    config, _ = api.load(run_dir)
    torch.manual_seed(seed)
    untrained = annotate_with(
        AutoLink(config.model).eval(), config, annotations.paths, overlays=False, progress=False
    )
    untrained_error = fit_error(untrained.keypoints)
    skeleton = skeleton_agreement(
        annotations.keypoints,
        annotations.category.skeleton,
        true_xy,
        SKELETON,
        JOINT_RADIUS,
        LIMB_TOLERANCE,
    )
    limbs = limb_coverage(
        annotations.keypoints,
        annotations.category.skeleton,
        true_xy,
        list(LIMBS.values()),
        LIMB_DRAWN_TOLERANCE,
    )
    mean_shape = true_xy[:half].mean(axis=0, keepdims=True)
    baseline = mean_point_error(np.broadcast_to(mean_shape, true_xy[half:].shape), true_xy[half:])
    metrics = {
        "keypoints": keypoints,
        "training_steps": result.steps,
        "training_minutes": round(result.seconds / 60, 2),
        "training_stopped_by": result.stopped_by,
        "training_images_per_second": round(result.images_per_second, 1),
        "error_px": round(error, 2),
        "error_percent_of_image": round(100 * error / IMAGE_SIZE, 2),
        "untrained_detector_px": round(untrained_error, 2),
        "mean_shape_baseline_px": round(baseline, 2),
        "image_size": IMAGE_SIZE,
        "test_images": len(true_xy) - half,
        "skeleton": [[i + 1, j + 1] for i, j in annotations.category.skeleton],
        "skeleton_vs_truth": skeleton.to_dict(),
        "limbs_drawn": {name: round(float(v), 2) for name, v in zip(LIMBS, limbs, strict=True)},
        "total_minutes": round((time.time() - started) / 60, 2),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    save_png(out / "demo.png", pictures(annotations, true_xy[half:], half))
    # The results print even without progress output.
    print(
        f"Keypoint error after a linear fit: {error:.2f} px ({metrics['error_percent_of_image']}% "
        f"of the {IMAGE_SIZE} px image); an untrained detector: {untrained_error:.2f} px; "
        f"predicting the mean pose: {baseline:.2f} px."
    )
    print(
        f"Skeleton: {skeleton.along_bones} of its {skeleton.edges} edges run along the true "
        f"skeleton (within {LIMB_TOLERANCE:g} px in most figures); {skeleton.on_bones} join the "
        f"two ends of a true bone, finding {skeleton.bones_found} of the {skeleton.bones} bones "
        f"({len(metrics['skeleton_vs_truth']['joints_followed'])} of {true_xy.shape[1]} joints "
        f"followed within {JOINT_RADIUS:g} px)."
    )
    print(
        "Share of each limb the skeleton draws (edges along it, within "
        f"{LIMB_DRAWN_TOLERANCE:g} px): "
        + ", ".join(
            f"{name.replace('_', ' ')} {v:.0%}" for name, v in zip(LIMBS, limbs, strict=True)
        )
        + "."
    )
    if result.stopped_by == "minutes" and result.steps < steps:
        # Slow machines (a CPU without native bf16 trains in fp32, about 3x slower) stop early.
        needed = math.ceil(1.05 * steps * result.seconds / max(result.steps, 1) / 60)
        print(
            f"Training stopped at its {minutes:g}-minute bound after {result.steps} of {steps} "
            f"steps ({result.images_per_second:.0f} images/s on this machine), so keypoints and "
            f"skeleton are less settled than after all of them; `keylink demo --minutes "
            f"{needed}` would train all {steps} steps here."
        )
    print(f"Pictures: {out / 'demo.png'} (discovered keypoints and skeleton | true skeleton)")
    print(
        f"Annotations: {out / 'annotations' / 'annotations.json'}; metrics: {out / 'metrics.json'}"
    )
    return metrics


def pictures(annotations: api.Annotations, truth: np.ndarray, offset: int, n: int = 8):
    """Pairs of tiles: discovered keypoints with the learned skeleton, and the true skeleton."""
    strengths = skeleton_strengths(annotations.edge_weights)
    tiles, titles = [], []
    for i in range(min(n, len(truth))):
        k = offset + i
        image = load_image(annotations.paths[k])
        tiles.append(
            draw_keypoints(
                image,
                annotations.keypoints[k],
                skeleton=annotations.category.skeleton,
                edge_weights=strengths,
                confidences=annotations.confidence[k],  # diffuse (unused) keypoints fade out
                scale=2,
            )
        )
        titles.append("discovered")
        tiles.append(draw_keypoints(image, truth[i], skeleton=SKELETON, scale=2))
        titles.append("true joints")
    return image_grid(tiles, columns=4, titles=titles)
