from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from keylink.io.coco import Category, coco_document, read_coco_keypoints, write_json_atomic

CATEGORY = Category("bird", ["beak", "eye", "tail"], [(0, 1), (1, 2)])
IMAGES = [("a.jpg", 100, 80), ("sub/b.png", 50, 60)]


def _document(threshold: float = 0.0) -> dict:
    keypoints = np.array(
        [
            [[10.123, 20.456], [30.0, 40.0], [99.5, 79.5]],
            [[-5.0, 10.0], [np.nan, np.nan], [70.0, 30.0]],  # off-image, missing, right of image
        ]
    )
    confidences = np.array([[0.9, 0.5, 0.2], [0.8, 0.0, 0.6]], dtype=np.float32)
    return coco_document(
        IMAGES,
        keypoints,
        confidences,
        CATEGORY,
        visibility_threshold=threshold,
        extra={"method": "autolink", "seed": np.int64(3)},
    )


def test_document_structure() -> None:
    doc = _document()
    assert doc["info"]["method"] == "autolink" and doc["info"]["seed"] == 3
    assert doc["images"] == [
        {"id": 1, "file_name": "a.jpg", "width": 100, "height": 80},
        {"id": 2, "file_name": "sub/b.png", "width": 50, "height": 60},
    ]
    (cat,) = doc["categories"]
    assert cat == {
        "id": 1,
        "name": "bird",
        "supercategory": "bird",
        "keypoints": ["beak", "eye", "tail"],
        "skeleton": [[1, 2], [2, 3]],  # 1-based in the file
    }
    first, second = doc["annotations"]
    assert first["id"] == 1 and first["image_id"] == 1 and first["category_id"] == 1
    assert first["keypoints"] == [10.12, 20.46, 2, 30.0, 40.0, 2, 99.5, 79.5, 2]
    assert first["num_keypoints"] == 3 and first["iscrowd"] == 0
    assert first["keypoint_scores"] == pytest.approx([0.9, 0.5, 0.2])
    assert first["score"] == pytest.approx(1.6 / 3, abs=1e-4)
    assert first["bbox"] == [10.12, 20.46, 89.38, 59.04]
    assert first["area"] == pytest.approx(89.38 * 59.04, abs=0.01)
    # Missing keypoint: [0, 0, 0] and not counted; bbox clipped to the 50 x 60 image.
    assert second["keypoints"] == [-5.0, 10.0, 2, 0, 0, 0, 70.0, 30.0, 2]
    assert second["num_keypoints"] == 2
    assert second["bbox"] == [0.0, 10.0, 50.0, 20.0]
    json.dumps(doc, allow_nan=False)  # plain JSON types only


def test_visibility_threshold() -> None:
    doc = _document(threshold=0.55)
    assert [a["keypoints"][2::3] for a in doc["annotations"]] == [[2, 1, 1], [2, 0, 2]]
    assert doc["annotations"][0]["num_keypoints"] == 3  # v = 1 still counts as labelled


def test_shape_validation() -> None:
    with pytest.raises(ValueError, match="keypoints must have shape"):
        coco_document(IMAGES, np.zeros((2, 2, 2)), np.zeros((2, 3)), CATEGORY)
    with pytest.raises(ValueError, match="confidences"):
        coco_document(IMAGES, np.zeros((2, 3, 2)), np.zeros((3, 2)), CATEGORY)
    with pytest.raises(ValueError, match="skeleton edge"):
        coco_document(
            IMAGES, np.zeros((2, 3, 2)), np.zeros((2, 3)), Category("x", ["a"] * 3, [(0, 3)])
        )


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "out" / "annotations.json"
    write_json_atomic(path, _document(threshold=0.55))
    images, keypoints, category = read_coco_keypoints(path)
    assert [r["file_name"] for r in images] == ["a.jpg", "sub/b.png"]
    assert [(r["width"], r["height"]) for r in images] == [(100, 80), (50, 60)]
    assert category == CATEGORY
    assert keypoints.shape == (2, 3, 3)
    np.testing.assert_allclose(keypoints[0], [[10.12, 20.46, 2], [30, 40, 1], [99.5, 79.5, 1]])
    assert np.isnan(keypoints[1, 1, :2]).all() and keypoints[1, 1, 2] == 0
    np.testing.assert_allclose(keypoints[1, [0, 2]], [[-5, 10, 2], [70, 30, 2]])
    on_disk = json.loads(path.read_text())
    assert on_disk["categories"][0]["skeleton"] == [[1, 2], [2, 3]]


def test_read_first_annotation_per_image_and_unannotated(tmp_path: Path) -> None:
    doc = _document()
    doc["images"].append({"id": 7, "file_name": "c.jpg", "width": 5, "height": 5})
    extra = dict(doc["annotations"][0], id=3, keypoints=[1, 1, 2] * 3)
    doc["annotations"].append(extra)  # second annotation of image 1: ignored
    path = tmp_path / "a.json"
    write_json_atomic(path, doc)
    images, keypoints, _ = read_coco_keypoints(path)
    assert len(images) == 3
    np.testing.assert_allclose(keypoints[0, 0], [10.12, 20.46, 2])
    assert np.isnan(keypoints[2, :, :2]).all() and (keypoints[2, :, 2] == 0).all()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("annotations"), '"annotations"'),
        (lambda d: d["categories"][0].pop("keypoints"), "no category defines"),
        (lambda d: d["categories"][0].update(skeleton=[[0, 1]]), "skeleton edge"),
        (lambda d: d["annotations"][0].update(keypoints=[1, 2, 2]), "must be 9 numbers"),
        (lambda d: d["annotations"][0].update(image_id=99), "unknown image id 99"),
        (lambda d: d["images"][1].update(id=1), "duplicate image id"),
        (lambda d: d["annotations"][0]["keypoints"].__setitem__(2, 5), "visibility"),
        (lambda d: d["annotations"][0]["keypoints"].__setitem__(0, "x"), "must be numbers"),
    ],
)
def test_read_malformed(tmp_path: Path, mutate, message: str) -> None:
    doc = _document()
    mutate(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=message) as info:
        read_coco_keypoints(path)
    assert "bad.json" in str(info.value)


def test_read_not_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"images": [')
    with pytest.raises(ValueError, match="broken.json.*not valid JSON"):
        read_coco_keypoints(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a JSON object"):
        read_coco_keypoints(path)


def test_atomic_write_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_atomic_write_failure_keeps_previous_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "x.json"
    write_json_atomic(path, {"old": True})
    from keylink.io import files

    def crash(fd):  # the new data is written, then the machine "fails" before the rename
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(files.os, "fsync", crash)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_json_atomic(path, {"new": [1, 2, 3]})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]
    # Values JSON cannot represent fail before the target is touched as well.
    with pytest.raises(ValueError):
        write_json_atomic(path, {"bad": float("nan")})
    assert json.loads(path.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]
