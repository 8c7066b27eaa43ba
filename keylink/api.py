"""The Python API; the command line is a thin layer over these functions."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from keylink.config import ConfigError, RunConfig, WeakConfig, default_preset, preset
from keylink.data.dataset import load_folder
from keylink.data.images import Resize, list_images
from keylink.data.labels import read_labels
from keylink.engine import RunError, TrainResult, load_run
from keylink.engine import train as train_run
from keylink.evaluate import (
    DEFAULT_PCK,
    fit_linear,
    normalising_distance,
    score,
    to_pixels,
    to_relative,
)
from keylink.geometry import normalised_to_pixels
from keylink.inference import Annotations
from keylink.inference import annotate as annotate_autolink
from keylink.io.groundtruth import GroundTruth, read_ground_truth
from keylink.methods.autolink import AutoLink
from keylink.methods.weak import (
    WeakAnnotations,
    WeakTrainResult,
    annotate_weak,
    evaluate_weak,
    is_weak_run,
    load_weak_run,
    train_classifier,
)
from keylink.naming import fit_naming
from keylink.report import draw_keypoints, heatmap_overlay, image_grid, save_png, skeleton_strengths

__all__ = [
    "Annotations",
    "WeakAnnotations",
    "annotate",
    "evaluate",
    "evaluate_weak",
    "load",
    "make_config",
    "make_weak_config",
    "name",
    "train",
    "train_weak",
]


def make_config(
    images: str | Path,
    keypoints: int = 16,
    preset_name: str | None = None,
    **overrides: Any,
) -> RunConfig:
    """A validated RunConfig: the preset's settings (``paper`` when training on a GPU, ``cpu``
    otherwise) with ``overrides`` applied; each override names a ModelConfig or TrainConfig
    field."""
    name = preset_name or default_preset(overrides.get("device") or "auto")
    model, train_cfg = preset(name, keypoints)
    model_fields = {f.name for f in dataclasses.fields(model)}
    train_fields = {f.name for f in dataclasses.fields(train_cfg)}
    for key, value in overrides.items():
        if value is None:
            continue
        if key in model_fields:
            setattr(model, key, value)
        elif key in train_fields:
            setattr(train_cfg, key, value)
        else:
            raise ConfigError(f"unknown setting {key!r}")
    return RunConfig(images=str(images), model=model, train=train_cfg).validate()


def train(
    images: str | Path,
    out: str | Path,
    keypoints: int = 16,
    *,
    preset_name: str | None = None,
    resume: bool = False,
    progress: bool = True,
    method: str = "autolink",
    **overrides: Any,
) -> TrainResult | WeakTrainResult:
    """Learn ``keypoints`` keypoints and a skeleton from a folder of unlabelled images into the run
    folder ``out``. With ``resume`` the run's saved config is used; ``steps`` and ``minutes`` may
    still be raised to train for longer. ``method="weak"`` trains a classifier on class labels
    instead (see :func:`train_weak`, which takes the overrides)."""
    if method == "weak":
        return train_weak(images, out, resume=resume, progress=progress, **overrides)
    if method != "autolink":
        raise ConfigError(f"unknown method {method!r}; known: autolink, weak")
    out = Path(out)
    if resume:
        if not (out / "config.json").is_file():
            raise RunError(f"--resume: {out} is not a keylink run folder (no config.json)")
        config = RunConfig.load(out / "config.json")
        for key in ("steps", "minutes"):
            if overrides.get(key) is not None:
                setattr(config.train, key, overrides[key])
        config.validate()
    else:
        config = make_config(images, keypoints, preset_name, **overrides)
    data = load_folder(images, Resize(config.model.image_size, config.model.resize), progress)
    return train_run(
        config,
        data,
        out,
        resume=resume,
        progress=progress,
        on_sample=lambda model, step, batch, output: save_training_sample(
            out / "samples" / f"step_{step:07d}.png", model, batch, output
        ),
    )


def make_weak_config(
    images: str | Path,
    labels: str | Path | None = None,
    label_column: str | None = None,
    image_column: str | None = None,
    **overrides: Any,
) -> RunConfig:
    """A validated RunConfig for the weak method; each override names a WeakConfig field."""
    known = {f.name for f in dataclasses.fields(WeakConfig)}
    cfg = WeakConfig(
        labels=None if labels is None else str(labels),
        label_column=label_column,
        image_column=image_column,
    )
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in known or key in ("classes", "labels", "label_column", "image_column"):
            raise ConfigError(f"unknown setting {key!r} for the weak method")
        setattr(cfg, key, value)
    return RunConfig(images=str(images), method="weak", weak=cfg).validate()


def train_weak(
    images: str | Path,
    out: str | Path,
    *,
    labels: str | Path | None = None,
    label_column: str | None = None,
    image_column: str | None = None,
    resume: bool = False,
    progress: bool = True,
    **overrides: Any,
) -> WeakTrainResult:
    """Train a classifier on the class labels of a folder of images (a CSV with ``labels`` and
    ``label_column``, or one sub-folder per class) into the run folder ``out``; its probes give
    the keypoints (``annotate``). With ``resume`` the run's saved config is used; ``steps`` and
    ``minutes`` may still be raised."""
    out = Path(out)
    if resume:
        if not (out / "config.json").is_file():
            raise RunError(f"--resume: {out} is not a keylink run folder (no config.json)")
        config = RunConfig.load(out / "config.json")
        if config.method != "weak":
            raise RunError(f"--resume: {out} is a {config.method} run, not a weak run")
        for key in ("steps", "minutes"):
            if overrides.get(key) is not None:
                setattr(config.weak, key, overrides[key])
        config.validate()
    else:
        config = make_weak_config(images, labels, label_column, image_column, **overrides)
    cfg = config.weak
    labelled = read_labels(
        images, cfg.labels, cfg.label_column, cfg.image_column, cfg.classes or None
    )
    data = load_folder(labelled.paths, Resize(cfg.image_size, cfg.resize), progress)
    return train_classifier(config, labelled, data, out, resume=resume, progress=progress)


def load(run_dir: str | Path, device: str = "cpu") -> tuple[RunConfig, torch.nn.Module]:
    """The config and trained model of a run folder (AutoLink, or a weak run's classifier)."""
    if is_weak_run(run_dir):
        return load_weak_run(run_dir, device)
    return load_run(run_dir, device)


def annotate(
    run_dir: str | Path,
    images: str | Path | Sequence[Path],
    out_dir: str | Path | None = None,
    *,
    batch_size: int = 64,
    overlays: bool = True,
    discovered: bool = False,
    device: str = "auto",
    progress: bool = True,
    skeleton_edges: int | None = None,
) -> Annotations | WeakAnnotations:
    """Keypoints of every readable image with a trained run; with ``out_dir`` write
    ``annotations.json`` (COCO keypoints) and ``overlays/*.png``. A weak run's pictures show its
    occlusion, guided-backprop and combined maps beside the keypoints. ``skeleton_edges``: how
    many of the strongest learned edges the skeleton keeps (default: the run's, K - 1)."""
    if is_weak_run(run_dir):
        if skeleton_edges is not None:
            raise ConfigError("skeleton_edges: a run trained from class labels learns no edges")
        return annotate_weak(
            run_dir,
            images,
            out_dir,
            batch_size=batch_size,
            overlays=overlays,
            device=device,
            progress=progress,
        )
    return annotate_autolink(
        run_dir,
        images,
        out_dir,
        batch_size=batch_size,
        overlays=overlays,
        discovered=discovered,
        device=device,
        progress=progress,
        skeleton_edges=skeleton_edges,
    )


def save_training_sample(
    path: Path, model: AutoLink, images: torch.Tensor, output: dict[str, torch.Tensor], n: int = 4
) -> None:
    """One row per image: keypoints and skeleton, masked input, edge map, reconstruction."""
    skeleton = model.skeleton()
    edges = [(i, j) for i, j, _ in skeleton]
    weights = skeleton_strengths([w for *_, w in skeleton])
    size = images.shape[-1]
    scale = max(1, 128 // size)

    def rgb(t: torch.Tensor) -> np.ndarray:
        return (t.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).astype(
            np.uint8
        )

    def big(a: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(a, scale, 0), scale, 1)

    tiles = []
    kps = normalised_to_pixels(output["keypoints"].detach().float(), size, size).cpu().numpy()
    for i in range(min(n, len(images))):
        image = rgb(images[i])
        tiles.append(
            draw_keypoints(image, kps[i], skeleton=edges, edge_weights=weights, scale=scale)
        )
        tiles.append(big(rgb(output["masked"][i])))
        edge = output["edges"][i, 0].detach().float().cpu().numpy()
        tiles.append(big(heatmap_overlay(np.zeros_like(image), edge, alpha=1.0)))
        tiles.append(big(rgb(output["reconstruction"][i])))
    save_png(path, image_grid(tiles, columns=4))


def discovered_keypoints(
    run_dir: str | Path, gt: GroundTruth, progress: bool = True, device: str = "auto"
) -> tuple[np.ndarray, list[tuple[int, int]], np.ndarray]:
    """Discovered keypoints (N, K, 2) in pixels, image sizes and confidences (N, K) for the images
    of a ground-truth set, in its order (an unreadable image is an error here)."""
    result = annotate_autolink(run_dir, gt.image_paths, None, progress=progress, device=device)
    if result.skipped:
        path, why = result.skipped[0]
        raise ValueError(f"a labelled image could not be read: {path}: {why}")
    return result.keypoints, result.sizes, result.confidence


def evaluate(
    run_dir: str | Path,
    fit: str | Path | None,
    test: str | Path,
    *,
    images: str | Path | None = None,
    norm: tuple[str, str] | None = None,
    intercept: bool = False,
    ridge: float = 0.0,
    pck: Sequence[float] = DEFAULT_PCK,
    progress: bool = True,
) -> dict:
    """The linear-fit protocol: fit discovered keypoints -> landmarks on ``fit``, score on ``test``,
    beside a baseline that predicts the mean landmark positions (image-relative). A weak run is
    measured by :func:`evaluate_weak` instead (``fit`` is not used)."""
    if is_weak_run(run_dir):
        return evaluate_weak(run_dir, test, images=images, norm=norm, progress=progress)
    fit_gt = read_ground_truth(fit, images)
    test_gt = read_ground_truth(test, images)
    if fit_gt.names != test_gt.names:
        test_gt = test_gt.select(fit_gt.names)
    kp_fit, sizes_fit, _ = discovered_keypoints(run_dir, fit_gt, progress)
    kp_test, sizes_test, _ = discovered_keypoints(run_dir, test_gt, progress)
    reg = fit_linear(
        to_relative(kp_fit, sizes_fit),
        to_relative(fit_gt.points, sizes_fit),
        intercept=intercept,
        ridge=ridge,
    )
    predicted = to_pixels(reg.predict(to_relative(kp_test, sizes_test)), sizes_test)
    mean_shape = np.nanmean(to_relative(fit_gt.points, sizes_fit), axis=0, keepdims=True)
    baseline = to_pixels(np.broadcast_to(mean_shape, test_gt.points.shape), sizes_test)
    distance, norm_text = normalising_distance(test_gt.points, test_gt.names, norm)
    return {
        "run": str(run_dir),
        "fit": {"file": str(fit), "images": len(fit_gt)},
        "test": {"file": str(test), "images": len(test_gt)},
        "normalised_by": norm_text,
        "regressor": {"intercept": intercept, "ridge": ridge},
        "keylink": score(predicted, test_gt.points, test_gt.names, distance, pck).to_dict(),
        "mean_shape_baseline": score(
            baseline, test_gt.points, test_gt.names, distance, pck
        ).to_dict(),
    }


def name(
    run_dir: str | Path,
    labels: str | Path,
    *,
    images: str | Path | None = None,
    ridge: float | None = None,
    suggest: int = 10,
    progress: bool = True,
) -> dict:
    """Few-shot naming: fit the map from discovered keypoints to the landmarks labelled on a few
    images, save it in the run (``annotate`` then writes named landmarks), and report its
    cross-validated error and the unlabelled images it is least sure of."""
    run_dir = Path(run_dir)
    if is_weak_run(run_dir):
        raise RunError(f"{run_dir} is a weak run: naming is for autolink runs' keypoints")
    config, _ = load_run(run_dir)
    gt = read_ground_truth(labels, images)
    kp, sizes, _ = discovered_keypoints(run_dir, gt, progress)
    distance, norm_text = normalising_distance(gt.points, gt.names)
    naming = fit_naming(
        to_relative(kp, sizes),
        to_relative(gt.points, sizes),
        sizes,
        gt.names,
        gt.skeleton,
        distance,
        norm_text,
        str(labels),
        ridge=ridge,
    )
    naming.save(run_dir)
    summary = {
        "landmarks": naming.names,
        "labelled_images": naming.labelled_images,
        "ridge": naming.regressor.ridge,
        "cv_error_px": round(naming.cv_error_px, 3),
        "cv_nme_percent": round(naming.cv_nme_percent, 3),
        "normalised_by": naming.normalised_by,
        "suggestions": [],
    }
    collection = Path(config.images)
    if suggest > 0 and collection.is_dir():
        labelled = {p.resolve() for p in gt.image_paths}
        candidates = [p for p in list_images(collection) if p.resolve() not in labelled]
        if candidates:
            result = annotate_autolink(run_dir, candidates, None, progress=progress)
            doubt = naming.disagreement(to_relative(result.keypoints, result.sizes))
            doubt = doubt + 0.1 * (1 - result.landmark_confidence.mean(axis=1))
            order = np.argsort(-doubt)[:suggest]
            summary["suggestions"] = [str(result.paths[i]) for i in order]
    return summary
