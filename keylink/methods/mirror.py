"""Mirror recruitment: an idle keypoint takes the mirror part of a keypoint that has none.

Many categories are left-right symmetric (figures, people, animals, faces). When a detector has
learned one arm's elbow but not the other's, its elbow channel already knows the other one: run on
the horizontally flipped image and flipped back, it points at the mirror part. Meanwhile some
keypoint may idle off the object, its edges dead, so no reconstruction gradient reaches it. This
pulls such an idle keypoint onto the mirror part for a while, then gives it the mirrored copies
of the partner's edges, so the reconstruction can keep it there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from keylink.geometry import flip_points

if TYPE_CHECKING:
    from keylink.config import TrainConfig
    from keylink.methods.autolink import AutoLink

IDLE_SHARE = 0.05  # a keypoint whose strongest edge is under this share of the strongest idles
ACTIVE_SHARE = 0.1  # one whose strongest edge reaches this share takes part in the skeleton
PARTNER_RADIUS = 0.15  # normalised units (5 px of 64): a keypoint this near a mirror part has it
STOP_SHARE = 0.7  # no recruits after this share of the steps: they need time to settle


def mirror_partners(
    keypoints: torch.Tensor, mirrored: torch.Tensor, radius: float
) -> list[int | None]:
    """For each keypoint k, the keypoint that sits where k's mirror part is, else None.

    keypoints: (B, K, 2) on the images; mirrored: (B, K, 2) found on the flipped images and
    flipped back, so ``mirrored[:, k]`` is where k's mirror part is. The partner is the nearest
    keypoint by mean distance over the batch, if within ``radius`` (a central part, such as a
    head, is its own partner)."""
    mean = (mirrored[:, :, None] - keypoints[:, None]).float().norm(dim=-1).mean(0)  # (K, K)
    best = mean.min(dim=1)
    return [
        int(j) if d <= radius else None
        for d, j in zip(best.values.tolist(), best.indices.tolist(), strict=True)
    ]


def strongest_edges(weights: torch.Tensor, pairs: torch.Tensor, k: int) -> torch.Tensor:
    """(K,) each keypoint's strongest edge weight, from (E,) weights of (E, 2) pairs."""
    out = weights.new_zeros(k)
    for end in (0, 1):
        out = out.scatter_reduce(0, pairs[:, end], weights, reduce="amax")
    return out


def recruit_plan(partners: list[int | None], strongest: torch.Tensor) -> dict[int, int]:
    """Idle keypoint -> the keypoint whose mirror part it should take.

    ``strongest``: (K,) each keypoint's strongest edge weight. Keypoints in the skeleton whose
    mirror part no keypoint follows are served first, strongest first, each by one idle keypoint."""
    top = float(strongest.max())
    if top <= 0:
        return {}
    idle = [i for i in range(len(partners)) if strongest[i] < IDLE_SHARE * top]
    lonely = sorted(
        (k for k, p in enumerate(partners) if p is None and strongest[k] >= ACTIVE_SHARE * top),
        key=lambda k: -float(strongest[k]),
    )
    return dict(zip(idle, lonely, strict=False))  # the shorter list decides


def mirrored_pairs(
    pairs: torch.Tensor, plan: dict[int, int], partners: list[int | None]
) -> list[tuple[int, int]]:
    """(source edge, target edge) indices into ``pairs``: for each recruit i of keypoint k, every
    edge (k, a) maps to (i, mirror of a), the mirror of a being a's partner (or the recruit of
    a). Edges whose far end has no mirror are left out."""
    mirror = dict(enumerate(partners))
    mirror.update({k: i for i, k in plan.items()})
    index = {tuple(sorted(p)): e for e, p in enumerate(pairs.tolist())}
    out = []
    for i, k in plan.items():
        for (a, b), e in index.items():
            if k not in (a, b):
                continue
            far = mirror.get(b if a == k else a)
            if far is None or far == i:
                continue
            out.append((e, index[tuple(sorted((i, far)))]))
    return out


class MirrorRecruiter:
    """Mirror recruitment inside the training loop, while the run's progress (the share of its
    steps or of its minutes done, whichever is further, as for the learning rate) is between
    ``start`` and ``stop``, in windows of ``steps`` steps: a plan at each window's first step
    (keypoints idle only once training has sorted them out, so one early look can find none), a
    pull of each recruit onto its mirror part at every step of the window, the mirrored edges
    after its last step. Keyed to progress, a run stopped early by its time bound still
    recruits; a resumed run starts a new window."""

    def __init__(
        self, weight: float, start: float, stop: float, steps: int, radius: float = PARTNER_RADIUS
    ) -> None:
        self.weight, self.start, self.stop, self.steps = weight, start, stop, steps
        self.radius = radius
        self.plan: dict[int, int] = {}
        self._window_start: int | None = None  # the step the current window began at
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None

    @classmethod
    def from_config(cls, train: TrainConfig) -> MirrorRecruiter:
        """From a TrainConfig: windows of ``mirror_steps`` from ``mirror_at`` of the run."""
        return cls(train.mirror_recruit, train.mirror_at, STOP_SHARE, train.mirror_steps)

    def active(self, progress: float) -> bool:
        """Whether a step that starts at this share of the run takes part."""
        return self.start <= progress < self.stop or self._window_start is not None

    def pull(
        self, model: AutoLink, images: torch.Tensor, keypoints: torch.Tensor, step: int
    ) -> torch.Tensor:
        """The pull term for one step: squared distance of each recruit's (B, 2) keypoints to
        its partner's mirror part, found by the detector on the flipped images."""
        new_window = self._window_start is None
        if new_window or self.plan:
            with torch.no_grad():
                mirrored = flip_points(model.detect(images.flip(-1)).keypoints)
            self._last = (keypoints.detach(), mirrored)
        if new_window:
            self._window_start = step
            graph = model.graph
            strongest = strongest_edges(
                graph.drawn_weights().detach(), graph.pairs, keypoints.shape[1]
            )
            self.plan = recruit_plan(mirror_partners(*self._last, self.radius), strongest)
        if not self.plan:
            return keypoints.new_zeros(())
        idle, lonely = list(self.plan), list(self.plan.values())
        return self.weight * (keypoints[:, idle] - mirrored[:, lonely]).square().sum(-1).mean()

    def after_step(self, model: AutoLink, step: int, progress: float) -> None:
        """After a window's last step (its ``steps`` are done, or ``progress``, the share of the
        run done after this step, reached ``stop``), give each recruit its partner's edges,
        mirrored."""
        if self._window_start is None:
            return
        if step + 1 - self._window_start < self.steps and progress < self.stop:
            return
        if self.plan and self._last is not None:
            partners = mirror_partners(*self._last, self.radius)
            model.graph.copy_edges(mirrored_pairs(model.graph.pairs, self.plan, partners))
        self.plan = {}
        self._window_start = None
