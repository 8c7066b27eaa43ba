"""A folder of images decoded once into memory at the model's input size."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from keylink.data.images import (
    ImageInputError,
    ImageSkippedWarning,
    Resize,
    list_images,
    load_image,
)


@dataclass
class ImageSet:
    """Images resized for the model, with what is needed to map keypoints back to the originals."""

    images: torch.Tensor  # (N, S, S, 3) uint8
    paths: list[Path]
    sizes: list[tuple[int, int]]  # original (width, height)
    resize: Resize
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def batch(self, index: torch.Tensor | Sequence[int], device: torch.device | str = "cpu"):
        """(B, 3, S, S) float in [0, 1]."""
        x = self.images[index].to(device, non_blocking=True)
        return x.permute(0, 3, 1, 2).float().div_(255.0)


def iter_folder(
    paths: Sequence[Path], progress: bool = True, desc: str = "reading images"
) -> Iterator[tuple[Path, np.ndarray | None, str]]:
    """Yield (path, RGB image, "") for readable files and (path, None, reason) for the others,
    warning about each skipped file by name."""
    for path in tqdm(paths, desc=desc, unit="img", disable=not progress, leave=False):
        try:
            yield path, load_image(path), ""
        except ImageInputError as err:
            warnings.warn(f"skipping: {err}", ImageSkippedWarning, stacklevel=2)
            yield path, None, str(err)


def load_folder(
    folder: str | Path | Sequence[Path], resize: Resize, progress: bool = True
) -> ImageSet:
    """Decode every readable image of a folder (or a list of files) at the model size; unreadable
    ones are skipped with a warning naming them. Raises ImageInputError when none is readable."""
    paths = list_images(folder) if isinstance(folder, str | Path) else list(folder)
    images, kept, sizes, skipped = [], [], [], []
    for path, image, reason in iter_folder(paths, progress):
        if image is None:
            skipped.append((path, reason))
            continue
        images.append(resize.apply(image))
        kept.append(path)
        sizes.append((image.shape[1], image.shape[0]))
    if not images:
        example = f", e.g. {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
        raise ImageInputError(
            f"no readable image in {folder}: {len(skipped)} file(s) skipped{example}"
        )
    return ImageSet(torch.from_numpy(np.stack(images)), kept, sizes, resize, skipped)


def from_arrays(images: np.ndarray, resize: Resize | None = None) -> ImageSet:
    """An ImageSet from (N, H, W, 3) uint8 arrays already at the model size (synthetic data)."""
    n, h, w, _ = images.shape
    resize = resize or Resize(size=h)
    return ImageSet(
        torch.from_numpy(np.ascontiguousarray(images)),
        [Path(f"array:{i}") for i in range(n)],
        [(w, h)] * n,
        resize,
    )
