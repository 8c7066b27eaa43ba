"""Pure tensor functions at the core of AutoLink: soft-argmax, segment distances, edge maps, masks.

Coordinates inside models are normalised to [-1, 1] over the image with pixel centres at
``-1 + (i + 0.5) * 2 / size`` (PyTorch's ``align_corners=False``). In pixels of an image of side
``size`` that is ``x_pixel = (u + 1) / 2 * size``, so the centre of pixel ``i`` is ``i + 0.5``.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F


def cell_centres(n: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Normalised coordinates of the centres of ``n`` cells spanning [-1, 1]."""
    return (torch.arange(n, device=device, dtype=dtype) + 0.5) * (2.0 / n) - 1.0


def normalised_to_pixels(points: torch.Tensor, width: float, height: float) -> torch.Tensor:
    """Map (..., 2) normalised (x, y) to pixel coordinates of a ``width`` x ``height`` image."""
    scale = points.new_tensor([width / 2.0, height / 2.0])
    return (points + 1.0) * scale


def pixels_to_normalised(points: torch.Tensor, width: float, height: float) -> torch.Tensor:
    scale = points.new_tensor([width / 2.0, height / 2.0])
    return points / scale - 1.0


def soft_argmax(logits: torch.Tensor, radius: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints and confidences from heatmap logits.

    Args:
        logits: (B, K, H, W) unnormalised heatmaps.
        radius: confidence is the probability mass within this normalised distance of the keypoint.

    Returns:
        keypoints (B, K, 2) as normalised (x, y), confidences (B, K) in [0, 1].
    """
    b, k, h, w = logits.shape
    prob = torch.softmax(logits.float().reshape(b, k, h * w), dim=-1).reshape(b, k, h, w)
    xs = cell_centres(w, device=logits.device)
    ys = cell_centres(h, device=logits.device)
    x = (prob.sum(dim=2) * xs).sum(dim=-1)
    y = (prob.sum(dim=3) * ys).sum(dim=-1)
    keypoints = torch.stack([x, y], dim=-1)
    # How peaked the heatmap is: the paper has no confidence, users need one.
    dx2 = (xs.view(1, 1, 1, w) - x.view(b, k, 1, 1)) ** 2
    dy2 = (ys.view(1, 1, h, 1) - y.view(b, k, 1, 1)) ** 2
    near = (dx2 + dy2 <= radius**2).to(prob.dtype)
    confidence = (prob * near).sum(dim=(2, 3)).clamp(0.0, 1.0)
    return keypoints, confidence


def all_pairs(k: int) -> torch.Tensor:
    """(K*(K-1)/2, 2) index pairs (i < j): every candidate edge of the graph."""
    return torch.tensor(list(itertools.combinations(range(k), 2)), dtype=torch.long).reshape(-1, 2)


def edge_lengths(keypoints: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """(E,) mean length over the batch of each candidate edge, from (B, K, 2) keypoints."""
    return (keypoints[:, pairs[:, 0]] - keypoints[:, pairs[:, 1]]).norm(dim=-1).mean(0)


def segment_share(points: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Where on the segments [a, b] the nearest point to each point lies: 0 at a, 1 at b.

    Shapes broadcast: points (..., 2), a and b (..., 2). Returns (...).
    """
    ab = b - a
    length_sq = (ab * ab).sum(-1).clamp_min(1e-12)
    return (((points - a) * ab).sum(-1) / length_sq).clamp(0.0, 1.0)


def segment_distance_sq(points: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distance from points to the segments [a, b] (not the infinite lines).

    Shapes broadcast: points (..., 2), a and b (..., 2). Returns (...).
    """
    closest = a + segment_share(points, a, b).unsqueeze(-1) * (b - a)
    return ((points - closest) ** 2).sum(-1)


def draw_edge_map(
    keypoints: torch.Tensor,
    pairs: torch.Tensor,
    weights: torch.Tensor,
    size: tuple[int, int],
    thickness: float,
    chunk: int = 32,
) -> torch.Tensor:
    """Rasterise weighted edges into one map: ``max_e w_e * exp(-d_e(p)^2 / thickness)``.

    Args:
        keypoints: (B, K, 2) normalised coordinates.
        pairs: (E, 2) keypoint indices of candidate edges.
        weights: (E,) positive edge weights shared by the batch.
        size: (H, W) of the map.
        thickness: in squared normalised units, as in the paper.

    Returns:
        (B, 1, H, W) edge map. Gradients reach the keypoints and the weights of the edge that wins
        the max at each pixel, exactly as autograd through ``amax`` would give them.
    """
    h, w = size
    b = keypoints.shape[0]
    kp = keypoints.detach()
    xs = cell_centres(w, device=kp.device, dtype=kp.dtype)
    ys = cell_centres(h, device=kp.device, dtype=kp.dtype)
    log_w = weights.detach().log()
    # 1. Which edge wins at each pixel, without building an autograd graph over all E edges:
    #    max_e of w_e exp(-d^2/T) is max_e of log w_e - d^2/T. The projection parameter t is
    #    linear in (x, y), so it is built from broadcast rows and columns.
    best = torch.full((b, h, w), -math.inf, device=kp.device, dtype=kp.dtype)
    best_edge = torch.zeros((b, h, w), device=kp.device, dtype=torch.long)
    with torch.no_grad():
        for start in range(0, len(pairs), chunk):
            idx = pairs[start : start + chunk]
            a, ab = kp[:, idx[:, 0]], kp[:, idx[:, 1]] - kp[:, idx[:, 0]]  # (B, e, 2)
            inv = 1.0 / (ab * ab).sum(-1).clamp_min(1e-12)
            ax, ay = a[..., 0, None, None], a[..., 1, None, None]  # (B, e, 1, 1)
            abx, aby = ab[..., 0, None, None], ab[..., 1, None, None]
            rel_x = xs.view(1, 1, 1, w) - ax  # (B, e, 1, W)
            rel_y = ys.view(1, 1, h, 1) - ay  # (B, e, H, 1)
            t = (rel_x * (abx * inv[..., None, None])) + (rel_y * (aby * inv[..., None, None]))
            t.clamp_(0.0, 1.0)
            dx = rel_x - t * abx
            dy = rel_y - t * aby
            score = dx.square_().add_(dy.square_()).div_(-thickness)
            score.add_(log_w[start : start + chunk].view(1, -1, 1, 1))
            value, arg = score.max(dim=1)
            better = value > best
            best = torch.where(better, value, best)
            best_edge = torch.where(better, arg + start, best_edge)
    # 2. Differentiable value of the winning edge only.
    batch = torch.arange(b, device=kp.device).view(b, 1, 1)
    a = keypoints[batch, pairs[best_edge, 0]]  # (B, H, W, 2)
    bb = keypoints[batch, pairs[best_edge, 1]]
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], dim=-1)  # (H, W, 2) as (x, y)
    d2 = segment_distance_sq(grid, a, bb)
    return (weights[best_edge] * torch.exp(-d2 / thickness)).unsqueeze(1)


def gaussian_maps(keypoints: torch.Tensor, size: tuple[int, int], sigma: float) -> torch.Tensor:
    """(B, K, H, W) isotropic Gaussians at normalised keypoints; sigma in normalised units."""
    h, w = size
    xs = cell_centres(w, device=keypoints.device, dtype=keypoints.dtype)
    ys = cell_centres(h, device=keypoints.device, dtype=keypoints.dtype)
    gx = torch.exp(-((xs.view(1, 1, 1, w) - keypoints[..., 0, None, None]) ** 2) / (2 * sigma**2))
    gy = torch.exp(-((ys.view(1, 1, h, 1) - keypoints[..., 1, None, None]) ** 2) / (2 * sigma**2))
    return gx * gy


def random_patch_mask(
    batch: int,
    size: tuple[int, int],
    grid: int = 16,
    drop: float = 0.8,
    generator: torch.Generator | None = None,
    device=None,
) -> torch.Tensor:
    """(B, 1, H, W) mask with 1 where the image is kept: a ``grid`` x ``grid`` layout of patches,
    each dropped independently with probability ``drop``."""
    keep = (torch.rand(batch, 1, grid, grid, generator=generator) >= drop).float()
    keep = F.interpolate(keep, size=size, mode="nearest")
    return keep.to(device) if device is not None else keep


def default_thickness(k: int) -> float:
    """Edge thickness for K keypoints, log-interpolated from the paper's published settings."""
    table = [(4, 5e-2), (8, 2.5e-3), (16, 1e-3), (32, 6e-4)]
    if k <= table[0][0]:
        return table[0][1]
    if k >= table[-1][0]:
        return table[-1][1]
    for (k0, t0), (k1, t1) in itertools.pairwise(table):
        if k0 <= k <= k1:
            f = (math.log(k) - math.log(k0)) / (math.log(k1) - math.log(k0))
            return math.exp(math.log(t0) + f * (math.log(t1) - math.log(t0)))
    raise AssertionError("unreachable")


def random_affine(
    n: int,
    *,
    rotation: float = 0.3,
    scale: float = 0.1,
    shift: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(n, 2, 3) random similarity transforms of normalised coordinates, ``p -> A p + t``.

    Rotation uniform in +-``rotation`` radians, scale in 1 +- ``scale``, shift in +-``shift``."""
    u = torch.rand(n, 4, generator=generator) * 2 - 1
    angle, s = u[:, 0] * rotation, 1 + u[:, 1] * scale
    cos, sin = torch.cos(angle) * s, torch.sin(angle) * s
    return torch.stack(
        [
            torch.stack([cos, -sin, u[:, 2] * shift], dim=-1),
            torch.stack([sin, cos, u[:, 3] * shift], dim=-1),
        ],
        dim=1,
    )


def flip_points(keypoints: torch.Tensor) -> torch.Tensor:
    """(…, 2) normalised [-1, 1] points mirrored left-right about the image centre."""
    return keypoints * keypoints.new_tensor([-1.0, 1.0])


def transform_points(points: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """Apply (B, 2, 3) affine maps to (B, K, 2) points."""
    return points @ affine[:, :, :2].transpose(1, 2) + affine[:, None, :, 2]


def random_flow(
    n: int, amplitude: float, grid: int = 5, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(n, 2, grid, grid) smooth random displacements (normalised units, uniform in
    +-``amplitude`` at each control point, bilinear in between): a non-rigid part of a warp."""
    return (torch.rand(n, 2, grid, grid, generator=generator) * 2 - 1) * amplitude


def _flow_at(flow: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Displacements (B, N, 2) at points (B, N, 2) of a (B, 2, g, g) grid spanning [-1, 1]."""
    sampled = F.grid_sample(flow, points.unsqueeze(2), align_corners=True, padding_mode="border")
    return sampled.squeeze(3).transpose(1, 2)


def warp_source(
    points: torch.Tensor, affine: torch.Tensor, flow: torch.Tensor | None = None
) -> torch.Tensor:
    """Where the warped image's points (B, N, 2) come from in the original: ``A^-1 (q - t)``,
    plus ``flow(q)`` for a non-rigid warp. With ``flow`` None this inverts ``transform_points``."""
    a, t = affine[:, :, :2], affine[:, None, :, 2]
    source = (points - t) @ torch.linalg.inv(a).transpose(1, 2)
    return source if flow is None else source + _flow_at(flow.to(points.dtype), points)


def warp_images(
    images: torch.Tensor, affine: torch.Tensor, flow: torch.Tensor | None = None
) -> torch.Tensor:
    """Move image content by ``affine`` (what was at normalised point p ends up at A p + t),
    bent by ``flow``: the warped pixel q shows the original at :func:`warp_source` (q).

    Square images only (normalised x and y then share a unit). Outside the image is replicated
    from the border."""
    b, _, h, w = images.shape
    grid = torch.stack(
        torch.meshgrid(
            cell_centres(h, device=images.device),
            cell_centres(w, device=images.device),
            indexing="ij",
        )[::-1],
        dim=-1,
    ).reshape(1, h * w, 2)
    source = warp_source(grid.expand(b, -1, -1), affine.float(), flow)
    grid = source.reshape(b, h, w, 2).to(images.dtype)
    return F.grid_sample(images, grid, padding_mode="border", align_corners=False)
