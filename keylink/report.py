"""Pictures for users: keypoints and skeletons drawn on images, grids, heatmap overlays.

Keypoints use the keylink convention: continuous (x, y) pixel coordinates in which the centre of
the top-left pixel is (0.5, 0.5).
"""

from __future__ import annotations

import colorsys
import io
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from keylink.io.files import write_bytes_atomic

_OUTLINE = (20, 20, 20)  # dark outline around discs and skeleton lines
_GRID_BACKGROUND = 255

# Inferno-like colour map: dark to bright, with luminance increasing monotonically.
_CMAP_STOPS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
_CMAP_COLOURS = np.array(
    [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float64
)


def keypoint_colors(k: int) -> np.ndarray:
    """(k, 3) uint8 palette: one distinct colour per keypoint index, evenly spaced hues.

    The same k always gives the same colours, so keypoint i looks the same in every picture.
    """
    if k < 0:
        raise ValueError(f"number of keypoints must be >= 0, got {k}")
    colours = np.zeros((k, 3), dtype=np.uint8)
    for i in range(k):
        # With many keypoints neighbouring hues get close; alternating brightness separates them.
        value = 1.0 if k <= 12 or i % 2 == 0 else 0.7
        r, g, b = colorsys.hsv_to_rgb(i / max(k, 1), 0.85, value)
        colours[i] = [round(r * 255), round(g * 255), round(b * 255)]
    return colours


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 from uint8 or [0, 1] float images that are grey, RGB or RGBA."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got {arr.shape}")
    arr = arr[:, :, :3]
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.floating):
        arr = np.nan_to_num(arr.astype(np.float64)) * 255.0
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


@lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (ImportError, OSError, TypeError):  # Pillow built without FreeType
        return ImageFont.load_default()


def _supersampling(width: int, height: int) -> int:
    # Shapes are drawn at this many times the output resolution and box-reduced: cheap
    # antialiasing, limited so that large pictures stay affordable.
    pixels = width * height
    return 3 if pixels <= 1_500_000 else 2 if pixels <= 6_000_000 else 1


def _edge_strengths(weights: Sequence[float] | None, n_edges: int) -> np.ndarray:
    if weights is None:
        return np.ones(n_edges)
    w = np.nan_to_num(np.asarray(weights, dtype=np.float64).reshape(-1), nan=0.0)
    if len(w) != n_edges:
        raise ValueError(f"{len(w)} edge weights for {n_edges} skeleton edges")
    w = np.clip(w, 0.0, None)
    # Weights already in [0, 1] are used as they are; other ranges are relative to the largest.
    if w.size and w.max() > 1.0:
        w = w / w.max()
    return w


def skeleton_strengths(weights: Sequence[float], floor: float = 0.35) -> list[float]:
    """Line strengths in [floor, 1] for a learned skeleton's edge weights: the strongest edge is
    1 and each tenfold weaker edge is a third of the way nearer ``floor``. Learned weights span
    orders of magnitude, so dividing by the largest would hide every edge but the first."""
    w = np.clip(np.asarray(weights, dtype=np.float64), 1e-12, None)
    if not w.size:
        return []
    steps = np.log10(w.max() / w)  # tenfold steps below the strongest
    return (1.0 - (1.0 - floor) * np.clip(steps / 3.0, 0.0, 1.0)).tolist()


def draw_keypoints(
    image: np.ndarray,
    keypoints: np.ndarray,
    *,
    skeleton: Sequence[tuple[int, int]] = (),
    edge_weights: Sequence[float] | None = None,
    confidences: np.ndarray | None = None,
    labels: Sequence[str] | None = None,
    colors: np.ndarray | None = None,
    scale: int = 1,
) -> np.ndarray:
    """Draw keypoints (and a skeleton) on an image; returns RGB uint8 (H*scale, W*scale, 3).

    keypoints: (K, 2) x, y in `image`'s pixel coordinates, or (K, 3) with a COCO visibility flag
    (v == 0 is not drawn); NaN keypoints are not drawn. Skeleton lines are coloured by their
    endpoints, and with `edge_weights` their width and opacity follow the weight (weights in
    [0, 1] are used directly, others are divided by the largest). Keypoints are filled discs with
    a dark outline in `colors` (default keypoint_colors(K)); with `confidences` the fill opacity
    falls with the confidence. `scale` enlarges the image first (nearest neighbour).
    """
    rgb = _as_rgb(image)
    pts = np.asarray(keypoints, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] not in (2, 3):
        raise ValueError(f"keypoints must have shape (K, 2) or (K, 3), got {pts.shape}")
    k = len(pts)
    visible = np.isfinite(pts[:, :2]).all(axis=1)
    if pts.shape[1] == 3:
        visible &= pts[:, 2] > 0
    palette = keypoint_colors(k) if colors is None else np.asarray(colors, dtype=np.uint8)
    if palette.shape != (k, 3):
        raise ValueError(f"colors must have shape ({k}, 3), got {palette.shape}")
    conf = np.ones(k) if confidences is None else np.asarray(confidences, dtype=np.float64)
    if conf.shape != (k,):
        raise ValueError(f"confidences must have shape ({k},), got {conf.shape}")
    conf = np.clip(np.nan_to_num(conf, nan=0.0), 0.0, 1.0)
    if labels is not None and len(labels) != k:
        raise ValueError(f"{len(labels)} labels for {k} keypoints")
    edges = [(int(a), int(b)) for a, b in skeleton]
    for a, b in edges:
        if not (0 <= a < k and 0 <= b < k):
            raise ValueError(f"skeleton edge ({a}, {b}) is out of range for {k} keypoints")
    strengths = _edge_strengths(edge_weights, len(edges))
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")

    height, width = rgb.shape[:2]
    out_w, out_h = width * scale, height * scale
    ss = _supersampling(out_w, out_h)
    factor = scale * ss
    canvas = Image.fromarray(rgb).resize(
        (width * factor, height * factor), Image.Resampling.NEAREST
    )
    draw = ImageDraw.Draw(canvas, "RGBA")  # "RGBA" blends translucent shapes into the RGB image

    # Sizes in output pixels, growing slowly with the picture so that large images stay readable.
    radius = max(3.5, 0.01 * max(out_w, out_h))
    line_width = max(1.5, 0.5 * radius)
    outline = max(1, round(0.25 * radius * ss))
    # PIL draws with pixel centres at integer coordinates; keylink has them at +0.5.
    centres = pts[:, :2] * factor - 0.5

    for (a, b), strength in zip(edges, strengths, strict=True):
        if not (visible[a] and visible[b]) or strength <= 0:
            continue
        alpha = round(255 * strength)
        ends = [tuple(centres[a]), tuple(centres[b])]
        colour = tuple(int(c) for c in (palette[a].astype(int) + palette[b]) // 2)
        inner = max(1, round(line_width * ss * (0.3 + 0.7 * strength)))
        draw.line(ends, fill=(*_OUTLINE, alpha), width=inner + 2 * outline)
        draw.line(ends, fill=(*colour, alpha), width=inner)

    r = radius * ss
    for i in np.flatnonzero(visible):
        cx, cy = centres[i]
        fill = (*(int(c) for c in palette[i]), round(255 * (0.3 + 0.7 * conf[i])))
        draw.ellipse(
            [cx - r, cy - r, cx + r, cy + r], fill=fill, outline=(*_OUTLINE, 255), width=outline
        )

    if labels is not None:
        # Text in the keypoint's colour on a translucent dark box: readable on any background
        # (a stroke around such small glyphs would swallow them).
        font = _font(max(11, round(3 * radius)) * ss)
        gap, margin = 2 * ss, ss
        for i in np.flatnonzero(visible):
            cx, cy = centres[i]
            text = str(labels[i])
            left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
            x = cx + r + gap
            if x + right + margin > canvas.width:  # no room on the right: put it on the left
                x = cx - r - gap - right
            # Vertically centred on the disc, kept inside the picture.
            y = min(max(cy - (top + bottom) / 2, margin - top), canvas.height - bottom - margin)
            box = [x + left - margin, y + top - margin, x + right + margin, y + bottom + margin]
            draw.rectangle(box, fill=(*_OUTLINE, 170))
            draw.text((x, y), text, fill=tuple(int(c) for c in palette[i]), font=font)

    if ss > 1:
        canvas = canvas.reduce(ss)
    return np.asarray(canvas, dtype=np.uint8).copy()


def image_grid(
    images: Sequence[np.ndarray],
    columns: int,
    pad: int = 2,
    titles: Sequence[str] | None = None,
) -> np.ndarray:
    """Tile images into one RGB uint8 picture, with `pad` white pixels around and between tiles.

    Every tile has the first image's size (others are resized bilinearly). With n images the
    grid has c = min(columns, n) columns and r = ceil(n / c) rows: its size is
    (r * h + (r + 1) * pad, c * w + (c + 1) * pad). Titles are written on the tiles' top-left.
    """
    if not images:
        raise ValueError("image_grid needs at least one image")
    if columns < 1 or pad < 0:
        raise ValueError(f"columns must be >= 1 and pad >= 0, got {columns} and {pad}")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(titles)} titles for {len(images)} images")
    tiles = [_as_rgb(im) for im in images]
    h, w = tiles[0].shape[:2]
    cols = min(columns, len(tiles))
    rows = math.ceil(len(tiles) / cols)
    grid = np.full(
        (rows * h + (rows + 1) * pad, cols * w + (cols + 1) * pad, 3), _GRID_BACKGROUND, np.uint8
    )
    font = _font(max(10, min(h, w) // 12)) if titles is not None else None
    for index, tile in enumerate(tiles):
        if tile.shape[:2] != (h, w):
            tile = np.asarray(Image.fromarray(tile).resize((w, h), Image.Resampling.BILINEAR))
        if titles is not None and titles[index]:
            pil = Image.fromarray(tile)
            ImageDraw.Draw(pil).text(
                (3, 2), str(titles[index]), fill=(255, 255, 255), font=font,
                stroke_width=1, stroke_fill=(0, 0, 0),
            )  # fmt: skip
            tile = np.asarray(pil)
        row, col = divmod(index, cols)
        top, left = pad + row * (h + pad), pad + col * (w + pad)
        grid[top : top + h, left : left + w] = tile
    return grid


def _colour_map(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (any shape) to float RGB in [0, 255] (shape + (3,))."""
    return np.stack(
        [np.interp(values, _CMAP_STOPS, _CMAP_COLOURS[:, c]) for c in range(3)], axis=-1
    )


def heatmap_overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a colour-mapped 2D map over an image; returns RGB uint8 of the image's size.

    The map (any size) is normalised to its own min/max and resized to the image bilinearly
    (pixel centres aligned); high values are bright.
    """
    rgb = _as_rgb(image)
    hm = np.asarray(heatmap, dtype=np.float64)
    if hm.ndim != 2 or hm.size == 0:
        raise ValueError(f"heatmap must be a non-empty 2D array, got shape {hm.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    finite = np.isfinite(hm)
    lo = hm[finite].min() if finite.any() else 0.0
    hi = hm[finite].max() if finite.any() else 0.0
    norm = np.where(finite, hm - lo, 0.0) / (hi - lo) if hi > lo else np.zeros_like(hm)
    height, width = rgb.shape[:2]
    if norm.shape != (height, width):
        resized = Image.fromarray(norm.astype(np.float32)).resize(
            (width, height), Image.Resampling.BILINEAR
        )
        norm = np.clip(np.asarray(resized, dtype=np.float64), 0.0, 1.0)
    blended = (1.0 - alpha) * rgb + alpha * _colour_map(norm)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def save_png(path: str | Path, image: np.ndarray) -> None:
    """Save an image as PNG atomically (temporary file + rename), creating parent folders."""
    path = Path(path)
    arr = np.asarray(image)
    if not (arr.dtype == np.uint8 and (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 4))):
        arr = _as_rgb(arr)  # RGB, or grey / float input made RGB
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buffer, format="PNG")
    write_bytes_atomic(path, buffer.getvalue())
