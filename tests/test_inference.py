"""Keypoints come back in the original image's pixel coordinates, exactly, for any size and
aspect ratio and both resize modes."""

import numpy as np
import pytest
import torch
from PIL import Image

from keylink.config import ConfigError, ModelConfig, RunConfig
from keylink.inference import annotate_with
from keylink.methods.autolink import AutoLink


class BrightnessDetector(torch.nn.Module):
    """Heatmap probability proportional to brightness above the letterbox grey: the soft-argmax
    is the block's intensity centroid, which resampling preserves."""

    stride = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        brightness = (x.mean(1, keepdim=True) + 1) / 2
        return torch.log((brightness - 0.55).clamp_min(0) + 1e-12)  # above the grey padding


@pytest.mark.parametrize("mode", ["letterbox", "squash"])
@pytest.mark.parametrize("size", [(200, 120), (90, 160), (64, 64)])
def test_a_bright_block_is_found_where_it_is(tmp_path, mode, size):
    w, h = size
    rng = np.random.default_rng(0)
    truth = []
    for n in range(3):
        image = np.zeros((h, w, 3), np.uint8)
        x0, y0 = int(rng.integers(10, w - 20)), int(rng.integers(10, h - 20))
        image[y0 : y0 + 8, x0 : x0 + 8] = 255  # block centre at (x0 + 4, y0 + 4)
        Image.fromarray(image).save(tmp_path / f"{n}.png")
        truth.append((x0 + 4.0, y0 + 4.0))
    cfg = RunConfig(
        images=str(tmp_path),
        model=ModelConfig(keypoints=1, image_size=64, resize=mode, detector="detector_tiny"),
    )
    model = AutoLink(cfg.model).eval()
    model.detector = BrightnessDetector()
    result = annotate_with(model, cfg, tmp_path, overlays=False, progress=False)
    # Within 0.15 model pixels: a half-cell offset or a wrong inverse would be 0.5 or more.
    np.testing.assert_allclose(result.keypoints[:, 0], np.array(truth), atol=0.15 * max(w, h) / 64)
    assert result.sizes == [(w, h)] * 3


def test_the_skeleton_keeps_as_many_of_the_strongest_edges_as_asked(tmp_path):
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "0.png")
    config = RunConfig(images=str(tmp_path), model=ModelConfig(keypoints=4, image_size=32))
    model = AutoLink(config.model).eval()
    with torch.no_grad():  # edge weights from strongest to weakest: (1,2) (0,3) (2,3) (0,1) ...
        model.graph.theta.copy_(torch.tensor([3.0, 1.0, 5.0, 6.0, 0.5, 4.0]) / 512)

    def skeleton(**options):
        kw = {"overlays": False, "progress": False}
        return annotate_with(model, config, tmp_path, **kw, **options).category.skeleton

    assert skeleton() == [(1, 2), (0, 3), (2, 3)]  # K - 1 by default
    assert skeleton(skeleton_edges=5) == [(1, 2), (0, 3), (2, 3), (0, 1), (0, 2)]
    assert skeleton(skeleton_edges=1) == [(1, 2)]
    assert skeleton(skeleton_edges=0) == []  # keypoints only
    with pytest.raises(ConfigError, match="skeleton_edges"):
        skeleton(skeleton_edges=-1)
