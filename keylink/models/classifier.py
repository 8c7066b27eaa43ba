"""Image classifiers whose decisions the weak method probes for keypoints.

Every classifier takes RGB images in [0, 1] and normalises them itself (ImageNet mean and std), so
that probes (occlusion, guided backpropagation) work on plain pixels. ReLUs are modules, never
functional calls, so that guided backpropagation can find and change every one of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's VGG16 "features" layout: numbers are 3x3 conv widths, "M" a 2x2 max-pool.
VGG16_LAYOUT: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip


class Classifier(nn.Module):
    """features -> head; input (B, 3, H, W) in [0, 1], output (B, classes) logits."""

    def __init__(self, features: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)
        self.features = features
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features((x - self.mean) / self.std))


def conv_stack(
    in_channels: int, layout: Sequence[int | str], batch_norm: bool, stem_stride: int = 1
) -> nn.Sequential:
    """VGG-style features: 3x3 convs (+ BatchNorm) + ReLU, "M" for a 2x2 max-pool. With
    ``stem_stride`` 2 the first conv halves the resolution (a quarter of the cost of that layer
    and everything after it at full resolution)."""
    layers: list[nn.Module] = []
    cin = in_channels
    first = True
    for item in layout:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
            continue
        width = int(item)
        stride = stem_stride if first else 1
        layers.append(nn.Conv2d(cin, width, 3, stride=stride, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.ReLU(inplace=True))
        cin, first = width, False
    return nn.Sequential(*layers)


def small_vgg(
    in_channels: int,
    classes: int,
    layout: Sequence[int | str] = (16, 32, "M", 64, "M", 128, "M", 256),
    dropout: float = 0.2,
) -> Classifier:
    """A small VGG-style classifier for training from scratch on a CPU: 3x3 convs with BatchNorm,
    a stride-2 stem, global average pooling and one linear layer. Occlusion runs it on 225
    copies of every image, so it is kept to about 80 MMAC at 128 px (VGG16: 5 GMAC)."""
    features = conv_stack(in_channels, layout, batch_norm=True, stem_stride=2)
    width = [int(v) for v in layout if v != "M"][-1]
    head = nn.Sequential(
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(width, classes)
    )
    return Classifier(features, head)


def vgg16(in_channels: int, classes: int) -> Classifier:
    """VGG16 in torchvision's layout (``features.N``, ``classifier.0/3/6`` are stored here as
    ``features.N`` and ``head.3/6/9``), for a user-supplied ImageNet weights file."""
    features = conv_stack(in_channels, VGG16_LAYOUT, batch_norm=False)
    head = nn.Sequential(
        nn.AdaptiveAvgPool2d(7),
        nn.Flatten(),
        nn.Identity(),
        nn.Linear(512 * 7 * 7, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Linear(4096, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Linear(4096, classes),
    )
    return Classifier(features, head)


# torchvision's classifier.i sits at head.(i + 3) here (after pool, flatten and a spacer).
_TORCHVISION_HEAD_OFFSET = 3


def _rename(key: str) -> str:
    key = key.removeprefix("module.")
    if key.startswith("classifier."):
        index, rest = key.removeprefix("classifier.").split(".", 1)
        return f"head.{int(index) + _TORCHVISION_HEAD_OFFSET}.{rest}"
    return key


def load_pretrained(model: nn.Module, path: str | Path) -> list[str]:
    """Load a weights file (.safetensors or a PyTorch state dict, keylink's or torchvision's
    layout) into ``model``, skipping tensors whose shape differs (the last layer when the
    classes differ). Returns the names that were not loaded; raises ValueError when not one
    convolution matched (a file for another architecture)."""
    from keylink.losses import load_state_dict

    state = {_rename(k): v for k, v in load_state_dict(path).items()}
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not any(k.startswith("features.") for k in usable):
        example = ", ".join(list(state)[:3])
        raise ValueError(
            f"{path}: no layer fits this classifier (file has e.g. {example}); "
            "pick the architecture the weights were made for"
        )
    model.load_state_dict(usable, strict=False)
    return sorted(k for k in own if k not in usable and k not in ("mean", "std"))


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm that directly follows a Conv2d in an nn.Sequential into that conv
    (in eval mode they are one affine map); halves the probe time of a small net. In place."""
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for a, b in zip(names, names[1:], strict=False):
            conv, bn = module._modules[a], module._modules[b]
            if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)):
                continue
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            fused = nn.Conv2d(
                conv.in_channels,
                conv.out_channels,
                conv.kernel_size,
                conv.stride,
                conv.padding,
                conv.dilation,
                conv.groups,
                bias=True,
            ).to(conv.weight)
            fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
            module._modules[a] = fused
            module._modules[b] = nn.Identity()
    return model
