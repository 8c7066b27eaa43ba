import numpy as np
import pytest
import torch

from keylink.config import ModelConfig, preset
from keylink.methods.autolink import AutoLink, EdgeGraph


def test_edge_weights_start_nearly_off_and_learn_fast():
    graph = EdgeGraph(6, scale=512.0, init=0.018)
    assert len(graph.theta) == 15
    torch.testing.assert_close(graph.weights(), torch.full((15,), 0.018))
    # The scale multiplies the gradient on theta: one unit of loss slope moves the weight fast.
    graph.weights().sum().backward()
    assert graph.theta.grad[0].item() == pytest.approx(
        512 * torch.sigmoid(torch.tensor(512 * graph.theta[0].item())).item(), rel=1e-5
    )


def test_length_decay_shrinks_long_edges_more():
    graph = EdgeGraph(3, init=0.018)
    before = graph.theta.detach().clone()
    # Keypoints 0 and 1 are 0.2 apart, 2 is 1.0 from 0: pairs (0, 1), (0, 2), (1, 2).
    keypoints = torch.tensor([[[0.0, 0.0], [0.2, 0.0], [0.0, 1.0]]])
    graph.decay_by_length(keypoints, amount=0.5)
    drop = before - graph.theta.detach()
    torch.testing.assert_close(drop, 0.5 * torch.tensor([0.2, 1.0, (0.04 + 1.0) ** 0.5]))
    assert graph.theta.grad is None  # a plain update, outside autograd


def test_forward_shapes_and_masking(device):
    cfg = ModelConfig(keypoints=5, image_size=32, detector="detector_tiny", decoder="decoder_tiny")
    model = AutoLink(cfg).to(device)
    images = torch.rand(3, 3, 32, 32, device=device)
    out = model(images, torch.Generator().manual_seed(0))
    assert out["reconstruction"].shape == (3, 3, 32, 32)
    assert out["keypoints"].shape == (3, 5, 2)
    assert out["keypoints"].abs().max() <= 1
    assert out["edges"].shape == (3, 1, 32, 32)
    assert 0.05 < (out["masked"] == 0).float().mean().item() / 1.0 < 0.95


def test_normalized_edges_are_drawn_relative_to_the_strongest():
    cfg = ModelConfig(keypoints=3, image_size=32, thickness=4e-3, edge_normalize=True)
    model = AutoLink(cfg)
    keypoints = torch.tensor([[[-15.0, 1.0], [15.0, 1.0], [1.0, 17.0]]]) / 32  # pixel centres
    with torch.no_grad():
        model.graph.theta.copy_(torch.tensor([-0.01, -0.012, -0.015]))  # all faint (< 0.01)
    faint = model.edge_map(keypoints, (32, 32))
    assert faint.max().item() == pytest.approx(1.0, abs=1e-6)  # the strongest edge draws at 1
    with torch.no_grad():
        model.graph.theta -= 0.005  # every weight shrinks about 13-fold: the same picture
    torch.testing.assert_close(model.edge_map(keypoints, (32, 32)), faint, atol=1e-3, rtol=0)
    # Only relative strength is learned: a shift common to all edge logits gets no gradient.
    model.edge_map(keypoints, (32, 32)).sum().backward()
    grad = model.graph.theta.grad
    assert grad.abs().min() > 1.0  # every edge learns, relative to the others:
    assert grad.sum().item() == pytest.approx(0.0, abs=0.01 * grad.abs().max().item())
    # Recentring undoes such a shift (the length decay makes one every step) before the weights
    # underflow: the strongest is back at its starting weight, the picture unchanged.
    with torch.no_grad():
        model.graph.theta -= 0.5  # weights near exp(-260)
    model.graph.recentre()
    assert model.graph.weights().max().item() == pytest.approx(cfg.edge_init, rel=1e-4)
    torch.testing.assert_close(model.edge_map(keypoints, (32, 32)), faint, atol=2e-3, rtol=0)


def test_skeleton_keeps_edges_whose_weight_survived():
    model = AutoLink(ModelConfig(keypoints=4, detector="detector_tiny", decoder="decoder_tiny"))
    with torch.no_grad():
        model.graph.theta[0] = 0.01  # pair (0, 1) grows
        model.graph.theta[5] = 0.005  # pair (2, 3), weaker but alive
    edges = model.skeleton()
    assert [(i, j) for i, j, _ in edges] == [(0, 1), (2, 3)]
    assert edges[0][2] > edges[1][2]


def test_skeleton_is_not_hidden_by_one_dominant_edge_and_has_at_most_k_minus_1_edges():
    model = AutoLink(ModelConfig(keypoints=4, detector="detector_tiny", decoder="decoder_tiny"))
    with torch.no_grad():
        # weights: (0, 1) 10.2, (2, 3) 0.98, (1, 2) 0.3; the other three have died out (4e-5)
        model.graph.theta.copy_(torch.tensor([0.02, -0.02, -0.02, -0.00205, -0.02, 0.001]))
    edges = [(i, j) for i, j, _ in model.skeleton()]
    assert edges == [(0, 1), (2, 3), (1, 2)]  # the weak ones are not hidden by the strong one
    with torch.no_grad():
        model.graph.theta.fill_(0.001)  # all six alive
    assert len(model.skeleton()) == 3  # K - 1 at most
    assert len(model.skeleton(max_edges=5)) == 5
    with torch.no_grad():
        model.graph.theta[0] = 0.02
    assert [(i, j) for i, j, _ in model.skeleton(threshold=0.5)] == [(0, 1)]


def test_skeleton_leaves_out_edges_between_keypoints_on_one_spot():
    """A clump of keypoints links up with strong, zero-length edges that draw a dot: those are no
    skeleton edges, and they do not set the bar for the real ones either."""
    model = AutoLink(ModelConfig(keypoints=4, detector="detector_tiny", decoder="decoder_tiny"))
    # Keypoints 0 and 1 share a spot; 2 and 3 are apart from them and from each other.
    keypoints = torch.tensor([[[0.0, 0.0], [0.0, 0.001], [0.5, 0.5], [-0.5, 0.5]]])
    for _ in range(3):
        model.graph.track_lengths(keypoints)
    assert model.graph.mean_length[0].item() == pytest.approx(0.001)
    with torch.no_grad():
        model.graph.theta.fill_(-0.02)  # dead
        model.graph.theta[0] = 0.02  # (0, 1): the dot, by far the strongest
        model.graph.theta[5] = 0.001  # (2, 3): a real edge, 1/16 of the dot
    assert [(i, j) for i, j, _ in model.skeleton()] == [(2, 3)]


def test_runs_saved_before_edge_lengths_were_tracked_still_load():
    config = ModelConfig(keypoints=4, detector="detector_tiny", decoder="decoder_tiny")
    old = AutoLink(config).state_dict()
    del old["graph.mean_length"]
    model = AutoLink(config)
    model.load_state_dict(old)
    assert model.graph.mean_length.isnan().all()
    assert len(model.skeleton()) == 3  # unknown lengths leave every edge in


def test_presets():
    model, train = preset("paper", 32)
    assert (model.image_size, train.batch_size, train.lr, train.steps) == (128, 64, 1e-4, 20_000)
    model, train = preset("cpu", 8)
    assert model.image_size <= 64 and model.keypoints == 8


def test_saturating_edge_weights_start_at_init_and_stay_below_one():
    graph = EdgeGraph(5, init=0.018, saturate=True)
    torch.testing.assert_close(graph.weights(), torch.full((10,), 0.018))
    with torch.no_grad():
        graph.theta.fill_(1.0)  # far past where an unbounded weight would be hundreds
    assert graph.weights().max().item() <= 1.0


def test_plain_edge_weights_are_drawn_as_they_are_and_never_recentred():
    graph = EdgeGraph(4, init=0.018)
    with torch.no_grad():
        graph.theta[0] -= 0.01
    before = graph.theta.detach().clone()
    torch.testing.assert_close(graph.drawn_weights(), graph.weights())
    graph.recentre()
    torch.testing.assert_close(graph.theta.detach(), before)


@pytest.mark.slow
def test_keypoints_learn_to_follow_the_joints(tmp_path):
    """After a short training on synthetic figures (the demo's pipeline: 128 px images resized to
    the cpu preset's 64 px), the keypoints mapped by a linear fit are clearly closer to the true
    joints than at initialisation."""
    from keylink.config import RunConfig
    from keylink.data.dataset import from_arrays
    from keylink.data.images import Resize
    from keylink.data.synthetic import generate
    from keylink.engine import train
    from keylink.evaluate import linear_fit_error

    def at_64(images):
        return np.stack([Resize(64).apply(im) for im in images])

    images, _ = generate(3000, 128, seed=1)
    test_images, joints = generate(1000, 128, seed=2)
    test_images, joints = at_64(test_images), joints / 2
    model_cfg, train_cfg = preset("cpu", 16)
    train_cfg.steps, train_cfg.sample_every, train_cfg.checkpoint_every = 1000, 250, 10**6
    cfg = RunConfig(images="synthetic", model=model_cfg, train=train_cfg)
    errors = {}

    def measure(model, step, *_):
        model.eval()
        with torch.no_grad():
            x = torch.from_numpy(test_images).permute(0, 3, 1, 2).float() / 255
            x = x.to(next(model.parameters()).device)  # training may run on a GPU
            kp = model.detect(x).keypoints.cpu().numpy() * 32
        model.train()
        errors[step] = linear_fit_error(
            kp[:500], joints[:500], kp[500:], joints[500:], intercept=True
        )

    torch.manual_seed(0)
    measure(AutoLink(model_cfg), 0)
    train(cfg, from_arrays(at_64(images)), tmp_path / "run", progress=False, on_sample=measure)
    # Early steps can be worse than the random start (whose keypoints already follow the figure
    # a little); after 1000 steps (as in the demo) they are clearly better.
    assert errors[1000] < 0.8 * errors[0], errors
