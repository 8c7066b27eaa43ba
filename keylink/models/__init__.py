"""Every network keylink builds, created by name through one factory (timm style)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from keylink.models.classifier import small_vgg, vgg16
from keylink.models.unet import UNet, count_parameters

# name -> builder(in_channels, out_channels, **kwargs)
_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = fn
        return fn

    return wrap


def create_model(name: str, in_channels: int, out_channels: int, **kwargs) -> nn.Module:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](in_channels, out_channels, **kwargs)


def list_models() -> list[str]:
    return sorted(_REGISTRY)


# Detectors: image -> K heatmaps at a quarter (paper) or half (cpu) of the input resolution.
@register("detector_paper")
def detector_paper(cin: int, cout: int) -> nn.Module:
    return UNet(cin, cout, widths=(32, 64, 128, 256, 512), out_level=2)  # 7.7M


@register("detector_cpu")
def detector_cpu(cin: int, cout: int) -> nn.Module:
    return UNet(cin, cout, widths=(16, 32, 64, 128), out_level=1)


@register("detector_half")
def detector_half(cin: int, cout: int) -> nn.Module:
    return UNet(cin, cout, widths=(8, 16, 32, 64), out_level=1)


@register("detector_tiny")
def detector_tiny(cin: int, cout: int) -> nn.Module:
    return UNet(cin, cout, widths=(8, 16, 32), out_level=1)


# Decoders: masked image + edge map -> image.
@register("decoder_paper")
def decoder_paper(cin: int, cout: int) -> nn.Module:
    return UNet(cin, cout, widths=(48, 96, 192, 384, 768))  # 17.7M


@register("decoder_cpu")
def decoder_cpu(cin: int, cout: int) -> nn.Module:
    return UNet(cin, cout, widths=(32, 64, 128, 128))  # the cpu preset's before session 3


@register("decoder_small")
def decoder_small(cin: int, cout: int) -> nn.Module:
    return UNet(cin, cout, widths=(16, 32, 64, 128))  # the cpu preset's: 1.5x faster, as good


@register("decoder_half")
def decoder_half(cin: int, cout: int) -> nn.Module:
    return UNet(cin, cout, widths=(8, 16, 32, 64))


@register("decoder_tiny")
def decoder_tiny(cin: int, cout: int) -> nn.Module:
    return UNet(cin, cout, widths=(8, 16, 32))


# Classifiers: image -> class logits, probed by the weak method for keypoints.
CLASSIFIERS = ("classifier_vgg", "classifier_tiny", "vgg16")


@register("classifier_vgg")
def classifier_vgg(cin: int, classes: int) -> nn.Module:
    return small_vgg(cin, classes)  # 0.4M parameters, about 80 MMAC at 128 px


@register("classifier_tiny")
def classifier_tiny(cin: int, classes: int) -> nn.Module:
    return small_vgg(cin, classes, layout=(8, "M", 16, "M", 32), dropout=0.0)  # tests


@register("vgg16")
def vgg16_classifier(cin: int, classes: int) -> nn.Module:
    return vgg16(cin, classes)  # for a user-supplied ImageNet weights file (torchvision layout)


__all__ = ["CLASSIFIERS", "UNet", "count_parameters", "create_model", "list_models", "register"]
