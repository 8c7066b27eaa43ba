import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from keylink import engine
from keylink.config import ModelConfig, RunConfig, TrainConfig
from keylink.data.dataset import from_arrays
from keylink.engine import Pace, RunError, latest_checkpoint, load_run, train
from keylink.losses import flip_symmetry_loss


def tiny_config(
    steps: int, edge_saturate: bool = False, edge_normalize: bool = False, **train_kw
) -> RunConfig:
    model = ModelConfig(
        keypoints=4,
        image_size=32,
        detector="detector_tiny",
        decoder="decoder_tiny",
        mask_grid=8,
        edge_saturate=edge_saturate,
        edge_normalize=edge_normalize,
    )
    train_cfg = TrainConfig(
        steps=steps, batch_size=4, warmup_steps=2, log_every=1, checkpoint_every=2, **train_kw
    )
    return RunConfig(images="memory", model=model, train=train_cfg)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return from_arrays(rng.integers(0, 255, (10, 32, 32, 3), dtype=np.uint8))


def weights(run_dir):
    return load_file(str(latest_checkpoint(run_dir) / "model.safetensors"))


# The cpu preset's extras (saturating edges, the equivariance term) draw random warps too.
@pytest.mark.parametrize(
    "extras",
    [
        {},
        {"edge_saturate": True, "equivariance": 1.0, "warp_elastic": 0.05},
        {"edge_length_decay": 0.3, "edge_lr": 1e-4},
        {
            "edge_normalize": True,
            "edge_length_decay": 1.0,
            "separation": 0.1,
            "separation_kernel": "laplace",
            "flip_symmetry": 10.0,
            "flip_symmetry_at": 0.1,  # on from step 1 both straight and interrupted at 3 of 6
        },
    ],
    ids=["plain", "cpu-extras", "length-decay", "figure-settings"],
)
def test_resume_gives_the_same_state_as_an_uninterrupted_run(tmp_path, data, extras):
    # On the CPU, where runs repeat exactly (CUDA kernels are not bitwise deterministic).
    extras = {**extras, "device": "cpu"}
    straight = train(tiny_config(6, **extras), data, tmp_path / "a", progress=False)
    assert straight.steps == 6
    train(tiny_config(3, **extras), data, tmp_path / "b", progress=False)
    resumed = tiny_config(6, **extras)
    result = train(resumed, data, tmp_path / "b", resume=True, progress=False)
    assert result.steps == 6
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_flip_symmetry_trains_the_detector(tmp_path, data):
    train(tiny_config(2), data, tmp_path / "off", progress=False)
    on_from_start = tiny_config(2, flip_symmetry=10.0, flip_symmetry_at=0.0)
    train(on_from_start, data, tmp_path / "on", progress=False)
    off, on = weights(tmp_path / "off"), weights(tmp_path / "on")
    detector = [k for k in on if k.startswith("detector.")]
    assert detector and any(not torch.equal(off[k], on[k]) for k in detector)


def test_same_seed_same_run_on_the_cpu(tmp_path, data):
    train(tiny_config(3, seed=5, device="cpu"), data, tmp_path / "a", progress=False)
    train(tiny_config(3, seed=5, device="cpu"), data, tmp_path / "b", progress=False)
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_length_decay_turns_edges_down_in_training(tmp_path, data):
    train(tiny_config(3, edge_lr=1e-3), data, tmp_path / "a", progress=False)
    train(
        tiny_config(3, edge_lr=1e-3, edge_length_decay=100.0), data, tmp_path / "b", progress=False
    )
    plain, decayed = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert (decayed["graph.theta"] < plain["graph.theta"]).all()


def test_normalized_edges_do_not_drift_down_under_the_length_decay(tmp_path, data):
    config = tiny_config(3, edge_normalize=True, edge_lr=1e-3, edge_length_decay=100.0)
    train(config, data, tmp_path / "a", progress=False)
    theta = weights(tmp_path / "a")["graph.theta"]
    # The strongest edge stays at its starting weight; the others keep their relative strength.
    assert float(theta.max()) * config.model.edge_scale == pytest.approx(
        np.log(np.expm1(config.model.edge_init)), abs=1e-3
    )
    assert float(theta.min()) < float(theta.max())
    # The log counts edges as drawn: the strongest always draws at 1, however faint its weight.
    log = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert all(record["edges_on"] >= 1 for record in log)


def test_run_folder_contents_and_loading(tmp_path, data):
    run = tmp_path / "run"
    train(tiny_config(4), data, run, progress=False)
    assert (run / "config.json").is_file()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4 and '"loss"' in lines[0]
    assert (run / "checkpoints" / "latest").read_text() == "step_0000004"
    assert not list((run / "checkpoints").glob(".tmp-*"))
    assert len(list((run / "checkpoints").glob("step_*"))) <= 2
    config, model = load_run(run)
    assert config.model.keypoints == 4 and not model.training


def test_refuses_to_overwrite_a_run_and_to_resume_nothing(tmp_path, data):
    train(tiny_config(2), data, tmp_path / "run", progress=False)
    with pytest.raises(RunError, match="--resume"):
        train(tiny_config(2), data, tmp_path / "run", progress=False)
    with pytest.raises(RunError, match="no checkpoint"):
        train(tiny_config(2), data, tmp_path / "empty", resume=True, progress=False)
    with pytest.raises(RunError, match="not a keylink run"):
        load_run(tmp_path / "empty")


def test_interrupt_saves_a_checkpoint_that_resumes(tmp_path, data):
    calls = {"n": 0}

    def interrupt(model, step, *_):
        calls["n"] += 1
        if step == 3:
            raise KeyboardInterrupt

    cfg = tiny_config(8)
    cfg.train.sample_every = 1
    result = train(cfg, data, tmp_path / "run", progress=False, on_sample=interrupt)
    assert result.stopped_by == "interrupt" and result.steps == 3
    assert latest_checkpoint(tmp_path / "run").name == "step_0000003"
    result = train(tiny_config(5), data, tmp_path / "run", resume=True, progress=False)
    assert result.steps == 5


def test_minutes_bound_stops_early(tmp_path, data):
    result = train(tiny_config(10_000, minutes=0.0005), data, tmp_path / "run", progress=False)
    assert result.stopped_by == "minutes"
    assert 1 <= result.steps < 10_000


def test_learning_rate_warms_up_holds_then_decays_to_zero():
    from keylink.engine import scheduled_lr

    assert scheduled_lr(1.0, 0, 10, 0.0, 0.3) == pytest.approx(0.1)
    assert scheduled_lr(1.0, 50, 10, 0.5, 0.3) == 1.0
    assert scheduled_lr(1.0, 85, 10, 0.85, 0.3) == pytest.approx(0.5)
    assert scheduled_lr(1.0, 100, 10, 1.0, 0.3) == pytest.approx(0.0)
    assert scheduled_lr(1.0, 100, 10, 1.0, 0.0) == 1.0  # no decay: the paper's constant rate


@pytest.mark.parametrize(("pace", "on_steps"), [(1.0, 6), (2.0, 7)])
def test_flip_symmetry_starts_at_its_share_of_the_run(tmp_path, data, monkeypatch, pace, on_steps):
    # At 25% of the run, measured as for the lr: a run whose time bound ends it halfway (pace 2:
    # twice the share of its steps) starts at that share of its time, not of its steps.
    monkeypatch.setattr(Pace, "progress", lambda self, step, steps: min(1.0, pace * step / steps))
    calls = []

    def counted(keypoints, flipped):
        calls.append(1)
        return flip_symmetry_loss(keypoints, flipped)

    monkeypatch.setattr(engine, "flip_symmetry_loss", counted)
    cfg = tiny_config(8, flip_symmetry=1.0, flip_symmetry_at=0.25)
    train(cfg, data, tmp_path, progress=False)
    assert len(calls) == on_steps
