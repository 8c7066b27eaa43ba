"""Probing a classifier for the image parts it relies on: occlusion sensitivity (coarse), guided
backpropagation (fine) and their combination into a keypoint likelihood.

Pure functions of a model and a batch of (B, 3, H, W) images in [0, 1]; maps come back as
(B, H, W) float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from keylink.peaks import gaussian_blur


# ---------------------------------------------------------------- occlusion
def occluder_positions(size: int, occluder: int, stride: int) -> list[int]:
    """Start offsets of an occluder sliding along a side of ``size`` pixels; a last position
    flush with the far border is added when the stride does not land there, so every pixel is
    covered."""
    if occluder > size:
        raise ValueError(f"occluder ({occluder}) is larger than the image ({size})")
    starts = list(range(0, size - occluder + 1, stride))
    if starts[-1] != size - occluder:
        starts.append(size - occluder)
    return starts


def _fill(
    image: torch.Tensor, kind: str, generator: torch.Generator | None
) -> torch.Tensor:  # (3, H, W)
    if kind == "grey":
        return torch.full_like(image, 0.5)
    if kind == "random":
        # Random colour per pixel: no flat patch whose border would be an edge of its own.
        noise = torch.rand(image.shape, generator=generator, dtype=torch.float32)
        return noise.to(image)
    raise ValueError(f"unknown fill {kind!r}; known: random, grey")


@torch.no_grad()
def occlusion_sensitivity(
    model: nn.Module,
    images: torch.Tensor,
    target: torch.Tensor | None = None,
    *,
    occluder: int = 16,
    stride: int = 8,
    fill: str = "random",
    batch_size: int = 256,
    generator: torch.Generator | None = None,
    autocast: contextlib.AbstractContextManager | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """How much hiding each part of the image lowers the target class's probability.

    An ``occluder`` x ``occluder`` patch (filled with ``fill``) slides with ``stride``; each
    position scores max(p(x) - p(occluded x), 0) for the target class (default: the predicted
    one), and a pixel's value is the mean score of the positions that cover it. All occluded
    copies of an image go through the model in batches of ``batch_size``.

    Returns the (B, H, W) map and the (B,) target classes.
    """
    b, _, h, w = images.shape
    ctx = autocast if autocast is not None else contextlib.nullcontext()
    with ctx:
        clean = torch.softmax(model(images).float(), dim=1)
    if target is None:
        target = clean.argmax(dim=1)
    ys = occluder_positions(h, occluder, stride)
    xs = occluder_positions(w, occluder, stride)
    positions = [(y, x) for y in ys for x in xs]
    coverage = torch.zeros(h, w, device=images.device)
    for y, x in positions:
        coverage[y : y + occluder, x : x + occluder] += 1
    maps = torch.zeros(b, h, w, device=images.device)
    for i in range(b):
        image = images[i]
        patch_fill = _fill(image, fill, generator)
        scores = []
        for start in range(0, len(positions), batch_size):
            chunk = positions[start : start + batch_size]
            copies = image.expand(len(chunk), *image.shape).clone()
            for k, (y, x) in enumerate(chunk):
                copies[k, :, y : y + occluder, x : x + occluder] = patch_fill[
                    :, y : y + occluder, x : x + occluder
                ]
            copies = copies.contiguous(memory_format=torch.channels_last)
            with ctx:
                logits = model(copies).float()
            p = torch.softmax(logits, dim=1)[:, target[i]]
            scores.append((clean[i, target[i]] - p).clamp(min=0))
        score = torch.cat(scores)
        for s, (y, x) in zip(score.tolist(), positions, strict=True):
            maps[i, y : y + occluder, x : x + occluder] += s
    return maps / coverage, target


# ---------------------------------------------------------------- guided backpropagation
class _GuidedReLU(torch.autograd.Function):
    """ReLU forward; backward passes the gradient only where both the ReLU's input and the
    incoming gradient are positive (Springenberg et al.'s guided backpropagation)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * ((x > 0) & (grad > 0)).to(grad.dtype)


def guided_relu(x: torch.Tensor) -> torch.Tensor:
    return _GuidedReLU.apply(x)


@contextlib.contextmanager
def guided_relus(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block every nn.ReLU of ``model`` backpropagates the guided way."""

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor):
        # An in-place ReLU has already overwritten its input with relu(x), which is positive
        # exactly where x is: the guided ReLU of it has the same value and the same mask.
        return guided_relu(inputs[0])

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        yield model
    finally:
        for handle in handles:
            handle.remove()


def guided_backprop(
    model: nn.Module, images: torch.Tensor, target: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of the target class's logit (default: the predicted class) with respect to the
    input pixels, backpropagated through guided ReLUs. Returns the (B, 3, H, W) gradient and the
    (B,) targets; :func:`guided_map` turns the gradient into a per-pixel map."""
    x = images.detach().clone().requires_grad_(True)
    with torch.enable_grad(), guided_relus(model):
        logits = model(x).float()
        if target is None:
            target = logits.argmax(dim=1)
        chosen = logits.gather(1, target.view(-1, 1)).sum()
        (grad,) = torch.autograd.grad(chosen, x)
    return grad.detach(), target


def guided_map(gradient: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) input gradient -> (B, H, W): its largest magnitude over the channels."""
    return gradient.abs().amax(dim=1)


# ---------------------------------------------------------------- combination
def normalise(maps: torch.Tensor) -> torch.Tensor:
    """Each (H, W) map of a (B, H, W) batch rescaled to [0, 1] (a constant map becomes 0)."""
    flat = maps.flatten(1)
    lo = flat.min(dim=1).values.view(-1, 1, 1)
    hi = flat.max(dim=1).values.view(-1, 1, 1)
    span = hi - lo
    return torch.where(span > 0, (maps - lo) / span.clamp(min=1e-12), torch.zeros_like(maps))


def combine(
    occlusion: torch.Tensor,
    guided: torch.Tensor,
    weights: Sequence[float] = (0.5, 0.5),
    *,
    guided_blur: float = 2.0,
    gain: float = 10.0,
    offset: float = 0.5,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The linear combination of the normalised maps and the keypoint likelihood made of it.

    ``combined = w_o * norm(occlusion) + w_g * norm(blur(guided))`` with the weights scaled to sum
    to 1, so it is in [0, 1]; ``likelihood = sigmoid(gain * (combined - offset))``. ``mask``
    (B, H, W) or (H, W), True where the image is (not letterbox padding), zeroes the rest first.

    Returns (combined, likelihood), each (B, H, W).
    """
    w_o, w_g = (float(v) for v in weights)
    total = w_o + w_g
    if total <= 0:
        raise ValueError(f"weights must not both be 0, got {tuple(weights)}")
    fine = gaussian_blur(guided[:, None].float(), guided_blur)[:, 0]
    occ = occlusion.float()
    if mask is not None:
        m = mask.to(occ.device, torch.bool).expand_as(occ)
        occ, fine = occ * m, fine * m
    combined = (w_o * normalise(occ) + w_g * normalise(fine)) / total
    if mask is not None:
        combined = combined * m
    likelihood = torch.sigmoid(gain * (combined - offset))
    return combined, likelihood
