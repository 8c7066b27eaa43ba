"""A plain U-Net, used both as the keypoint detector and as the image decoder."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class ConvBlock(nn.Sequential):
    """Two 3x3 conv + BatchNorm + ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """Encoder with ``len(widths)`` levels (each after the first halves the resolution) and a
    decoder that climbs back to level ``out_level`` (0: input resolution, 2: a quarter of it)."""

    def __init__(
        self, in_channels: int, out_channels: int, widths: Sequence[int], out_level: int = 0
    ) -> None:
        super().__init__()
        if not 0 <= out_level < len(widths):
            raise ValueError(f"out_level must be in [0, {len(widths) - 1}], got {out_level}")
        self.out_level = out_level
        self.down = nn.ModuleList()
        cin = in_channels
        for width in widths:
            self.down.append(ConvBlock(cin, width))
            cin = width
        self.up = nn.ModuleList()
        for level in range(len(widths) - 2, out_level - 1, -1):
            self.up.append(ConvBlock(cin + widths[level], widths[level]))
            cin = widths[level]
        self.head = nn.Conv2d(cin, out_channels, 1)

    @property
    def stride(self) -> int:
        return 2**self.out_level

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
