import math

import pytest
import torch

from keylink.geometry import (
    all_pairs,
    cell_centres,
    default_thickness,
    draw_edge_map,
    edge_lengths,
    flip_points,
    normalised_to_pixels,
    pixels_to_normalised,
    random_affine,
    random_flow,
    random_patch_mask,
    segment_distance_sq,
    segment_share,
    soft_argmax,
    transform_points,
    warp_images,
    warp_source,
)


@pytest.mark.parametrize("size", [(8, 8), (16, 12), (7, 5)])
def test_soft_argmax_of_a_one_pixel_peak_is_that_pixels_centre(size, device):
    h, w = size
    logits = torch.full((1, 2, h, w), -1e4, device=device)
    logits[0, 0, 3, 4] = 0.0
    logits[0, 1, h - 1, 0] = 0.0
    kp, conf = soft_argmax(logits)
    px = normalised_to_pixels(kp, w, h)
    torch.testing.assert_close(px[0, 0].cpu(), torch.tensor([4.5, 3.5]))
    torch.testing.assert_close(px[0, 1].cpu(), torch.tensor([0.5, h - 0.5]))
    assert torch.allclose(conf, torch.ones_like(conf))


def test_confidence_is_low_for_a_flat_heatmap():
    _, conf = soft_argmax(torch.zeros(1, 1, 32, 32))
    assert conf.item() < 0.05


def test_pixel_normalised_round_trip():
    p = torch.tensor([[0.5, 10.25], [63.5, 0.0]])
    torch.testing.assert_close(normalised_to_pixels(pixels_to_normalised(p, 64, 48), 64, 48), p)
    torch.testing.assert_close(cell_centres(4), torch.tensor([-0.75, -0.25, 0.25, 0.75]))


def test_distance_is_to_the_segment_not_the_line(dtype):
    a = torch.tensor([0.0, 0.0], dtype=dtype)
    b = torch.tensor([1.0, 0.0], dtype=dtype)
    points = torch.tensor([[0.5, 0.3], [2.0, 0.0], [-1.0, 1.0], [1.0, 0.0]], dtype=dtype)
    expected = torch.tensor([0.09, 1.0, 2.0, 0.0], dtype=dtype)
    torch.testing.assert_close(segment_distance_sq(points, a, b), expected)
    # A degenerate segment is a point.
    torch.testing.assert_close(
        segment_distance_sq(points[:1], a, a), torch.tensor([0.34], dtype=dtype)
    )
    # The nearest point's place along the segment, clamped to its ends.
    torch.testing.assert_close(
        segment_share(points, a, b), torch.tensor([0.5, 1.0, 0.0, 1.0], dtype=dtype)
    )


def _dense_edge_map(kp, pairs, weights, size, thickness):
    """Reference: every edge drawn separately, then the max."""
    h, w = size
    ys, xs = torch.meshgrid(
        cell_centres(h, dtype=kp.dtype), cell_centres(w, dtype=kp.dtype), indexing="ij"
    )
    grid = torch.stack([xs, ys], -1)
    maps = []
    for e, (i, j) in enumerate(pairs.tolist()):
        d2 = segment_distance_sq(grid, kp[:, i, None, None], kp[:, j, None, None])
        maps.append(weights[e] * torch.exp(-d2 / thickness))
    return torch.stack(maps, 1).amax(1, keepdim=True)


@pytest.mark.parametrize("thickness", [1e-3, 2e-2, 1.0])
def test_edge_map_is_the_max_over_edges(thickness):
    torch.manual_seed(0)
    kp = torch.rand(3, 6, 2, dtype=torch.float64) * 2 - 1
    pairs = all_pairs(6)
    weights = torch.rand(len(pairs), dtype=torch.float64) + 0.01
    got = draw_edge_map(kp, pairs, weights, (20, 24), thickness, chunk=4)
    torch.testing.assert_close(got, _dense_edge_map(kp, pairs, weights, (20, 24), thickness))


def test_edge_map_is_brightest_on_the_segment_and_weighted():
    kp = torch.tensor([[[-0.5, 0.0], [0.5, 0.0]]])
    m = draw_edge_map(kp, all_pairs(2), torch.tensor([0.7]), (33, 33), 1e-2)[0, 0]
    assert m.max().item() == pytest.approx(0.7, abs=0.01)
    assert m[16, 16] > 0.69  # on the segment
    assert m[16, 2] < 0.05  # beyond its end on the same line
    assert m[2, 16] < 1e-6  # far from it


def test_edge_map_gradients_reach_keypoints_and_weights(dtype):
    torch.manual_seed(1)
    kp = (torch.rand(2, 5, 2, dtype=dtype) * 1.6 - 0.8).requires_grad_()
    pairs = all_pairs(5)
    weights = (torch.rand(len(pairs), dtype=dtype) + 0.1).requires_grad_()
    target = torch.rand(2, 1, 16, 16, dtype=dtype)
    loss = ((draw_edge_map(kp, pairs, weights, (16, 16), 5e-2) - target) ** 2).sum()
    loss.backward()
    assert kp.grad is not None and kp.grad.abs().sum() > 0
    assert weights.grad is not None and (weights.grad != 0).sum() > len(pairs) // 2
    # ... and equal those of the dense reference.
    kp2 = kp.detach().clone().requires_grad_()
    w2 = weights.detach().clone().requires_grad_()
    ((_dense_edge_map(kp2, pairs, w2, (16, 16), 5e-2) - target) ** 2).sum().backward()
    torch.testing.assert_close(kp.grad, kp2.grad)
    torch.testing.assert_close(weights.grad, w2.grad)


def test_edge_lengths_are_averaged_over_the_batch():
    keypoints = torch.tensor([[[0.0, 0.0], [3.0, 4.0]], [[1.0, 1.0], [1.0, 2.0]]])
    torch.testing.assert_close(edge_lengths(keypoints, all_pairs(2)), torch.tensor([3.0]))


def test_mask_drops_the_asked_share_of_patches_on_a_grid():
    gen = torch.Generator().manual_seed(0)
    mask = random_patch_mask(64, (64, 64), grid=16, drop=0.8, generator=gen)
    assert mask.shape == (64, 1, 64, 64)
    assert 0.18 < mask.mean().item() < 0.22
    # Constant within each 4x4 patch.
    patches = mask.unfold(2, 4, 4).unfold(3, 4, 4)
    assert (patches.amax((-1, -2)) == patches.amin((-1, -2))).all()
    # Fresh per image.
    assert not torch.equal(mask[0], mask[1])


def test_default_thickness_follows_the_paper():
    assert default_thickness(4) == pytest.approx(5e-2)
    assert default_thickness(8) == pytest.approx(2.5e-3)
    assert default_thickness(16) == pytest.approx(1e-3)
    assert 6e-4 <= default_thickness(24) <= 1e-3
    assert default_thickness(64) == pytest.approx(6e-4)
    assert math.isfinite(default_thickness(2))


def test_warped_image_content_moves_where_transform_points_says(device):
    # A bright spot's soft-argmax after warping equals the transformed soft-argmax before.
    image = torch.zeros(3, 1, 48, 48, device=device)
    image[0, 0, 20, 30] = image[1, 0, 10, 12] = image[2, 0, 35, 24] = 1.0
    affine = random_affine(3, rotation=0.4, scale=0.15, shift=0.15, generator=torch.Generator())
    affine = affine.to(device)
    warped = warp_images(image, affine)
    before, _ = soft_argmax(torch.log(image.clamp_min(1e-12)))
    after, _ = soft_argmax(torch.log(warped.clamp_min(1e-12)))
    # Bilinear resampling spreads the spot over a few pixels: a tenth of a pixel is exact enough.
    assert (after - transform_points(before, affine)).abs().max() < 0.1 * 2 / 48


def test_identity_affine_leaves_images_and_points_unchanged():
    identity = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    image = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(warp_images(image, identity), image)
    points = torch.rand(1, 5, 2) * 2 - 1
    torch.testing.assert_close(transform_points(points, identity), points)


def test_elastic_warp_moves_content_where_warp_source_says(device):
    # With a non-rigid flow, a bright spot seen at q in the warped image came from warp_source(q).
    image = torch.zeros(3, 1, 48, 48, device=device)
    image[0, 0, 20, 30] = image[1, 0, 10, 12] = image[2, 0, 35, 24] = 1.0
    gen = torch.Generator().manual_seed(1)
    affine = random_affine(3, generator=gen).to(device)
    flow = random_flow(3, 0.08, generator=gen).to(device)
    warped = warp_images(image, affine, flow)
    before, _ = soft_argmax(torch.log(image.clamp_min(1e-12)))
    after, _ = soft_argmax(torch.log(warped.clamp_min(1e-12)))
    assert (warp_source(after, affine, flow) - before).abs().max() < 0.25 * 2 / 48
    # The flow really bends the warp: without it the spots are elsewhere.
    assert (warp_source(after, affine) - before).abs().max() > 0.5 * 2 / 48


def test_warp_source_inverts_transform_points():
    affine = random_affine(4, generator=torch.Generator().manual_seed(2))
    points = torch.rand(4, 7, 2) * 2 - 1
    back = warp_source(transform_points(points, affine), affine)
    torch.testing.assert_close(back, points, atol=1e-5, rtol=0)


def test_flip_points_mirrors_x_about_the_centre():
    assert torch.equal(flip_points(torch.tensor([[0.25, -0.5]])), torch.tensor([[-0.25, -0.5]]))
