"""The Python API; the command line is a thin layer over these functions."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from keylink.config import ConfigError, RunConfig, default_preset, preset
from keylink.data.dataset import load_folder
from keylink.data.images import Resize
from keylink.engine import RunError, TrainResult, load_run
from keylink.engine import train as train_run
from keylink.geometry import normalised_to_pixels
from keylink.inference import Annotations, annotate
from keylink.methods.autolink import AutoLink
from keylink.report import draw_keypoints, heatmap_overlay, image_grid, save_png

__all__ = ["Annotations", "annotate", "load", "make_config", "train"]


def make_config(
    images: str | Path,
    keypoints: int = 16,
    preset_name: str | None = None,
    **overrides: Any,
) -> RunConfig:
    """A validated RunConfig: the preset's settings (``paper`` on a GPU, ``cpu`` otherwise) with
    ``overrides`` applied; each override names a ModelConfig or TrainConfig field."""
    model, train_cfg = preset(preset_name or default_preset(), keypoints)
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
    **overrides: Any,
) -> TrainResult:
    """Learn ``keypoints`` keypoints and a skeleton from a folder of unlabelled images into the run
    folder ``out``. With ``resume`` the run's saved config is used; ``steps`` and ``minutes`` may
    still be raised to train for longer."""
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


def load(run_dir: str | Path, device: str = "cpu") -> tuple[RunConfig, AutoLink]:
    """The config and trained model of a run folder."""
    return load_run(run_dir, device)


def save_training_sample(
    path: Path, model: AutoLink, images: torch.Tensor, output: dict[str, torch.Tensor], n: int = 4
) -> None:
    """One row per image: keypoints and skeleton, masked input, edge map, reconstruction."""
    skeleton = model.skeleton()
    edges = [(i, j) for i, j, _ in skeleton]
    max_w = max((w for *_, w in skeleton), default=1.0)
    weights = [w / max_w for *_, w in skeleton]
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
