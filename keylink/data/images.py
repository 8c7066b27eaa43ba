"""Finding, decoding and resizing user images.

Coordinates follow the keylink convention: pixel (0, 0) covers [0, 1) x [0, 1), so the centre of
the top-left pixel is (0.5, 0.5), and points are (x, y) float arrays of shape (..., 2).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps
from tqdm.auto import tqdm

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
)

# Background that transparent pixels are composited over, and letterbox padding colour.
GREY = 128

# Below this many files a progress bar is more noise than help.
_PROGRESS_MIN_FILES = 32


class ImageInputError(ValueError):
    """A user-facing problem with the input images (missing folder, unreadable file...)."""


class ImageSkippedWarning(UserWarning):
    """An image file was skipped because it could not be decoded."""


def _suffix_list() -> str:
    return ", ".join(sorted(IMAGE_SUFFIXES))


def _is_hidden(path: Path, root: Path) -> bool:
    # Hidden files and folders (".git", macOS "._photo.jpg" resource forks, ".ipynb_checkpoints")
    # are never user images.
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def list_images(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Sorted paths of the files in `folder` whose suffix is an image suffix (case-insensitive).

    Hidden files and files inside hidden folders (name starting with ".") are ignored.
    Raises ImageInputError if the folder does not exist, is not a directory or holds no image file.
    """
    root = Path(folder).expanduser()
    if not root.exists():
        raise ImageInputError(f"image folder does not exist: {root}")
    if not root.is_dir():
        raise ImageInputError(f"not a folder: {root} (expected a folder of images)")
    candidates = root.rglob("*") if recursive else root.iterdir()
    found = []
    others = 0
    for path in candidates:
        if not path.is_file() or _is_hidden(path, root):
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES:
            found.append(path)
        else:
            others += 1
    if not found:
        where = "in" if recursive else "directly in"
        detail = f" ({others} other files found)" if others else " (the folder is empty)"
        hint = "" if recursive else "; subfolders were not searched"
        raise ImageInputError(
            f"no image files {where} {root}{detail}{hint}; accepted suffixes: {_suffix_list()}"
        )
    return sorted(found)


class _DecodeError(Exception):
    """Internal: why one file could not be decoded (without the file name)."""


def _high_bit_depth_to_uint8(im: Image.Image) -> np.ndarray:
    """Grey 16-bit / 32-bit integer / float images to (H, W) uint8 without clipping to 255."""
    values = np.asarray(im).astype(np.float64)
    if im.mode.startswith("I;16"):
        values = values / 257.0
    elif im.mode == "I":
        # PNG and TIFF 16-bit data may arrive as mode "I"; treat anything above 8 bits as 16-bit.
        if values.size and values.max() > 255:
            values = values / 257.0
    else:  # "F": floats in [0, 1] are the common case; larger ranges are taken as 0..255.
        values = np.nan_to_num(values, nan=0.0, posinf=255.0, neginf=0.0)
        if values.size and values.max() <= 1.0:
            values = values * 255.0
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _to_rgb(im: Image.Image) -> np.ndarray:
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        grey = _high_bit_depth_to_uint8(im)
        return np.repeat(grey[:, :, None], 3, axis=2)
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if not has_alpha:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)
    if im.mode == "La":  # Pillow has no direct La -> RGBA conversion
        im = im.convert("LA")
    rgba = np.asarray(im.convert("RGBA"), dtype=np.float32)
    alpha = rgba[:, :, 3:4] / 255.0
    rgb = rgba[:, :, :3] * alpha + GREY * (1.0 - alpha)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _decode(path: Path) -> np.ndarray:
    """Fully decode one file to RGB uint8, raising _DecodeError with a reason on failure."""
    try:
        if path.is_dir():
            raise _DecodeError("is a folder, not a file")
        if path.stat().st_size == 0:
            raise _DecodeError("the file is empty")
        with Image.open(path) as im:
            im.load()  # decodes everything: truncated or corrupt data fails here
            im = ImageOps.exif_transpose(im)
            rgb = _to_rgb(im)
    except _DecodeError:
        raise
    except FileNotFoundError as exc:
        raise _DecodeError("file not found") from exc
    except Image.UnidentifiedImageError as exc:
        raise _DecodeError("not an image or an unsupported image format") from exc
    except Image.DecompressionBombError as exc:
        raise _DecodeError(f"image is too large to decode safely ({exc})") from exc
    except MemoryError as exc:
        raise _DecodeError("not enough memory to decode the image") from exc
    except Exception as exc:  # decoders raise many exception types on corrupt data
        reason = f"corrupt or truncated image data ({type(exc).__name__}: {exc})"
        raise _DecodeError(reason) from exc
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise _DecodeError(f"unexpected decoded shape {rgb.shape}")
    return np.ascontiguousarray(rgb)


def load_image(path: str | Path) -> np.ndarray:
    """Decode an image file to RGB uint8 of shape (H, W, 3).

    EXIF orientation is applied; grey, palette, 16-bit and CMYK images are converted to RGB and
    transparent pixels are composited over mid-grey (128). Raises ImageInputError naming the file
    when it cannot be fully decoded.
    """
    path = Path(path)
    try:
        return _decode(path)
    except _DecodeError as exc:
        raise ImageInputError(f"cannot read image {path}: {exc}") from exc.__cause__


@dataclass
class ScanResult:
    readable: list[Path]
    sizes: list[tuple[int, int]]  # (width, height) after EXIF orientation
    skipped: list[tuple[Path, str]]  # path and reason


def _size_or_reason(path: Path) -> tuple[int, int] | str:
    try:
        rgb = _decode(path)
    except _DecodeError as exc:
        return str(exc)
    return int(rgb.shape[1]), int(rgb.shape[0])


def scan_images(paths: Sequence[Path], progress: bool = True) -> ScanResult:
    """Check that every file fully decodes; skip (with an ImageSkippedWarning) those that do not.

    Raises ImageInputError when no file is readable.
    """
    paths = [Path(p) for p in paths]
    result = ScanResult(readable=[], sizes=[], skipped=[])
    if not paths:
        raise ImageInputError("no readable image: no image files were given")
    show = progress and len(paths) >= _PROGRESS_MIN_FILES
    workers = min(8, os.cpu_count() or 1, len(paths))
    # Decoding releases the GIL, so threads help; map() keeps the input order.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = tqdm(
            pool.map(_size_or_reason, paths),
            total=len(paths),
            desc="checking images",
            unit="img",
            disable=not show,
        )
        for path, outcome in zip(paths, outcomes, strict=True):
            if isinstance(outcome, str):
                result.skipped.append((path, outcome))
                warnings.warn(f"skipping {path}: {outcome}", ImageSkippedWarning, stacklevel=2)
            else:
                result.readable.append(path)
                result.sizes.append(outcome)
    if not result.readable:
        try:
            where = Path(os.path.commonpath([str(p.parent) for p in paths]))
        except ValueError:  # mixed drives / relative and absolute paths
            where = Path(".")
        first, reason = result.skipped[0]
        raise ImageInputError(
            f"no readable image in {where}: {len(result.skipped)} files skipped, "
            f"e.g. {first}: {reason}"
        )
    return result


@dataclass(frozen=True)
class Resize:
    """Exact map between an original image (width, height) and the square model input.

    mode "squash" scales each axis independently to `size`; mode "letterbox" keeps the aspect
    ratio, scales so the long side fits and pads centred with grey 128. In both modes
    model = original * s + o in continuous coordinates (pixel-centre convention), which is how
    PIL's resize maps pixel centres.
    """

    size: int
    mode: Literal["squash", "letterbox"] = "letterbox"

    def __post_init__(self) -> None:
        if int(self.size) != self.size or self.size < 1:
            raise ValueError(f"Resize size must be a positive integer, got {self.size!r}")
        if self.mode not in ("squash", "letterbox"):
            raise ValueError(f"Resize mode must be 'squash' or 'letterbox', got {self.mode!r}")

    def _content(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(new_w, new_h, pad_left, pad_top) of the resized image inside the model input."""
        if width < 1 or height < 1:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        if self.mode == "squash":
            return self.size, self.size, 0, 0
        long_side = max(width, height)
        new_w = max(1, round(width * self.size / long_side))
        new_h = max(1, round(height * self.size / long_side))
        return new_w, new_h, (self.size - new_w) // 2, (self.size - new_h) // 2

    def params(self, width: int, height: int) -> tuple[float, float, float, float]:
        """(sx, sy, ox, oy) with model = original * s + o."""
        new_w, new_h, left, top = self._content(width, height)
        return new_w / width, new_h / height, float(left), float(top)

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Resize an (H, W, 3) uint8 image to the (size, size, 3) uint8 model input."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
        height, width = image.shape[:2]
        new_w, new_h, left, top = self._content(width, height)
        pil = Image.fromarray(np.ascontiguousarray(image))
        if (new_w, new_h) != (width, height):
            # Plain BILINEAR (no reducing_gap): its support widens when reducing, so it
            # antialiases, and pixel centres map exactly as params() says.
            pil = pil.resize((new_w, new_h), Image.Resampling.BILINEAR)
        if self.mode == "squash":
            return np.asarray(pil, dtype=np.uint8).copy()
        canvas = np.full((self.size, self.size, 3), GREY, dtype=np.uint8)
        canvas[top : top + new_h, left : left + new_w] = np.asarray(pil, dtype=np.uint8)
        return canvas

    def to_model(self, points: np.ndarray, width: int, height: int) -> np.ndarray:
        """Original-image (x, y) points (..., 2) to model-input coordinates."""
        pts = _as_points(points)
        sx, sy, ox, oy = self.params(width, height)
        return pts * np.array([sx, sy]) + np.array([ox, oy])

    def to_original(self, points: np.ndarray, width: int, height: int) -> np.ndarray:
        """Model-input (x, y) points (..., 2) back to original-image coordinates."""
        pts = _as_points(points)
        sx, sy, ox, oy = self.params(width, height)
        return (pts - np.array([ox, oy])) / np.array([sx, sy])


def _as_points(points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim == 0 or pts.shape[-1] != 2:
        raise ValueError(f"points must have shape (..., 2), got {pts.shape}")
    return pts
