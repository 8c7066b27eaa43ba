"""The weak method: probes on toy classifiers, classifiers, labels, training and annotation."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from keylink.config import ConfigError, RunConfig, WeakConfig
from keylink.data.dataset import load_folder
from keylink.data.images import Resize, list_images
from keylink.data.labels import LabelError, LabelWarning, read_labels
from keylink.engine import RunError
from keylink.methods.weak.pipeline import WeakAnnotator, annotate_weak, content_mask
from keylink.methods.weak.probes import (
    _GuidedReLU,
    combine,
    guided_backprop,
    guided_relus,
    normalise,
    occluder_positions,
    occlusion_sensitivity,
)
from keylink.methods.weak.train import load_weak_run, split_indices, train_classifier
from keylink.models import CLASSIFIERS, create_model
from keylink.models.classifier import _rename, fold_batchnorm, load_pretrained, vgg16


# ---------------------------------------------------------------- a toy classifier
class MotifNet(nn.Module):
    """Class 1 when a red 6 x 6 motif is somewhere in the image: its logit grows with the best
    match of a red-minus-green box filter; class 0 has a constant logit."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 6, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0] = 1 / 36
            self.conv.weight[0, 1] = -1 / 36
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveMaxPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.pool(self.relu(self.conv(x))).flatten(1)
        return torch.cat([torch.zeros_like(s), 12 * s - 3], dim=1)


def motif_image(x: int, y: int, size: int = 32) -> torch.Tensor:
    image = torch.full((3, size, size), 0.5)
    image[:, y : y + 6, x : x + 6] = torch.tensor([0.95, 0.05, 0.05]).view(3, 1, 1)
    return image


@pytest.mark.parametrize("fill", ["random", "grey"])
@pytest.mark.parametrize(("x", "y"), [(20, 9), (4, 22), (13, 13)])
def test_occlusion_sensitivity_peaks_on_the_motif(x, y, fill):
    model = MotifNet().eval()
    images = motif_image(x, y)[None]
    assert model(images).argmax().item() == 1
    maps, target = occlusion_sensitivity(
        model,
        images,
        occluder=8,
        stride=4,
        fill=fill,
        batch_size=10,
        generator=torch.Generator().manual_seed(0),
    )
    assert maps.shape == (1, 32, 32) and target.tolist() == [1]
    assert (maps >= 0).all()
    peak_y, peak_x = np.unravel_index(maps[0].argmax().item(), (32, 32))
    assert x - 2 <= peak_x <= x + 7 and y - 2 <= peak_y <= y + 7
    # Far from the motif, hiding the image changes nothing.
    far = maps[0].clone()
    far[max(0, y - 8) : y + 14, max(0, x - 8) : x + 14] = 0
    assert far.max() < 0.1 * maps.max()


def test_occluder_positions_cover_the_whole_image():
    assert occluder_positions(128, 16, 8) == list(range(0, 113, 8))  # 15 positions
    assert occluder_positions(30, 16, 8) == [0, 8, 14]  # a last one flush with the border
    with pytest.raises(ValueError):
        occluder_positions(8, 16, 8)


def test_guided_relu_passes_only_where_input_and_gradient_are_positive():
    x = torch.tensor([1.0, 2.0, -1.0, -2.0, 0.5], requires_grad=True)
    y = _GuidedReLU.apply(x)
    torch.testing.assert_close(y, x.detach().clamp(min=0))
    y.backward(torch.tensor([3.0, -1.0, 2.0, -4.0, 0.0]))
    torch.testing.assert_close(x.grad, torch.tensor([3.0, 0.0, 0.0, 0.0, 0.0]))


@pytest.mark.parametrize("inplace", [False, True])
def test_guided_backprop_keeps_only_positive_gradients_at_relus(inplace):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(inplace=inplace), nn.Linear(8, 3))
    x = torch.randn(4, 5)
    target = torch.tensor([0, 1, 2, 1])
    grad, _ = guided_backprop(model, x, target)
    w1, b1, w2 = model[0].weight, model[0].bias, model[2].weight
    with torch.no_grad():
        hidden = x @ w1.T + b1
        incoming = w2[target]  # d logit / d hidden, per sample
        passed = incoming * ((hidden > 0) & (incoming > 0))
        expected = passed @ w1
    torch.testing.assert_close(grad, expected)
    # Plain backpropagation differs (it passes negative gradients too) and hooks are gone after.
    xr = x.clone().requires_grad_(True)
    model(xr).gather(1, target.view(-1, 1)).sum().backward()
    assert not torch.allclose(xr.grad, grad)
    assert not any(m._forward_hooks for m in model.modules())
    with guided_relus(model):
        assert model[1]._forward_hooks
    assert not model[1]._forward_hooks


def test_combine_normalises_weights_and_masks():
    occ = torch.zeros(1, 16, 16)
    occ[0, 4, 4] = 2.0
    fine = torch.zeros(1, 16, 16)
    fine[0, 4, 4] = 5.0
    fine[0, 12, 12] = 5.0
    combined, likelihood = combine(occ, fine, (1.0, 1.0), guided_blur=0.0, gain=10, offset=0.5)
    assert combined[0, 4, 4] == pytest.approx(1.0)  # high in both maps
    assert combined[0, 12, 12] == pytest.approx(0.5)  # high in one only
    assert likelihood[0, 4, 4] > 0.99 and likelihood[0, 12, 12] == pytest.approx(0.5)
    assert likelihood[0, 0, 0] < 0.01
    mask = torch.ones(16, 16, dtype=torch.bool)
    mask[8:] = False
    combined, _ = combine(occ, fine, (1.0, 1.0), guided_blur=0.0, mask=mask)
    assert combined[0, 12, 12] == 0
    torch.testing.assert_close(normalise(torch.full((2, 3, 3), 4.0)), torch.zeros(2, 3, 3))


# ---------------------------------------------------------------- classifiers
@pytest.mark.parametrize("name", ["classifier_vgg", "classifier_tiny"])
def test_classifiers_shapes_and_batchnorm_folding(name):
    torch.manual_seed(0)
    model = create_model(name, 3, 4)
    model.train()
    model(torch.rand(8, 3, 64, 64))  # non-trivial running statistics
    model.eval()
    x = torch.rand(2, 3, 64, 64)
    expected = model(x)
    assert expected.shape == (2, 4)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    torch.testing.assert_close(folded(x), expected, atol=1e-4, rtol=1e-4)


def test_vgg16_takes_torchvision_names():
    assert "vgg16" in CLASSIFIERS
    assert _rename("module.features.28.bias") == "features.28.bias"
    assert _rename("classifier.6.weight") == "head.9.weight"
    with torch.device("meta"):
        model = vgg16(3, 5)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["features.0.weight"] == (64, 3, 3, 3)
    assert shapes["features.28.weight"] == (512, 512, 3, 3)
    assert shapes["head.3.weight"] == (4096, 25088)
    assert shapes["head.9.weight"] == (5, 4096)


def test_load_pretrained_skips_a_mismatched_head(tmp_path):
    from safetensors.torch import save_file

    source = create_model("classifier_tiny", 3, 7)
    state = {f"module.{k}": v for k, v in source.state_dict().items()}
    save_file(state, str(tmp_path / "w.safetensors"))
    target = create_model("classifier_tiny", 3, 2)
    missing = load_pretrained(target, tmp_path / "w.safetensors")
    assert set(missing) == {"head.3.weight", "head.3.bias"}
    torch.testing.assert_close(target.features[0].weight, source.features[0].weight)
    save_file({"foo.weight": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="no layer fits"):
        load_pretrained(target, tmp_path / "other.safetensors")


# ---------------------------------------------------------------- labels
def _csv(path, text):
    path.write_text(text)
    return path


def test_labels_from_a_csv_detect_the_image_column(motif_folder):
    found = read_labels(motif_folder / "images", motif_folder / "labels.csv", "colour")
    assert found.classes == ["blue", "red"]
    assert len(found) == 24 and found.counts() == {"blue": 12, "red": 12}
    assert found.paths[0].name == "img_00.png" and found.labels[0] == 1
    # A single non-image column is the class column.
    assert read_labels(motif_folder / "images", motif_folder / "labels.csv").classes == [
        "blue",
        "red",
    ]


def test_labels_in_the_hands11k_layout_with_rows_for_absent_images(motif_folder, tmp_path):
    rows = ["id,age,aspectOfHand,imageName,irregularities"]
    for i in range(24):
        side = "dorsal right" if i % 3 else "palmar left"
        rows.append(f'"{i:07d}",27,"{side}","img_{i:02d}.png",0')
    rows.append('"9999999",30,"dorsal right","not_here.jpg",0')
    labels = _csv(tmp_path / "HandInfo.csv", "\n".join(rows) + "\n")
    with pytest.warns(LabelWarning, match="not_here.jpg"):
        found = read_labels(motif_folder / "images", labels, "aspectOfHand")
    assert found.classes == ["dorsal right", "palmar left"]
    assert found.missing == ["not_here.jpg"] and len(found) == 24


def test_label_errors_are_clear(motif_folder, tmp_path):
    images = motif_folder / "images"
    with pytest.raises(LabelError, match="no column 'shape'.*file, colour"):
        read_labels(images, motif_folder / "labels.csv", "shape")
    one = _csv(tmp_path / "one.csv", "file,colour\nimg_00.png,red\nimg_01.png,red\n")
    with pytest.raises(LabelError, match="at least two classes"):
        read_labels(images, one, "colour")
    none = _csv(tmp_path / "none.csv", "file,colour\na.png,red\nb.png,blue\n")
    with pytest.raises(LabelError, match="none of the 2 images"):
        read_labels(images, none, "colour")
    clash = _csv(tmp_path / "clash.csv", "file,colour\nimg_00.png,red\nimg_00.png,blue\n")
    with pytest.raises(LabelError, match="both"):
        read_labels(images, clash, "colour")
    many = _csv(tmp_path / "many.csv", "file,colour,size\nimg_00.png,red,big\n")
    with pytest.raises(LabelError, match="--label-column"):
        read_labels(images, many)
    with pytest.raises(LabelError, match="sub-folder"):
        read_labels(images)
    assert issubclass(LabelError, ConfigError)  # the command line reports it as an error


def test_labels_from_class_subfolders(tmp_path, motif_folder):
    import shutil

    for i, colour in enumerate(["red", "blue"] * 3):
        (tmp_path / colour).mkdir(exist_ok=True)
        shutil.copy(motif_folder / "images" / f"img_{i:02d}.png", tmp_path / colour)
    found = read_labels(tmp_path)
    assert found.classes == ["blue", "red"] and found.counts() == {"blue": 3, "red": 3}


def test_split_holds_out_a_share_of_every_class():
    labels = np.array([0] * 50 + [1] * 10 + [2] * 2)
    train, val = split_indices(labels, 0.1, seed=0)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(62))
    assert np.bincount(labels[val]).tolist() == [5, 1, 1]
    np.testing.assert_array_equal(split_indices(labels, 0.1, seed=0)[1], val)


def test_weak_config_validates_and_old_runs_load():
    with pytest.raises(ConfigError, match="classifier"):
        WeakConfig(arch="nope").validate()
    with pytest.raises(ConfigError, match="keep"):
        WeakConfig(keep=0).validate()
    with pytest.raises(ConfigError, match="odd"):
        WeakConfig(forstner_window=4).validate()
    with pytest.raises(ConfigError, match="method"):
        RunConfig(images="x", method="other").validate()
    old = json.loads(RunConfig(images="x").to_json())
    del old["weak"]
    assert RunConfig.from_dict(old).weak == WeakConfig()


# ---------------------------------------------------------------- training and annotation
def _train(motif_folder, run, steps=4, resume=False, **settings):
    labelled = read_labels(motif_folder / "images", motif_folder / "labels.csv", "colour")
    cfg = WeakConfig(
        arch="classifier_tiny",
        image_size=32,
        steps=steps,
        batch_size=8,
        val_share=0.25,
        eval_every=2,
        checkpoint_every=2,
        log_every=1,
        nms_radius=4,
        forstner_window=5,
        **settings,
    )
    config = RunConfig(images=str(motif_folder / "images"), method="weak", weak=cfg)
    data = load_folder(labelled.paths, Resize(32), progress=False)
    return train_classifier(config, labelled, data, run, resume=resume, progress=False)


def test_training_writes_a_resumable_run(motif_folder, tmp_path):
    run = tmp_path / "run"
    result = _train(motif_folder, run)
    assert result.steps == 4 and result.val_images == 6 and result.train_images == 18
    assert 0.0 <= result.val_accuracy <= 1.0
    config = json.loads((run / "config.json").read_text())
    assert config["method"] == "weak" and config["weak"]["classes"] == ["blue", "red"]
    assert (run / "checkpoints" / "latest").read_text() == "step_0000004"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("val_accuracy" in r for r in records) and any("train_accuracy" in r for r in records)
    assert len(json.loads((run / "split.json").read_text())["held_out"]) == 6
    with pytest.raises(RunError, match="--resume"):
        _train(motif_folder, run)
    assert _train(motif_folder, run, steps=6, resume=True).steps == 6
    loaded_config, model = load_weak_run(run)
    assert loaded_config.weak.classes == ["blue", "red"] and not model.training


def test_annotation_finds_keypoints_with_confidences_and_pictures(motif_folder, tmp_path):
    run = tmp_path / "run"
    _train(motif_folder, run, steps=2)
    out = tmp_path / "ann"
    result = annotate_weak(run, motif_folder / "images", out, batch_size=5, progress=False)
    assert len(result.paths) == 24 and result.probabilities.shape == (24, 2)
    for points, conf, moved in zip(
        result.keypoints, result.confidence, result.refined, strict=True
    ):
        assert len(points) >= 1 and points.shape == (len(conf), 2) and moved.shape == conf.shape
        assert np.all((points >= 0) & (points <= 32))
        assert np.all((conf > 0) & (conf < 1)) and np.all(np.diff(conf) <= 0)
    doc = json.loads((out / "annotations.json").read_text())
    assert len(doc["annotations"]) == 24 and doc["info"]["classes"] == ["blue", "red"]
    ann = doc["annotations"][0]
    assert ann["predicted_class"] in ("blue", "red") and 0 <= ann["class_probability"] <= 1
    k = len(doc["categories"][0]["keypoints"])
    assert len(ann["keypoints"]) == 3 * k and len(ann["keypoint_scores"]) == k
    pictures = sorted((out / "overlays").glob("*.png"))
    assert len(pictures) == 24
    from PIL import Image

    assert Image.open(pictures[0]).size[0] > 3 * Image.open(pictures[0]).size[1]  # 4 panels


def test_keypoints_stay_out_of_letterbox_padding():
    resize = Resize(32, "letterbox")
    mask = content_mask(resize, 64, 32)  # a wide image: grey bands above and below
    assert mask[8:24].all() and not mask[:8].any() and not mask[24:].any()
    cfg = WeakConfig(arch="classifier_tiny", image_size=32, classes=["a", "b"], nms_radius=3)
    annotator = WeakAnnotator(
        create_model("classifier_tiny", 3, 2).eval(), RunConfig("x", weak=cfg)
    )
    likelihood = np.random.default_rng(0).uniform(0, 1, (32, 32))
    image = np.full((32, 32, 3), 128, np.uint8)
    points, conf, _ = annotator.keypoints(likelihood, image, mask)
    assert len(points) > 0 and np.all((points[:, 1] >= 8) & (points[:, 1] <= 24))


@pytest.mark.parametrize(
    ("folder", "table", "column", "classes"),
    [
        ("mtfl-train", "attributes.csv", "pose", 5),
        ("hands11k", "HandInfo.csv", "aspectOfHand", 4),
    ],
)
def test_labels_of_the_shared_data_sets(folder, table, column, classes):
    root = Path(__file__).resolve().parents[3] / "shared" / "data" / folder
    if not root.is_dir():
        pytest.skip(f"needs the shared benchmark data: {root} is absent")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LabelWarning)  # hands11k lists 11k rows for 1.1k images
        found = read_labels(root / "images", root / table, column)
    assert len(found.classes) == classes
    assert len(found) == len(list_images(root / "images"))  # every image has its class
