import pytest
import torch

from keylink.api import make_config
from keylink.config import ConfigError, RunConfig, TrainConfig, apply_overrides, default_preset


def test_overrides_parse_by_field_type():
    config = apply_overrides(
        RunConfig(images="x"),
        ["equivariance=0.5", "model.edge_saturate=true", "threads=1", "thickness=4e-3"],
    )
    assert config.train.equivariance == 0.5
    assert config.model.edge_saturate is True
    assert config.train.threads == 1
    assert config.model.thickness == 4e-3


@pytest.mark.parametrize("item", ["nonsense=1", "equivariance", "model.lr=1"])
def test_unknown_or_malformed_overrides_are_refused(item):
    with pytest.raises(ConfigError):
        apply_overrides(RunConfig(images="x"), [item])


@pytest.mark.parametrize(
    "term",
    [
        "separation",
        "separation_sigma",
        "equivariance",
        "edge_length_decay",
        "flip_symmetry",
    ],
)
def test_negative_loss_term_weights_are_refused(term):
    config = apply_overrides(RunConfig(images="x"), [f"{term}=-0.1"])
    with pytest.raises(ConfigError, match=term):
        config.validate()


@pytest.mark.parametrize(
    "item",
    [
        "skeleton_threshold=1.5",
        "skeleton_edges=-1",
        "separation_kernel=box",
        "flip_symmetry_at=-0.1",
    ],
)
def test_bad_skeleton_and_separation_settings_are_refused(item):
    config = apply_overrides(RunConfig(images="x"), [item])
    with pytest.raises(ConfigError, match=item.split("=")[0].replace("_", ".")):
        config.validate()


def saved_train(**train) -> dict:
    return {"images": "x", "train": train}


def test_runs_saved_with_mirror_recruitment_still_load():
    # Mirror recruitment was removed; the run folders it wrote must still annotate and resume.
    off = RunConfig.from_dict(saved_train(mirror_recruit=0.0, mirror_at=0.4, mirror_steps=200))
    assert off.validate() is off
    with pytest.warns(UserWarning, match="mirror recruitment"):
        RunConfig.from_dict(saved_train(mirror_recruit=1.0, mirror_at=0.4, mirror_steps=200))


def test_flip_symmetry_saved_before_its_delayed_start_resumes_from_step_zero():
    assert RunConfig.from_dict(saved_train(flip_symmetry=10.0)).train.flip_symmetry_at == 0.0
    assert TrainConfig().flip_symmetry_at == 0.35


def test_unknown_saved_train_settings_are_refused():
    with pytest.raises(ConfigError, match="no_such_setting"):
        RunConfig.from_dict(saved_train(no_such_setting=1))


def test_the_preset_follows_the_device_the_run_trains_on():
    assert make_config("images", 4, device="cpu").train.preset == "cpu"  # also on a GPU machine
    assert make_config("images", 4, device="cuda:0").train.preset == "paper"
    assert default_preset() == ("paper" if torch.cuda.is_available() else "cpu")
    assert make_config("images", 4, preset_name="cpu", device="cuda").train.preset == "cpu"
