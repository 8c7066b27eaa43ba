"""One validated configuration object that flows from the CLI to the runner and into the run
folder."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from keylink.geometry import default_thickness
from keylink.losses import LOSSES
from keylink.models import list_models

PRESETS = ("paper", "cpu")


class ConfigError(ValueError):
    """A configuration value a user gave is invalid."""


@dataclass
class ModelConfig:
    keypoints: int = 16
    image_size: int = 64
    resize: Literal["letterbox", "squash"] = "letterbox"
    detector: str = "detector_cpu"
    decoder: str = "decoder_cpu"
    thickness: float | None = None  # squared normalised units; None: the paper's value for K
    edge_scale: float = 512.0
    edge_init: float = 0.018
    mask_grid: int = 16
    mask_drop: float = 0.8
    skeleton_threshold: float = 0.1  # an edge is in the skeleton above this share of the max weight

    @property
    def edge_thickness(self) -> float:
        """The given thickness, else the paper's for K at 128 px, scaled to keep the same width in
        pixels at this image size (thickness is in squared normalised units)."""
        if self.thickness is not None:
            return self.thickness
        return default_thickness(self.keypoints) * (128 / self.image_size) ** 2

    def validate(self) -> None:
        if not 2 <= self.keypoints <= 64:
            raise ConfigError(f"keypoints must be between 2 and 64, got {self.keypoints}")
        if self.image_size < 16 or self.image_size % 16:
            raise ConfigError(f"image_size must be a multiple of 16 (>= 16), got {self.image_size}")
        if self.resize not in ("letterbox", "squash"):
            raise ConfigError(f"resize must be 'letterbox' or 'squash', got {self.resize!r}")
        for name in (self.detector, self.decoder):
            if name not in list_models():
                raise ConfigError(f"unknown model {name!r}; known: {', '.join(list_models())}")
        if not 0.0 <= self.mask_drop < 1.0:
            raise ConfigError(f"mask_drop must be in [0, 1), got {self.mask_drop}")
        if self.thickness is not None and self.thickness <= 0:
            raise ConfigError(f"thickness must be positive, got {self.thickness}")


@dataclass
class TrainConfig:
    preset: str = "cpu"
    steps: int = 3000
    minutes: float | None = None  # wall-clock bound; whichever of steps/minutes comes first
    batch_size: int = 32
    lr: float = 1e-3
    edge_lr: float | None = None  # learning rate of the edge logits (times edge_scale); None: lr
    weight_decay: float = 1e-3
    warmup_steps: int = 100
    loss: str = "ssim"
    thickness_start: float = 1.0  # edges start this many times thicker ...
    thickness_steps: int = 0  # ... and thin down geometrically to the set thickness over these
    separation: float = 0.0  # weight of the keypoint separation prior (0: the paper, none)
    vgg_weights: str | None = None
    seed: int = 0
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    device: str = "auto"
    log_every: int = 25
    sample_every: int = 250
    checkpoint_every: int = 250
    threads: int | None = None

    def validate(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError(f"preset must be one of {PRESETS}, got {self.preset!r}")
        if self.steps < 1:
            raise ConfigError(f"steps must be positive, got {self.steps}")
        if self.minutes is not None and self.minutes <= 0:
            raise ConfigError(f"minutes must be positive, got {self.minutes}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be positive, got {self.batch_size}")
        if self.lr <= 0:
            raise ConfigError(f"learning rate must be positive, got {self.lr}")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; known: {', '.join(LOSSES)}")
        if self.loss == "vgg" and not self.vgg_weights:
            raise ConfigError("the vgg loss needs a VGG16 weights file (--vgg-weights FILE)")
        if self.vgg_weights and not Path(self.vgg_weights).is_file():
            raise ConfigError(f"VGG16 weights file not found: {self.vgg_weights}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")


@dataclass
class RunConfig:
    images: str
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    method: str = "autolink"
    version: int = 1

    def validate(self) -> RunConfig:
        self.model.validate()
        self.train.validate()
        return self

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        data = dict(data)
        model = _known(ModelConfig, data.pop("model", {}))
        train = _known(TrainConfig, data.pop("train", {}))
        return cls(model=model, train=train, **_fields(cls, data))

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))


def _fields(cls, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s): {', '.join(sorted(unknown))}")
    return data


def _known(cls, data: dict[str, Any]):
    return cls(**_fields(cls, data))


def preset(name: str, keypoints: int = 16) -> tuple[ModelConfig, TrainConfig]:
    """The model and training settings of a named preset."""
    if name == "paper":
        # The paper's published settings: 128 px, 32x32 heatmaps, AdamW 1e-4, batch 64, 20k steps.
        model = ModelConfig(
            keypoints=keypoints,
            image_size=128,
            detector="detector_paper",
            decoder="decoder_paper",
        )
        train = TrainConfig(
            preset="paper",
            steps=20_000,
            batch_size=64,
            lr=1e-4,
            weight_decay=1e-3,
            warmup_steps=0,
            log_every=50,
            sample_every=1000,
            checkpoint_every=1000,
        )
    elif name == "cpu":
        # Small and fast enough to learn useful keypoints on a 2-core CPU in minutes.
        # Masking more than the paper's 0.8 made keypoints emerge much faster (BENCHMARKS.md).
        model = ModelConfig(keypoints=keypoints, image_size=64, mask_drop=0.95)
        train = TrainConfig(preset="cpu", loss="ssim")
    else:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return model, train


def default_preset() -> str:
    """``paper`` where a CUDA GPU is present, ``cpu`` otherwise."""
    import torch

    return "paper" if torch.cuda.is_available() else "cpu"
