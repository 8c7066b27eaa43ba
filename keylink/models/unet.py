"""A plain U-Net, used both as the keypoint detector and as the image decoder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

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
    decoder that climbs back to level ``out_level`` (0: input resolution, 2: a quarter of it).

    ``merge`` is how the climb meets each skip: ``"concat"`` stacks the upsampled features on
    the skip's (the classic U-Net); ``"add"`` first maps them to the skip's width with a 1x1
    conv and adds them, so each climbing block convolves half as many channels or fewer (about
    a third less work for the cpu models, BENCHMARKS.md)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        widths: Sequence[int],
        out_level: int = 0,
        merge: Literal["concat", "add"] = "concat",
    ) -> None:
        super().__init__()
        if not 0 <= out_level < len(widths):
            raise ValueError(f"out_level must be in [0, {len(widths) - 1}], got {out_level}")
        if merge not in ("concat", "add"):
            raise ValueError(f"merge must be 'concat' or 'add', got {merge!r}")
        self.out_level = out_level
        self.down = nn.ModuleList()
        cin = in_channels
        for width in widths:
            self.down.append(ConvBlock(cin, width))
            cin = width
        self.up = nn.ModuleList()
        self.reduce = nn.ModuleList()  # the 1x1 convs of merge="add"
        for level in range(len(widths) - 2, out_level - 1, -1):
            if merge == "add":
                self.reduce.append(nn.Conv2d(cin, widths[level], 1, bias=False))
                self.up.append(ConvBlock(widths[level], widths[level]))
            else:
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
        for i, block in enumerate(self.up):
            skip = skips.pop()
            if self.reduce:
                x = self.reduce[i](x)  # before upsampling: 4x fewer pixels to map
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(x + skip if self.reduce else torch.cat([x, skip], dim=1))
        return self.head(x)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
