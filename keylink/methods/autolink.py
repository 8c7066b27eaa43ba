"""Self-supervised keypoints and skeleton, after AutoLink (He, Wandt, Rhodin, NeurIPS 2022).

A detector turns the whole image into K keypoints; a graph with one learnable weight per keypoint
pair draws them as an edge map; a decoder rebuilds the image from a heavily masked copy plus that
edge map. The keypoints that make reconstruction easiest are the discovered ones, and the edges
whose weights survive are the skeleton.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from keylink.config import ModelConfig
from keylink.geometry import all_pairs, draw_edge_map, edge_lengths, random_patch_mask, soft_argmax
from keylink.models import create_model


class EdgeGraph(nn.Module):
    """One weight per unordered keypoint pair, shared by the whole data set.

    ``w = softplus(scale * theta)``: the scale acts as a learning-rate multiplier for the edges,
    and theta starts where every weight is ``init`` (nearly off). With ``saturate`` the weight is
    ``tanh`` of that, at most 1 (the cpu preset; unbounded weights let one edge take over). With
    ``normalize`` edges are drawn relative to the strongest, and only relative strength counts."""

    def __init__(
        self,
        k: int,
        scale: float = 512.0,
        init: float = 0.018,
        saturate: bool = False,
        normalize: bool = False,
    ) -> None:
        super().__init__()
        self.scale = scale
        self.saturate = saturate
        self.normalize = normalize
        self.register_buffer("pairs", all_pairs(k), persistent=False)
        w0 = math.atanh(init) if saturate else init
        self.theta0 = math.log(math.expm1(w0)) / scale  # inverse softplus
        self.theta = nn.Parameter(torch.full((len(self.pairs),), self.theta0))
        # Running mean length of each edge over training (normalised units; NaN: not yet seen).
        # An edge between two keypoints that sit on one spot draws a dot, not a link.
        self.register_buffer("mean_length", torch.full((len(self.pairs),), math.nan))

    @classmethod
    def from_config(cls, config: ModelConfig) -> EdgeGraph:
        return cls(
            config.keypoints,
            config.edge_scale,
            config.edge_init,
            config.edge_saturate,
            config.edge_normalize,
        )

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        # Runs saved before mean_length existed load with it unknown.
        state_dict.setdefault(prefix + "mean_length", torch.full_like(self.mean_length, math.nan))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def weights(self) -> torch.Tensor:
        w = F.softplus(self.scale * self.theta)
        # Saturating at 1 keeps one edge from growing without bound and starving the rest.
        return torch.tanh(w) if self.saturate else w

    def drawn_weights(self) -> torch.Tensor:
        """The weights the edge map is drawn with: relative to the strongest when normalising
        (a faint edge map drowns in the bf16 rounding of the decoder's first layer)."""
        w = self.weights()
        return w / w.max() if self.normalize else w

    @torch.no_grad()
    def track_lengths(self, keypoints: torch.Tensor, momentum: float = 0.01) -> None:
        """Update the running mean length of each edge from (B, K, 2) keypoints."""
        lengths = edge_lengths(keypoints.detach().float(), self.pairs)
        seen = self.mean_length.isfinite()
        self.mean_length.copy_(torch.where(seen, self.mean_length.lerp(lengths, momentum), lengths))

    @torch.no_grad()
    def decay_by_length(self, keypoints: torch.Tensor, amount: float) -> None:
        """Shrink each logit by ``amount`` times its edge's mean length on (B, K, 2) keypoints, so
        a long edge must help reconstruction more than a short one to grow. Decoupled from the
        optimiser, as AdamW's weight decay is: the shrink does not depend on gradient scale."""
        self.theta -= amount * edge_lengths(keypoints, self.pairs)

    @torch.no_grad()
    def after_step(self, keypoints: torch.Tensor, decay: float) -> None:
        """The graph's upkeep after each optimiser step on a batch's (B, K, 2) keypoints: track
        the edge lengths, shrink the logits by ``decay`` times each length, recentre."""
        self.track_lengths(keypoints)
        if decay > 0:
            self.decay_by_length(keypoints, decay)
        self.recentre()

    @torch.no_grad()
    def copy_edges(self, mapping: list[tuple[int, int]]) -> None:
        """Raise each target edge's logit to its source edge's: (source, target) edge indices."""
        for source, target in mapping:
            self.theta[target] = torch.maximum(self.theta[target], self.theta[source])

    @torch.no_grad()
    def recentre(self) -> None:
        """When normalising, shift every logit so that the strongest is back at its starting
        value. Only differences count then; without this the common part drifts down with the
        length decay until the weights underflow to zero. Without normalising: nothing."""
        if self.normalize:
            self.theta -= self.theta.max() - self.theta0


@dataclass
class Detection:
    keypoints: torch.Tensor  # (B, K, 2) normalised [-1, 1]
    confidence: torch.Tensor  # (B, K)
    heatmaps: torch.Tensor  # (B, K, h, w) logits


class AutoLink(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.detector = create_model(config.detector, 3, config.keypoints)
        self.decoder = create_model(config.decoder, 4, 3)
        self.graph = EdgeGraph.from_config(config)
        self.alpha = nn.Parameter(torch.ones(()))  # scales the masked image fed to the decoder
        self.thickness_scale = 1.0  # a training curriculum may start with thicker edges

    def detect(self, images: torch.Tensor) -> Detection:
        """images (B, 3, S, S) in [0, 1]."""
        logits = self.detector(images * 2 - 1).float()
        keypoints, confidence = soft_argmax(logits)
        return Detection(keypoints, confidence, logits)

    def dots(self) -> torch.Tensor:
        """(E,) bool: edges whose keypoints sat on one spot in training (mean length below the
        edge's width); they draw a dot, not a link. Never measured: no dot."""
        return self.graph.mean_length < math.sqrt(self.config.edge_thickness)

    def edge_map(self, keypoints: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return draw_edge_map(
            keypoints.float(),
            self.graph.pairs,
            self.graph.drawn_weights(),
            size,
            self.config.edge_thickness * self.thickness_scale,
        )

    def forward(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Detect, draw, mask and rebuild: the reconstruction and what led to it."""
        det = self.detect(images)
        # Edges stay in fp32: thin Gaussians underflow in bf16.
        with torch.autocast(images.device.type, enabled=False):
            edges = self.edge_map(det.keypoints, images.shape[-2:])
        reconstruction, masked = self.rebuild(images, edges, generator)
        return {
            "reconstruction": reconstruction.float(),
            "keypoints": det.keypoints,
            "confidence": det.confidence,
            "heatmaps": det.heatmaps,
            "edges": edges,
            "masked": masked,
        }

    def rebuild(
        self, images: torch.Tensor, edges: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder's image from a freshly masked copy of ``images`` and the (B, 1, S, S)
        ``edges`` map; returns (reconstruction, masked images)."""
        cfg = self.config
        size = images.shape[-2:]
        keep = random_patch_mask(len(images), size, cfg.mask_grid, cfg.mask_drop, generator)
        keep = keep.to(images.device)
        masked = images * keep
        decoder_in = torch.cat([self.alpha * (masked * 2 - 1), edges.to(images.dtype)], dim=1)
        return self.decoder(decoder_in), masked

    def skeleton(
        self, threshold: float | None = None, max_edges: int | None = None
    ) -> list[tuple[int, int, float]]:
        """Edges whose weight survived training, strongest first: (i, j, weight), 0-based. At
        most ``max_edges`` (default: the config's, else K - 1), each at least ``threshold`` times
        the strongest weight (default: the config's). Edges whose keypoints sat on one spot
        in training (mean length below the edge's width) are no links and are left out."""
        cfg = self.config
        threshold = cfg.skeleton_threshold if threshold is None else threshold
        if max_edges is None:
            max_edges = cfg.keypoints - 1 if cfg.skeleton_edges is None else cfg.skeleton_edges
        w = self.graph.weights().detach().cpu()
        # NaN (never measured) compares False, so such edges stay in.
        dot = self.dots().cpu().tolist()
        ranked = sorted(
            (
                ((i, j), wij)
                for (i, j), wij, d in zip(self.graph.pairs.tolist(), w.tolist(), dot, strict=True)
                if not d
            ),
            key=lambda e: -e[1],
        )
        floor = threshold * max((wij for _, wij in ranked), default=0.0)  # none: no pairs left
        return [(int(i), int(j), float(wij)) for (i, j), wij in ranked[:max_edges] if wij >= floor]
