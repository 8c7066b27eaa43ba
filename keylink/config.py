"""One validated configuration object that flows from the CLI to the runner and into the run
folder."""

from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from keylink.geometry import default_thickness
from keylink.losses import LOSSES, SEPARATION_KERNELS
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
    edge_saturate: bool = False  # edge weights tanh(softplus(...)) <= 1 instead of unbounded
    # Draw edges relative to the strongest (its weight 1): a faint edge map drowns in the bf16
    # rounding of the decoder's first layer (BENCHMARKS.md, session 8).
    edge_normalize: bool = False
    mask_grid: int = 16
    mask_drop: float = 0.8
    # The skeleton: the strongest edges, at most skeleton_edges of them (None: keypoints - 1, as
    # many as a tree has), each at least skeleton_threshold times the strongest. A share of the
    # strongest alone fails when one edge outgrows the rest (BENCHMARKS.md, session 6).
    skeleton_threshold: float = 0.01
    skeleton_edges: int | None = None

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
        if not 0 < self.edge_init < (1 if self.edge_saturate else float("inf")):
            raise ConfigError(
                f"edge_init must be positive (below 1 when saturating), got {self.edge_init}"
            )
        if self.thickness is not None and self.thickness <= 0:
            raise ConfigError(f"thickness must be positive, got {self.thickness}")
        if not 0.0 <= self.skeleton_threshold <= 1.0:
            raise ConfigError(
                f"skeleton_threshold must be in [0, 1], got {self.skeleton_threshold}"
            )
        if self.skeleton_edges is not None and self.skeleton_edges < 0:
            raise ConfigError(f"skeleton_edges must be 0 or more, got {self.skeleton_edges}")


@dataclass
class TrainConfig:
    preset: str = "cpu"
    steps: int = 3000
    minutes: float | None = None  # wall-clock bound; whichever of steps/minutes comes first
    batch_size: int = 32
    lr: float = 1e-3
    edge_lr: float | None = None  # learning rate of the edge logits (times edge_scale); None: lr
    # Decoupled, length-weighted decay of the edge logits: each step an edge's logit shrinks by
    # edge_length_decay * edge lr * its mean length (normalised units), so a long edge must be
    # more consistently useful than a short one to grow (0: none, as in the paper).
    edge_length_decay: float = 0.0
    weight_decay: float = 1e-3
    warmup_steps: int = 100
    lr_decay: float = 0.0  # share of the run (steps or minutes) over which the lr decays to 0
    loss: str = "ssim"
    thickness_start: float = 1.0  # edges start this many times thicker ...
    thickness_steps: int = 0  # ... and thin down geometrically to the set thickness over these
    separation: float = 0.0  # weight of the keypoints-apart prior (0: the paper, none)
    separation_sigma: float = 0.1  # its reach (normalised units): pairs this close are pushed
    separation_kernel: str = "gaussian"  # or "laplace": pushes hardest where keypoints meet
    equivariance: float = 0.0  # weight of the keypoints-follow-a-random-warp term (0: none)
    warp_elastic: float = 0.0  # that warp's non-rigid part: control-point shifts (normalised)
    # For left-right symmetric objects: the keypoints of a mirrored image must be the mirrored
    # keypoints as a set (any order), so that a part found on one side is found on the other.
    flip_symmetry: float = 0.0  # its weight (0: off)
    # ... from this share of the run (its steps or minutes) on: from the start it held the
    # still-gathered keypoints on the midline, where a mirrored set matches itself (session 17).
    flip_symmetry_at: float = 0.35
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
        if self.separation_sigma <= 0:
            raise ConfigError(f"separation_sigma must be positive, got {self.separation_sigma}")
        if self.separation_kernel not in SEPARATION_KERNELS:
            raise ConfigError(
                f"unknown separation kernel {self.separation_kernel!r}; "
                f"known: {', '.join(SEPARATION_KERNELS)}"
            )
        for name in (
            "separation",
            "equivariance",
            "warp_elastic",
            "flip_symmetry",
            "edge_length_decay",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("lr_decay", "flip_symmetry_at"):  # shares of the run
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; known: {', '.join(LOSSES)}")
        if self.loss == "vgg" and not self.vgg_weights:
            raise ConfigError("the vgg loss needs a VGG16 weights file (--vgg-weights FILE)")
        if self.vgg_weights and not Path(self.vgg_weights).is_file():
            raise ConfigError(f"VGG16 weights file not found: {self.vgg_weights}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")


METHODS = ("autolink", "weak")


@dataclass
class WeakConfig:
    """Weakly supervised keypoints from class labels: a classifier trained on the labels, probed
    by occlusion (coarse) and guided backpropagation (fine); the combined map's most confident
    peaks, refined with the Förstner operator, are the keypoints. Sizes are model-input pixels."""

    # Labels: a CSV (image column + class column) or, when None, one sub-folder per class.
    labels: str | None = None
    label_column: str | None = None
    image_column: str | None = None  # None: detected from the header and the values
    classes: list[str] = field(default_factory=list)  # set by training: the output order
    image_size: int = 128
    resize: Literal["letterbox", "squash"] = "letterbox"
    val_share: float = 0.1  # held out (per class) for the held-out accuracy
    balance: bool = True  # draw every class equally often: a rare class is not ignored
    # Classifier: a registered name; weights: a file to start from (else from scratch).
    arch: str = "classifier_vgg"
    weights: str | None = None
    # Training.
    steps: int = 2000
    minutes: float | None = None
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 100
    shift: float = 0.0625  # random translation, as a share of the image side
    flip: bool = False  # off: a flip changes classes such as "left hand" or "left profile"
    seed: int = 0
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    device: str = "auto"
    threads: int | None = None
    log_every: int = 25
    eval_every: int = 250
    checkpoint_every: int = 250
    # Probes (the poster's constants).
    occluder: int = 16
    stride: int = 8
    fill: Literal["random", "grey"] = "random"  # random colours make no edge of their own
    occlusion_weight: float = 0.5
    guided_weight: float = 0.5
    guided_blur: float = 2.0  # Gaussian sigma (px) on the guided map before combining
    sigmoid_gain: float = 10.0  # likelihood = sigmoid(gain * (combined - offset)), combined in
    sigmoid_offset: float = 0.5  # [0, 1]: 0.5 at a pixel that is the maximum of only one map
    nms_radius: int = 8
    keep: float = 0.4  # the most confident share of the peaks
    forstner_window: int = 11
    forstner_min_ratio: float = 0.1
    probe_batch: int = 256  # occluded copies per forward pass
    probe_precision: Literal["auto", "bf16", "fp32"] = "fp32"

    def validate(self) -> None:
        from keylink.models import CLASSIFIERS

        if self.arch not in CLASSIFIERS:
            raise ConfigError(f"unknown classifier {self.arch!r}; known: {', '.join(CLASSIFIERS)}")
        if self.weights and not Path(self.weights).is_file():
            raise ConfigError(f"classifier weights file not found: {self.weights}")
        if self.labels and not Path(self.labels).is_file():
            raise ConfigError(f"labels file not found: {self.labels}")
        if self.image_size < 32:
            raise ConfigError(f"image_size must be at least 32, got {self.image_size}")
        if self.resize not in ("letterbox", "squash"):
            raise ConfigError(f"resize must be 'letterbox' or 'squash', got {self.resize!r}")
        if not 0.0 <= self.val_share < 0.9:
            raise ConfigError(f"val_share must be in [0, 0.9), got {self.val_share}")
        for name in ("steps", "batch_size", "log_every", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.minutes is not None and self.minutes <= 0:
            raise ConfigError(f"minutes must be positive, got {self.minutes}")
        if self.lr <= 0:
            raise ConfigError(f"learning rate must be positive, got {self.lr}")
        if not 0.0 <= self.shift < 0.5:
            raise ConfigError(f"shift must be in [0, 0.5), got {self.shift}")
        for name in ("precision", "probe_precision"):
            if getattr(self, name) not in ("auto", "bf16", "fp32"):
                raise ConfigError(f"{name} must be auto, bf16 or fp32, got {getattr(self, name)!r}")
        if not 1 <= self.occluder <= self.image_size:
            raise ConfigError(f"occluder must be in [1, image_size], got {self.occluder}")
        if self.stride < 1:
            raise ConfigError(f"stride must be positive, got {self.stride}")
        if self.fill not in ("random", "grey"):
            raise ConfigError(f"fill must be 'random' or 'grey', got {self.fill!r}")
        weights = (self.occlusion_weight, self.guided_weight)
        if min(weights) < 0 or sum(weights) <= 0:
            raise ConfigError(f"map weights must be >= 0 and not both 0, got {weights}")
        if self.nms_radius < 1:
            raise ConfigError(f"nms_radius must be positive, got {self.nms_radius}")
        if not 0.0 < self.keep <= 1.0:
            raise ConfigError(f"keep must be in (0, 1], got {self.keep}")
        if self.forstner_window < 3 or self.forstner_window % 2 == 0:
            raise ConfigError(f"forstner_window must be odd and >= 3, got {self.forstner_window}")
        if self.probe_batch < 1:
            raise ConfigError(f"probe_batch must be positive, got {self.probe_batch}")


@dataclass
class RunConfig:
    images: str
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    method: str = "autolink"
    version: int = 1
    weak: WeakConfig = field(default_factory=WeakConfig)  # used when method == "weak"

    def validate(self) -> RunConfig:
        if self.method not in METHODS:
            raise ConfigError(f"unknown method {self.method!r}; known: {', '.join(METHODS)}")
        self.model.validate()
        self.train.validate()
        if self.method == "weak":
            self.weak.validate()
        return self

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        data = dict(data)
        model = _known(ModelConfig, data.pop("model", {}))
        train = _known(TrainConfig, _upgrade_train(dict(data.pop("train", {}))))
        weak = _known(WeakConfig, data.pop("weak", {}))  # absent in runs made before it existed
        return cls(model=model, train=train, weak=weak, **_fields(cls, data))

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))


# Settings of features that were removed; run folders saved with them still load.
RETIRED_TRAIN_FIELDS = ("mirror_recruit", "mirror_at", "mirror_steps")


def _upgrade_train(train: dict[str, Any]) -> dict[str, Any]:
    """The train settings of a run saved by an older keylink, as this one reads them."""
    if train.get("mirror_recruit", 0.0) > 0:
        warnings.warn(
            "this run was trained with mirror recruitment, which keylink no longer has "
            "(flip symmetry replaced it); its weights load as they are, and resuming "
            "continues without it",
            stacklevel=3,
        )
    for name in RETIRED_TRAIN_FIELDS:
        train.pop(name, None)
    if "flip_symmetry" in train and "flip_symmetry_at" not in train:
        train["flip_symmetry_at"] = 0.0  # saved before the delayed start: it ran from step 0
    return train


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
        # Small and fast enough to learn useful keypoints on a 2-core CPU in minutes
        # (BENCHMARKS.md). Masking more than the paper's 0.8 made keypoints emerge much faster.
        # Saturating edge weights keeps one edge from starving the rest; equivariance keeps the
        # keypoints on parts that move with the figure; separation keeps the keypoints no edge
        # uses from idling in one clump at the centre, so they take up limbs (an arm).
        # Small batches and a small decoder: more steps per minute. A strong equivariance term
        # whose warp bends as well as turns (elastic) pulls the keypoints onto local parts that
        # can be tracked (eye and mouth corners rather than the face's outline), and the learning
        # rate decays over the last 30% of the run.
        model = ModelConfig(
            keypoints=keypoints,
            image_size=64,
            decoder="decoder_small",
            mask_drop=0.95,
            edge_saturate=True,
        )
        train = TrainConfig(
            preset="cpu",
            batch_size=16,
            loss="ssim",
            equivariance=30.0,
            warp_elastic=0.05,
            separation=0.1,
            lr_decay=0.3,
        )
    else:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return model, train


# The cpu preset's settings changed for thin articulated figures (`keylink demo` trains with them):
# unbounded edge weights that learn slowly and shrink with their length (on the true joints they
# keep 9 true bones of 14 edges against 5 of 11), and a wider reach of the keypoints-apart term,
# which sends keypoints from the torso out to the hands and feet (BENCHMARKS.md, session 5). A
# length decay of 1 rather than 0.3 put more edges on true bones at the same keypoint error over
# three seeds (session 6). The shrinking weights made the edge map so faint that bf16 rounding in
# the decoder's first layer hid it; drawing edges relative to the strongest, with the separation
# kernel that pushes hardest where keypoints meet, follows more joints and puts more edges along the
# limbs over three seeds at the same mean error (session 8). The preset's strong equivariance (30,
# chosen on faces) holds the keypoints off the arms; 10 follows the wrists and elbows more closely,
# with more edges along the bones on four of five seeds and a lower mean error (session 9). Flip
# symmetry from 35% of the run on lowered the error on all four seeds and drew three quarters or
# more of each leg on each (session 17). Batches of 8 instead of 16: a step takes about half the
# time, so the same minutes give nearly twice the updates. In 17-minute runs seed 3 drew
# its arms .45 / .38 instead of .12 / .14 at a lower error, and seed 2 drew them as well (.51 /
# .53 against .52 / .52) at a slightly higher error (session 21). Faces, where the preset
# was chosen, were not re-measured with them. Session 24 moved the flip term's start to half the
# run (below).
FIGURE_SETTINGS = {
    "edge_saturate": False,
    "edge_normalize": True,
    "edge_lr": 1e-4,
    "edge_length_decay": 1.0,
    "separation_sigma": 0.2,
    "separation_kernel": "laplace",
    "equivariance": 10.0,
    "flip_symmetry": 10.0,
    # From half the run, not 35%: in the 9-minute demo on these figures the arms were reached in
    # 3 of 3 runs this way and 1 of 4 the other (BENCHMARKS.md, session 24).
    "flip_symmetry_at": 0.5,
    "batch_size": 8,
}
# The demo's step bound: the 32,000 images of its earlier 2,000 steps of 16. On a 2-core CPU
# without native bf16 its 9-minute bound stops training first (BENCHMARKS.md).
DEMO_STEPS = 4000
DEMO_MINUTES = 9.0  # the demo's time bound, so that it finishes in under 10 minutes


def default_preset(device: str = "auto") -> str:
    """``paper`` when training on a CUDA GPU (``device`` cuda or cuda:N, or ``auto`` with one
    present), ``cpu`` otherwise: a run asked onto the CPU of a GPU machine gets the cpu preset."""
    if device != "auto":
        return "paper" if device.startswith("cuda") else "cpu"
    import torch

    return "paper" if torch.cuda.is_available() else "cpu"


def apply_overrides(config: RunConfig, items: list[str]) -> RunConfig:
    """Set fields from ``FIELD=VALUE`` strings, ``FIELD`` being a ModelConfig or TrainConfig field
    (``model.`` / ``train.`` prefixes optional); values are parsed by the field's current type."""
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"expected FIELD=VALUE, got {item!r}")
        section, _, name = key.rpartition(".")
        if section:
            target = getattr(config, section, None)
        else:
            target = config.model if hasattr(config.model, name) else config.train
        if target is None or not hasattr(target, name):
            raise ConfigError(f"unknown config field {key!r}")
        old = getattr(target, name)
        if isinstance(old, bool):
            value: Any = text.lower() in ("1", "true", "yes", "on")
        elif old is None:
            value = None if text.lower() == "none" else _number(text)
        else:
            value = type(old)(text)
        setattr(target, name, value)
    return config


def _number(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def as_flags(settings: dict[str, Any]) -> str:
    """``keylink train`` options that set ``settings`` (field names as in the configs)."""
    flags = []
    for name, value in settings.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + flag[2:])
        else:
            flags.append(f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}")
    return " ".join(flags)
