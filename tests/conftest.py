"""Shared fixtures: device and dtype parametrisation (kornia style), synthetic images on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["f32", "f64"])
def dtype(request) -> torch.dtype:
    return request.param


@pytest.fixture(scope="session")
def figure_folder(tmp_path_factory) -> Path:
    """A small folder of synthetic figure images (PNG) with their true joints."""
    from keylink.data.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("figures"), n=24, size=64, seed=3)


@pytest.fixture(scope="session")
def motif_folder(tmp_path_factory) -> Path:
    """A tiny class-labelled set for the weak method: 32 px images of a noisy background with one
    8 x 8 square, red (class "red") or blue (class "blue"). Writes images/*.png, labels.csv
    (file,colour) and corners.csv (the square's top-left and bottom-right corners as landmarks,
    plain-CSV pixel indices)."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("motifs")
    (root / "images").mkdir()
    rng = np.random.default_rng(5)
    labels = ["file,colour"]
    corners = ["image,top_left_x,top_left_y,bottom_right_x,bottom_right_y"]
    for i in range(24):
        image = (rng.uniform(90, 160, (32, 32, 3)) + rng.normal(0, 8, (32, 32, 3))).clip(0, 255)
        x, y = (int(v) for v in rng.integers(2, 22, 2))
        colour = "red" if i % 2 == 0 else "blue"
        image[y : y + 8, x : x + 8] = (230, 30, 30) if colour == "red" else (30, 30, 230)
        name = f"img_{i:02d}.png"
        Image.fromarray(image.astype(np.uint8)).save(root / "images" / name)
        labels.append(f"{name},{colour}")
        # Corner pixels' centres sit half a pixel inside the square's true corners.
        corners.append(f"{name},{x},{y},{x + 7},{y + 7}")
    (root / "labels.csv").write_text("\n".join(labels) + "\n")
    (root / "corners.csv").write_text("\n".join(corners) + "\n")
    return root
