"""Annotating images with a weak run: probe the classifier, combine the maps, take the most
confident non-maximum-suppression peaks, refine them with the Förstner operator, write COCO
keypoints with confidences and a picture of the maps per image."""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from keylink.config import RunConfig
from keylink.data.images import Resize
from keylink.engine import autocast, select_device
from keylink.inference import Pending, coco_images, overlay_path, read_batches
from keylink.io.coco import Category, coco_document, write_json_atomic
from keylink.methods.weak.probes import (
    combine,
    guided_backprop,
    guided_map,
    occlusion_sensitivity,
)
from keylink.methods.weak.train import load_weak_run
from keylink.models.classifier import fold_batchnorm
from keylink.peaks import nms_peaks, top_share
from keylink.refine import forstner
from keylink.report import draw_keypoints, heatmap_overlay, image_grid, save_png

_LUMA = np.array([0.299, 0.587, 0.114])


@dataclass
class Probe:
    """What the probes found on a batch of model inputs; maps are (B, S, S) numpy float32."""

    occlusion: np.ndarray
    guided: np.ndarray
    combined: np.ndarray
    likelihood: np.ndarray
    predicted: np.ndarray  # (B,) class indices
    probabilities: np.ndarray  # (B, C)


@dataclass
class WeakAnnotations:
    """Keypoints found on each image, in its original pixel coordinates, most confident first."""

    paths: list[Path]
    sizes: list[tuple[int, int]]  # (width, height)
    keypoints: list[np.ndarray]  # per image (K_i, 2)
    confidence: list[np.ndarray]  # per image (K_i,), the keypoint likelihood at the peak
    refined: list[np.ndarray]  # per image (K_i,) True where Förstner moved the point
    predicted: np.ndarray  # (N,) class indices
    probabilities: np.ndarray  # (N, C)
    classes: list[str]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    seconds_per_image: float = 0.0  # probing and peak finding, decoding and pictures left out

    def padded(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, K, 2) keypoints (NaN-padded) and (N, K) confidences (0-padded), K the most found
        on one image (at least 1)."""
        k = max([len(p) for p in self.keypoints] + [1])
        points = np.full((len(self.paths), k, 2), np.nan)
        conf = np.zeros((len(self.paths), k))
        for i, (p, c) in enumerate(zip(self.keypoints, self.confidence, strict=True)):
            points[i, : len(p)] = p
            conf[i, : len(c)] = c
        return points, conf


def content_mask(resize: Resize, width: int, height: int) -> np.ndarray:
    """(S, S) True where the model input shows the image (not letterbox padding)."""
    sx, sy, ox, oy = resize.params(width, height)
    centres = np.arange(resize.size) + 0.5
    xs = (centres >= ox) & (centres < ox + width * sx)
    ys = (centres >= oy) & (centres < oy + height * sy)
    return ys[:, None] & xs[None, :]


class WeakAnnotator:
    """A trained classifier ready to be probed (BatchNorm folded into the convolutions)."""

    def __init__(self, model: torch.nn.Module, config: RunConfig) -> None:
        self.config = config
        self.cfg = config.weak
        self.device = next(model.parameters()).device
        self.model = fold_batchnorm(copy.deepcopy(model)).eval()
        self.model.to(memory_format=torch.channels_last)
        self.resize = Resize(self.cfg.image_size, self.cfg.resize)
        self.generator = torch.Generator().manual_seed(self.cfg.seed)

    def probe(self, images: np.ndarray, masks: np.ndarray | None = None) -> Probe:
        """Maps of (B, S, S, 3) uint8 model inputs; ``masks`` (B, S, S) marks the image content."""
        cfg = self.cfg
        x = torch.from_numpy(images).to(self.device).permute(0, 3, 1, 2).float().div_(255)
        x = x.contiguous(memory_format=torch.channels_last)
        occ, target = occlusion_sensitivity(
            self.model,
            x,
            occluder=cfg.occluder,
            stride=cfg.stride,
            fill=cfg.fill,
            batch_size=cfg.probe_batch,
            generator=self.generator,
            autocast=autocast(self.device, cfg.probe_precision),
        )
        grad, _ = guided_backprop(self.model, x, target)
        fine = guided_map(grad)
        mask = None if masks is None else torch.from_numpy(masks).to(self.device)
        combined, likelihood = combine(
            occ,
            fine,
            (cfg.occlusion_weight, cfg.guided_weight),
            guided_blur=cfg.guided_blur,
            gain=cfg.sigmoid_gain,
            offset=cfg.sigmoid_offset,
            mask=mask,
        )
        with torch.no_grad():
            probs = torch.softmax(self.model(x).float(), dim=1)

        def arr(t: torch.Tensor) -> np.ndarray:
            return t.detach().float().cpu().numpy()

        return Probe(arr(occ), arr(fine), arr(combined), arr(likelihood), arr(target), arr(probs))

    def keypoints(
        self, likelihood: np.ndarray, image: np.ndarray, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Model-pixel keypoints (K, 2), confidences (K,) and refined flags (K,) of one image:
        NMS peaks of the likelihood, the most confident share, Förstner on the grey image."""
        cfg = self.cfg
        score = likelihood if mask is None else np.where(mask, likelihood, 0.0)
        points, scores = nms_peaks(score, cfg.nms_radius, threshold=0.0)
        points, scores = top_share(points, scores, cfg.keep)
        grey = image.astype(np.float64) @ _LUMA
        refined, moved = forstner(
            grey, points, window=cfg.forstner_window, min_ratio=cfg.forstner_min_ratio
        )
        return refined, scores, moved


def annotate_weak(
    run_dir: str | Path,
    images: str | Path | Sequence[Path],
    out_dir: str | Path | None = None,
    *,
    batch_size: int = 16,
    overlays: bool = True,
    device: str = "auto",
    progress: bool = True,
) -> WeakAnnotations:
    """Keypoints of every readable image with a weak run; with ``out_dir`` write
    ``annotations.json`` (COCO keypoints, most confident first, with each image's predicted
    class) and ``overlays/*.png`` (occlusion, guided-backprop and combined maps, keypoints)."""
    config, model = load_weak_run(run_dir, select_device(device))
    return annotate_with(
        WeakAnnotator(model, config),
        images,
        out_dir,
        batch_size=batch_size,
        overlays=overlays,
        progress=progress,
    )


def annotate_with(
    annotator: WeakAnnotator,
    images: str | Path | Sequence[Path],
    out_dir: str | Path | None = None,
    *,
    batch_size: int = 16,
    overlays: bool = True,
    progress: bool = True,
) -> WeakAnnotations:
    """:func:`annotate_weak` with a classifier already in memory."""
    resize = annotator.resize
    classes = annotator.cfg.classes
    root = Path(images) if isinstance(images, str | Path) else None
    out = Path(out_dir) if out_dir is not None else None
    kept: list[Path] = []
    sizes: list[tuple[int, int]] = []
    kps, confs, moved, predicted, probs = [], [], [], [], []
    skipped: list[tuple[Path, str]] = []
    busy = 0.0

    def annotate_batch(pending: list[Pending]) -> None:
        nonlocal busy
        t0 = time.perf_counter()
        batch = np.stack([p.model_input for p in pending])
        masks = np.stack([content_mask(resize, w, h) for *_, (w, h) in pending])
        probe = annotator.probe(batch, masks)
        found = [
            annotator.keypoints(probe.likelihood[i], batch[i], masks[i])
            for i in range(len(pending))
        ]
        busy += time.perf_counter() - t0
        for i, ((path, _, model_input, (w, h)), (pts, conf, ok)) in enumerate(
            zip(pending, found, strict=True)
        ):
            kept.append(path)
            sizes.append((w, h))
            kps.append(resize.to_original(pts, w, h).reshape(-1, 2))
            confs.append(conf)
            moved.append(ok)
            predicted.append(int(probe.predicted[i]))
            probs.append(probe.probabilities[i])
            if out is not None and overlays:
                name = classes[predicted[-1]]
                picture = maps_picture(
                    model_input,
                    probe.occlusion[i],
                    probe.guided[i],
                    probe.combined[i],
                    pts,
                    conf,
                    f"{name} {probe.probabilities[i, predicted[-1]]:.0%}",
                )
                save_png(overlay_path(out, path, root), picture)

    for pending in read_batches(images, resize, batch_size, skipped, progress):
        annotate_batch(pending)
    result = WeakAnnotations(
        paths=kept,
        sizes=sizes,
        keypoints=kps,
        confidence=confs,
        refined=moved,
        predicted=np.array(predicted, dtype=np.int64),
        probabilities=np.stack(probs),
        classes=list(classes),
        skipped=skipped,
        seconds_per_image=busy / len(kept),
    )
    if out is not None:
        write_coco(result, out, root)
    return result


def maps_picture(
    image: np.ndarray,
    occlusion: np.ndarray,
    guided: np.ndarray,
    combined: np.ndarray,
    points: np.ndarray,
    confidence: np.ndarray,
    title: str,
) -> np.ndarray:
    """One row: occlusion map, guided-backprop map, combined map, keypoints (model input)."""
    scale = max(1, 256 // image.shape[0])

    def big(a: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(a, scale, 0), scale, 1)

    colours = np.tile(np.array([[255, 220, 0]], dtype=np.uint8), (len(points), 1))
    tiles = [
        big(heatmap_overlay(image, occlusion, alpha=0.6)),
        big(heatmap_overlay(np.zeros_like(image), guided, alpha=1.0)),
        big(heatmap_overlay(image, combined, alpha=0.6)),
        draw_keypoints(image, points, confidences=confidence, colors=colours, scale=scale),
    ]
    titles = ["occlusion", "guided backprop", "combined", f"{title}, {len(points)} keypoints"]
    return image_grid(tiles, columns=4, titles=titles)


def write_coco(result: WeakAnnotations, out_dir: Path, root: Path | None = None) -> None:
    """``annotations.json``: one annotation per image whose keypoints kp01, kp02, ... are its
    keypoints by decreasing confidence (keypoints have no identity across images; images with
    fewer than the most found have the rest unlabelled, [0, 0, 0]), the image's predicted class
    and its probability."""
    points, conf = result.padded()
    k = points.shape[1]
    category = Category("object", [f"kp{i + 1:02d}" for i in range(k)])
    doc = coco_document(
        coco_images(result.paths, result.sizes, root),
        points,
        conf,
        category,
        extra={
            "method": "weak: keypoints from class labels (occlusion + guided backpropagation)",
            "classes": result.classes,
            "skipped_files": [str(p) for p, _ in result.skipped],
        },
    )
    for ann, c, label, p in zip(
        doc["annotations"], result.confidence, result.predicted, result.probabilities, strict=True
    ):
        ann["score"] = round(float(np.mean(c)), 4) if len(c) else 0.0
        ann["predicted_class"] = result.classes[int(label)]
        ann["class_probability"] = round(float(p[int(label)]), 4)
    write_json_atomic(out_dir / "annotations.json", doc)
