import pytest
import torch

from keylink.geometry import flip_points
from keylink.losses import (
    LOSSES,
    SEPARATION_KERNELS,
    create_loss,
    flip_symmetry_loss,
    separation_loss,
    ssim,
)


@pytest.mark.parametrize("name", [n for n in LOSSES if n != "vgg"])
def test_losses_are_zero_for_identical_images_and_differentiable(name):
    torch.manual_seed(0)
    target = torch.rand(2, 3, 32, 32)
    loss = create_loss(name)
    assert float(loss(target, target)) == pytest.approx(0.0, abs=1e-6)
    pred = torch.rand(2, 3, 32, 32, requires_grad=True)
    value = loss(pred, target)
    value.backward()
    assert value > 0 and pred.grad.abs().sum() > 0


def test_ssim_is_one_for_equal_images_and_lower_for_noise():
    x = torch.rand(1, 3, 32, 32)
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-5)
    assert float(ssim(x, torch.rand_like(x))) < 0.5


def test_vgg_loss_needs_a_weights_file(tmp_path):
    with pytest.raises(ValueError, match="weights"):
        create_loss("vgg")
    with pytest.raises(FileNotFoundError):
        create_loss("vgg", tmp_path / "missing.safetensors")


def test_vgg_loss_loads_torchvision_layout(tmp_path):
    from safetensors.torch import save_file

    from keylink.losses import _VGG16

    state, cin, index = {}, 3, 0
    for v in _VGG16:
        if v == "M":
            index += 1
            continue
        state[f"features.{index}.weight"] = torch.randn(v, cin, 3, 3) * 0.05
        state[f"features.{index}.bias"] = torch.zeros(v)
        cin, index = v, index + 2
    path = tmp_path / "vgg16.safetensors"
    save_file(state, str(path))
    loss = create_loss("vgg", path)
    x = torch.rand(1, 3, 32, 32)
    assert float(loss(x, x)) == 0.0
    assert float(loss(x, torch.rand_like(x))) > 0
    save_file({"features.0.weight": torch.zeros(1)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises((ValueError, RuntimeError)):
        create_loss("vgg", tmp_path / "bad.safetensors")


def test_equivariance_loss_is_zero_when_keypoints_move_with_the_image():
    from keylink.geometry import random_affine, transform_points
    from keylink.losses import equivariance_loss

    keypoints = torch.rand(4, 6, 2, requires_grad=True)
    affine = random_affine(4, generator=torch.Generator().manual_seed(0))
    moved = transform_points(keypoints.detach(), affine)
    assert equivariance_loss(keypoints, moved, affine).item() < 1e-10
    loss = equivariance_loss(keypoints, moved + 0.1, affine)
    assert loss.item() > 0.01
    loss.backward()
    assert keypoints.grad.abs().sum() > 0


def test_equivariance_loss_with_an_elastic_warp():
    from keylink.geometry import random_affine, random_flow, warp_source
    from keylink.losses import equivariance_loss

    gen = torch.Generator().manual_seed(0)
    affine, flow = random_affine(2, generator=gen), random_flow(2, 0.1, generator=gen)
    moved = torch.rand(2, 5, 2) * 1.6 - 0.8  # detections on the warped image
    keypoints = warp_source(moved, affine, flow)  # ... where they came from in the original
    assert equivariance_loss(keypoints, moved, affine, flow).item() < 1e-10
    assert equivariance_loss(keypoints, moved, affine).item() > 1e-4  # the flow counts


def test_separation_reaches_as_far_as_its_sigma():
    two_points = torch.tensor([[[0.0, 0.0], [0.5, 0.0]]])  # a quarter of the image apart
    assert float(separation_loss(two_points, sigma=0.1)) < 1e-5  # out of a narrow reach
    assert float(separation_loss(two_points, sigma=0.5)) > 0.5


@pytest.mark.parametrize("kernel", SEPARATION_KERNELS)
def test_separation_pushes_close_keypoints_apart(kernel):
    points = torch.tensor([[[0.0, 0.0], [0.02, 0.0]]], requires_grad=True)
    separation_loss(points, sigma=0.2, kernel=kernel).backward()
    assert points.grad[0, 0, 0] > 0 and points.grad[0, 1, 0] < 0  # descent moves them apart


def test_laplace_separation_pushes_hardest_where_keypoints_meet():
    def push(gap: float, kernel: str) -> float:
        points = torch.tensor([[[0.0, 0.0], [gap, 0.0]]], requires_grad=True)
        separation_loss(points, sigma=0.2, kernel=kernel).backward()
        return float(points.grad[0, 0, 0])

    assert push(1e-3, "laplace") > push(0.1, "laplace")
    assert push(1e-3, "gaussian") < 0.05 * push(0.1, "gaussian")  # a clump barely feels it
    with pytest.raises(ValueError, match="kernel"):
        separation_loss(torch.zeros(1, 2, 2), kernel="box")


def test_flip_symmetry_ignores_which_keypoint_takes_a_part():
    keypoints = torch.tensor([[[-0.5, 0.0], [0.5, 0.0], [0.0, -0.6]]])  # two hands and a head
    mirrored = flip_points(keypoints)
    swapped = mirrored[:, [1, 0, 2]]  # the hands swap keypoints in the mirror image
    assert flip_symmetry_loss(keypoints, mirrored).item() < 1e-12
    assert flip_symmetry_loss(keypoints, swapped).item() < 1e-12


def test_flip_symmetry_asks_for_the_missing_mirror_part():
    # One hand found (x = 0.5) and a spare keypoint on the head; in the mirror image the
    # detector finds that hand again on its side, so the mirror part at x = -0.5 is missing.
    keypoints = torch.tensor([[[0.5, 0.0], [0.0, -0.6]]], requires_grad=True)
    flipped = torch.tensor([[[0.5, 0.0], [0.0, -0.6]]])
    loss = flip_symmetry_loss(keypoints, flipped)
    assert loss.item() > 0.1
    loss.backward()
    assert keypoints.grad[0, 0].abs().sum() == 0  # the found hand stays where it is
    assert keypoints.grad[0, 1, 0] > 0  # descent moves the spare towards x = -0.5 ...
    assert keypoints.grad[0, 1, 1] < 0  # ... and down from the head to the hands' height
