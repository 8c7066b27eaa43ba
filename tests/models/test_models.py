import pytest
import torch

from keylink.models import CLASSIFIERS, count_parameters, create_model, list_models


@pytest.mark.parametrize("name", [n for n in list_models() if n not in CLASSIFIERS])
def test_every_model_builds_and_runs(name, device):
    cin, cout = (3, 5) if name.startswith("detector") else (4, 3)
    model = create_model(name, cin, cout).to(device).eval()
    x = torch.rand(2, cin, 64, 64, device=device)
    with torch.no_grad():
        y = model(x)
    stride = 1 if name.startswith("decoder") else model.stride
    assert y.shape == (2, cout, 64 // stride, 64 // stride)
    assert torch.isfinite(y).all()


def test_paper_sizes_match_the_paper():
    assert 7.0e6 < count_parameters(create_model("detector_paper", 3, 32)) < 8.5e6
    assert 16e6 < count_parameters(create_model("decoder_paper", 4, 3)) < 20e6
    assert create_model("detector_paper", 3, 8)(torch.rand(1, 3, 128, 128)).shape[-1] == 32


def test_unknown_model_names_the_known_ones():
    with pytest.raises(ValueError, match="detector_cpu"):
        create_model("resnet9000", 3, 3)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_every_classifier_gives_one_logit_per_class(name, device):
    model = create_model(name, 3, 4).to(device).eval()
    with torch.no_grad():
        y = model(torch.rand(2, 3, 64, 64, device=device))
    assert y.shape == (2, 4)
    assert torch.isfinite(y).all()
