"""Annotating images with a trained run: keypoints in original pixel coordinates, COCO output,
overlay pictures."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from keylink.config import RunConfig
from keylink.data.dataset import iter_folder
from keylink.data.images import Resize, list_images
from keylink.engine import autocast, load_run, select_device
from keylink.evaluate import to_pixels, to_relative
from keylink.geometry import normalised_to_pixels
from keylink.io.coco import Category, coco_document, write_json_atomic
from keylink.methods.autolink import AutoLink
from keylink.naming import Naming
from keylink.report import draw_keypoints, save_png, skeleton_strengths


@dataclass
class Annotations:
    """Keypoints of a set of images, in each original image's pixel coordinates."""

    paths: list[Path]
    sizes: list[tuple[int, int]]  # (width, height)
    keypoints: np.ndarray  # (N, K, 2)
    confidence: np.ndarray  # (N, K)
    category: Category
    edge_weights: list[float] = field(default_factory=list)  # one per skeleton edge
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    # Named landmarks, when the run has a naming (keylink name): (N, L, 2), (N, L)
    landmarks: np.ndarray | None = None
    landmark_confidence: np.ndarray | None = None
    landmark_category: Category | None = None


def keypoint_names(k: int) -> list[str]:
    return [f"kp{i + 1:02d}" for i in range(k)]


@torch.no_grad()
def detect_batch(
    model: AutoLink, images: np.ndarray, device: torch.device, precision: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """(B, S, S, 3) uint8 model inputs -> keypoints (B, K, 2) in model pixels, confidence (B, K)."""
    x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float().div_(255)
    with autocast(device, precision):
        det = model.detect(x.contiguous(memory_format=torch.channels_last))
    size = images.shape[1]
    kp = normalised_to_pixels(det.keypoints.float(), size, size)
    return kp.cpu().numpy(), det.confidence.float().cpu().numpy()


class Pending(NamedTuple):
    """A decoded image waiting in a batch."""

    path: Path
    original: np.ndarray | None  # the decoded image, when kept
    model_input: np.ndarray  # (S, S, 3) uint8
    size: tuple[int, int]  # (width, height) of the original


def read_batches(
    images: str | Path | Sequence[Path],
    resize: Resize,
    batch_size: int,
    skipped: list[tuple[Path, str]],
    progress: bool,
    keep_original: bool = False,
) -> Iterator[list[Pending]]:
    """The readable images of a folder (or a list of paths) made into model inputs, in batches of
    ``batch_size``; unreadable files are added to ``skipped``. ValueError when none is readable."""
    paths = list_images(images) if isinstance(images, str | Path) else list(images)
    pending: list[Pending] = []
    readable = 0
    for path, original, reason in iter_folder(paths, progress=progress, desc="annotating"):
        if original is None:
            skipped.append((path, reason))
            continue
        h, w = original.shape[:2]
        kept = original if keep_original else None
        pending.append(Pending(path, kept, resize.apply(original), (w, h)))
        readable += 1
        if len(pending) == batch_size:
            yield pending
            pending = []
    if pending:
        yield pending
    if not readable:
        raise ValueError(f"no readable image among {len(paths)} file(s) in {images}")


def relative_path(path: Path, root: Path | None) -> Path:
    """``path`` below ``root`` (the folder annotated), else its file name."""
    if root is not None:
        try:
            return path.relative_to(root)
        except ValueError:
            pass
    return Path(path.name)


def overlay_path(out_dir: Path, path: Path, root: Path | None) -> Path:
    """Where the overlay picture of the image at ``path`` goes."""
    return out_dir / "overlays" / f"{relative_path(path, root).with_suffix('')}.png"


def coco_images(
    paths: list[Path], sizes: list[tuple[int, int]], root: Path | None
) -> list[tuple[str, int, int]]:
    """(file name, width, height) of each image, as COCO ``images`` name them."""
    return [(str(relative_path(p, root)), w, h) for p, (w, h) in zip(paths, sizes, strict=True)]


def annotate(
    run_dir: str | Path,
    images: str | Path | Sequence[Path],
    out_dir: str | Path | None = None,
    *,
    device: str = "auto",
    **options: Any,
) -> Annotations:
    """Detect keypoints on every readable image; with ``out_dir`` write ``annotations.json``
    (COCO keypoints) and ``overlays/*.png``. Unreadable files are skipped with a warning.
    ``options`` are :func:`annotate_with`'s (``batch_size``, ``overlays``, ``progress``,
    ``discovered``, ``skeleton_edges``).

    When the run has been named (``keylink name``), ``annotations.json`` holds the named landmarks
    and ``discovered=True`` also writes the discovered keypoints to ``annotations_discovered.json``.
    """
    dev = select_device(device)
    config, model = load_run(run_dir, dev)
    return annotate_with(model, config, images, out_dir, naming=Naming.load(run_dir), **options)


def annotate_with(
    model: AutoLink,
    config: RunConfig,
    images: str | Path | Sequence[Path],
    out_dir: str | Path | None = None,
    *,
    batch_size: int = 64,
    overlays: bool = True,
    progress: bool = True,
    naming: Naming | None = None,
    discovered: bool = False,
    skeleton_edges: int | None = None,
) -> Annotations:
    """:func:`annotate` with a model already in memory. ``skeleton_edges``: how many of the
    strongest edges the skeleton keeps (default: the run's ``skeleton_edges``, else K - 1)."""
    dev = next(model.parameters()).device
    resize = Resize(config.model.image_size, config.model.resize)
    root = Path(images) if isinstance(images, str | Path) else None
    if skeleton_edges is not None:  # checked as the run's own setting would be
        dataclasses.replace(config.model, skeleton_edges=skeleton_edges).validate()
    skeleton = model.skeleton(max_edges=skeleton_edges)
    category = Category(
        name="object",
        keypoint_names=keypoint_names(config.model.keypoints),
        skeleton=[(i, j) for i, j, _ in skeleton],
    )
    weights = [w for _, _, w in skeleton]
    strengths = skeleton_strengths(weights)
    out = Path(out_dir) if out_dir is not None else None

    named = Category("object", list(naming.names), list(naming.skeleton)) if naming else None
    kept, sizes, kps, confs, skipped, marks, mark_confs = [], [], [], [], [], [], []

    def annotate_batch(pending: list[Pending]) -> None:
        batch = np.stack([p.model_input for p in pending])
        kp_model, conf = detect_batch(model, batch, dev, config.train.precision)
        for (path, original, _, (w, h)), kp, c in zip(pending, kp_model, conf, strict=True):
            kp_orig = resize.to_original(kp, w, h)
            kept.append(path)
            sizes.append((w, h))
            kps.append(kp_orig)
            confs.append(c)
            if naming is not None:
                rel = naming.predict(to_relative(kp_orig[None], [(w, h)]))
                marks.append(to_pixels(rel, [(w, h)])[0])
                mark_confs.append(naming.confidence(c[None])[0])
            if out is not None and overlays:
                scale = max(1, 256 // max(w, h))
                if naming is not None:
                    picture = draw_keypoints(
                        original,
                        marks[-1],
                        skeleton=naming.skeleton,
                        confidences=mark_confs[-1],
                        labels=naming.names,
                        scale=scale,
                    )
                else:
                    picture = draw_keypoints(
                        original,
                        kp_orig,
                        skeleton=category.skeleton,
                        edge_weights=strengths,
                        confidences=c,
                        scale=scale,
                    )
                save_png(overlay_path(out, path, root), picture)

    for pending in read_batches(images, resize, batch_size, skipped, progress, keep_original=True):
        annotate_batch(pending)
    result = Annotations(
        paths=kept,
        sizes=sizes,
        keypoints=np.stack(kps),
        confidence=np.stack(confs),
        category=category,
        edge_weights=weights,
        skipped=skipped,
    )
    if naming is not None:
        result.landmarks = np.stack(marks)
        result.landmark_confidence = np.stack(mark_confs)
        result.landmark_category = named
    if out is not None:
        write_coco(result, out, root, discovered=discovered)
    return result


def write_coco(
    result: Annotations, out_dir: Path, root: Path | None = None, discovered: bool = False
) -> None:
    """``annotations.json``: the named landmarks when there are some, else the discovered
    keypoints (which ``discovered`` also writes to ``annotations_discovered.json``)."""
    images = coco_images(result.paths, result.sizes, root)
    extra = {"skipped_files": [str(p) for p, _ in result.skipped]}
    found = coco_document(
        images,
        result.keypoints,
        result.confidence,
        result.category,
        extra={**extra, "skeleton_edge_weights": [round(w, 4) for w in result.edge_weights]},
    )
    if result.landmarks is None:
        write_json_atomic(out_dir / "annotations.json", found)
        return
    named = coco_document(
        images, result.landmarks, result.landmark_confidence, result.landmark_category, extra=extra
    )
    write_json_atomic(out_dir / "annotations.json", named)
    if discovered:
        write_json_atomic(out_dir / "annotations_discovered.json", found)
