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
