"""Reconstruction losses, built by name. Images are (B, 3, H, W) floats in [0, 1].

The paper used a VGG16 perceptual loss with ImageNet weights; those cannot be downloaded here,
so every default needs no weights. ``vgg`` takes a user-supplied weights file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from keylink.geometry import flip_points, warp_source


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences along x and y."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def l1_gradient_loss(pred: torch.Tensor, target: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    """Pixel L1 plus L1 between image gradients (rewards sharp edges over blur)."""
    pgx, pgy = image_gradients(pred)
    tgx, tgy = image_gradients(target)
    grad = (pgx - tgx).abs().mean() + (pgy - tgy).abs().mean()
    return (pred - target).abs().mean() + weight * grad


def _gaussian_window(size: int, sigma: float, device, dtype) -> torch.Tensor:
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(
    pred: torch.Tensor, target: torch.Tensor, window: int = 7, sigma: float = 1.5
) -> torch.Tensor:
    """Mean structural similarity (per channel, Gaussian window, no padding)."""
    c = pred.shape[1]
    g = _gaussian_window(window, sigma, pred.device, pred.dtype)
    kx = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    ky = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, kx, groups=c), ky, groups=c)

    mu_p, mu_t = blur(pred), blur(target)
    var_p = blur(pred * pred) - mu_p**2
    var_t = blur(target * target) - mu_t**2
    cov = blur(pred * target) - mu_p * mu_t
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / (
        (mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2)
    )
    return s.mean()


def ssim_l1_loss(pred: torch.Tensor, target: torch.Tensor, alpha: float = 0.85) -> torch.Tensor:
    """The usual mix of SSIM dissimilarity and L1."""
    return alpha * (1 - ssim(pred, target)) / 2 + (1 - alpha) * (pred - target).abs().mean()


class FeatureLoss(nn.Module):
    """L1 between the activations of a frozen feature network at several depths, plus pixel L1."""

    def __init__(self, layers: nn.ModuleList, pixel_weight: float = 1.0) -> None:
        super().__init__()
        self.layers = layers
        self.pixel_weight = pixel_weight
        self.requires_grad_(False)
        self.eval()

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 - 1

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = self.pixel_weight * (pred - target).abs().mean()
        p, t = self.preprocess(pred), self.preprocess(target)
        for layer in self.layers:
            p, t = layer(p), layer(t)
            loss = loss + (p - t).abs().mean()
        return loss

    def train(self, mode: bool = True) -> FeatureLoss:
        return super().train(False)  # always frozen


def random_feature_loss(channels: tuple[int, ...] = (32, 64, 128), seed: int = 0) -> FeatureLoss:
    """Features of a fixed, randomly initialised conv net (no download needed). Random conv
    features still respond to edges and textures, which pixel losses under-weight."""
    gen = torch.Generator().manual_seed(seed)
    layers = nn.ModuleList()
    cin = 3
    for i, cout in enumerate(channels):
        conv = nn.Conv2d(cin, cout, 3, stride=1 if i == 0 else 2, padding=1)
        with torch.no_grad():
            conv.weight.normal_(0, (2.0 / (cin * 9)) ** 0.5, generator=gen)
            conv.bias.zero_()
        layers.append(nn.Sequential(conv, nn.LeakyReLU(0.2)))
        cin = cout
    return FeatureLoss(layers)


# VGG16 "features" layout, numbered as torchvision numbers it, so its state dicts load as they are.
_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512]
_VGG16_CUTS = (4, 9, 16, 23)  # after relu1_2, relu2_2, relu3_3, relu4_3


class VGGPerceptualLoss(FeatureLoss):
    """The paper's perceptual loss, from a user-supplied VGG16 ImageNet weights file."""

    mean = (0.485, 0.456, 0.406)
    std = (0.229, 0.224, 0.225)

    def __init__(self, weights: str | Path) -> None:
        modules: list[nn.Module] = []
        cin = 3
        for v in _VGG16:
            if v == "M":
                modules.append(nn.MaxPool2d(2))
            else:
                modules += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=False)]
                cin = int(v)
        state = load_state_dict(weights)
        state = {k.removeprefix("features."): v for k, v in state.items() if "classifier" not in k}
        features = nn.Sequential(*modules)
        missing = features.load_state_dict(state, strict=False).missing_keys
        if missing:
            raise ValueError(f"{weights}: not a VGG16 weights file (missing {missing[:3]} ...)")
        cuts = [0, *_VGG16_CUTS]
        layers = nn.ModuleList(features[a:b] for a, b in zip(cuts, cuts[1:], strict=False))
        super().__init__(layers, pixel_weight=0.0)
        self.register_buffer("_mean", torch.tensor(self.mean).view(1, 3, 1, 1))
        self.register_buffer("_std", torch.tensor(self.std).view(1, 3, 1, 1))

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self._mean) / self._std


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors from a .safetensors file or a PyTorch file (never unpickles code)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return state


def separation_loss(
    keypoints: torch.Tensor, sigma: float = 0.1, kernel: str = "gaussian"
) -> torch.Tensor:
    """Mean proximity of every keypoint pair (B, K, 2): pushes keypoints apart so that they
    explore the object instead of collapsing on its centre. ``sigma`` in normalised units.

    ``gaussian``: exp(-d^2 / 2 sigma^2), whose push fades to nothing as two keypoints meet, so a
    clump that has formed can stay. ``laplace``: exp(-d / sigma), whose push is strongest there."""
    k = keypoints.shape[1]
    off_diagonal = ~torch.eye(k, dtype=torch.bool, device=keypoints.device)
    diff = keypoints[:, :, None] - keypoints[:, None]  # (B, K, K, 2)
    d2 = diff.square().sum(-1)[:, off_diagonal]
    if kernel == "gaussian":
        return torch.exp(-d2 / (2 * sigma**2)).mean()
    if kernel == "laplace":
        # The small constant keeps the gradient finite where two keypoints coincide exactly.
        return torch.exp(-torch.sqrt(d2 + 1e-12) / sigma).mean()
    raise ValueError(
        f"unknown separation kernel {kernel!r}; known: {', '.join(SEPARATION_KERNELS)}"
    )


SEPARATION_KERNELS = ("gaussian", "laplace")


LOSSES: dict[str, str] = {
    "l1": "pixel L1",
    "l1grad": "pixel L1 + L1 of image gradients",
    "ssim": "0.85 SSIM dissimilarity + 0.15 L1",
    "randfeat": "L1 on features of a fixed random conv net + pixel L1",
    "vgg": "VGG16 perceptual loss (the paper's); needs --vgg-weights FILE",
}


def create_loss(name: str, vgg_weights: str | Path | None = None) -> Callable | nn.Module:
    if name == "l1":
        return lambda p, t: (p - t).abs().mean()
    if name == "l1grad":
        return l1_gradient_loss
    if name == "ssim":
        return ssim_l1_loss
    if name == "randfeat":
        return random_feature_loss()
    if name == "vgg":
        if vgg_weights is None:
            raise ValueError("the vgg loss needs a VGG16 weights file (--vgg-weights FILE)")
        return VGGPerceptualLoss(vgg_weights)
    raise ValueError(f"unknown loss {name!r}; known: {', '.join(LOSSES)}")


def equivariance_loss(
    keypoints: torch.Tensor,
    warped_keypoints: torch.Tensor,
    affine: torch.Tensor,
    flow: torch.Tensor | None = None,
) -> torch.Tensor:
    """Keypoints must move with the image: the detections on the warped image, mapped back to
    where they came from (:func:`~keylink.geometry.warp_source`), against the detections on the
    original (mean squared distance, normalised units). A non-rigid ``flow`` makes a keypoint
    follow local image content, not only the object's position, size and turn."""
    back = warp_source(warped_keypoints, affine, flow)
    return (back - keypoints).pow(2).sum(dim=-1).mean()


def flip_symmetry_loss(keypoints: torch.Tensor, flipped_keypoints: torch.Tensor) -> torch.Tensor:
    """The detections (B, K, 2) on horizontally mirrored images against the mirrored detections
    on the originals, as sets (any order): every keypoint of either set asks for one of the other
    set at its place (mean squared distance to the nearest, normalised units). Which keypoint
    takes a part is free, so a keypoint on one arm asks for some keypoint on the other arm.

    Only the nearest keypoint moves: the asking keypoint is held (detached), so a part found on
    one side is never given up to meet the other side halfway (say on the body's midline)."""
    mirrored = flip_points(keypoints)
    to_flipped = (mirrored.detach()[:, :, None] - flipped_keypoints[:, None]).square().sum(-1)
    to_mirrored = (mirrored[:, :, None] - flipped_keypoints.detach()[:, None]).square().sum(-1)
    # (B, K, K): row i is the mirrored keypoint i, column j the flipped image's keypoint j.
    return 0.5 * (to_flipped.min(dim=2).values.mean() + to_mirrored.min(dim=1).values.mean())
