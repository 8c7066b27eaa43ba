from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keylink.io.groundtruth import GroundTruth, GroundTruthError, read_ground_truth

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
MTFL = SHARED_DATA / "mtfl-train" / "annotations.json"
OPENFIELD = SHARED_DATA / "dlc-openfield"
OPENFIELD_CSV = OPENFIELD / "labeled-data" / "m4s1" / "CollectedData_Pranav.csv"


def _png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 3), (10, 20, 30)).save(path)
    return path


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------------------------
# COCO


def _coco(**changes) -> dict:
    doc = {
        "images": [
            {"id": 7, "file_name": "a.png", "width": 4, "height": 3},
            {"id": 8, "file_name": "sub/b.png", "width": 4, "height": 3},
            {"id": 9, "file_name": "c.png", "width": 4, "height": 3},  # no annotation
        ],
        "annotations": [
            {"id": 70, "image_id": 7, "category_id": 1, "keypoints": [1.5, 2.5, 2, 3, 1, 1]},
            {"id": 80, "image_id": 8, "category_id": 1, "keypoints": [0, 0, 0, 0.25, 0.75, 2]},
        ],
        "categories": [
            {"id": 1, "name": "bird", "keypoints": ["beak", "tail"], "skeleton": [[1, 2]]}
        ],
    }
    doc.update(changes)
    return doc


def _coco_file(tmp_path: Path, doc: dict | None = None, images: bool = True) -> Path:
    if images:
        for name in ("a.png", "sub/b.png", "c.png"):
            _png(tmp_path / name)
    return _write(tmp_path / "gt.json", json.dumps(doc or _coco(), indent=1))


def test_coco_round_trip(tmp_path: Path) -> None:
    path = _coco_file(tmp_path)
    gt = read_ground_truth(path)
    assert gt.names == ["beak", "tail"]
    assert gt.skeleton == [(0, 1)]  # 1-based in the file
    assert gt.source == path
    assert len(gt) == 3
    assert gt.image_paths == [(tmp_path / n).resolve() for n in ("a.png", "sub/b.png", "c.png")]
    assert gt.points.dtype == np.float64 and gt.points.shape == (3, 2, 2)
    np.testing.assert_array_equal(gt.points[0], [[1.5, 2.5], [3, 1]])  # unchanged, v=1 kept
    assert np.isnan(gt.points[1, 0]).all()  # v == 0
    np.testing.assert_array_equal(gt.points[1, 1], [0.25, 0.75])
    assert np.isnan(gt.points[2]).all()  # image without annotation


def test_coco_offset_is_not_applied(tmp_path: Path) -> None:
    gt = read_ground_truth(_coco_file(tmp_path), pixel_centre_offset=3.0)
    np.testing.assert_array_equal(gt.points[0], [[1.5, 2.5], [3, 1]])


def test_coco_several_annotations_take_first_and_warn_once(tmp_path: Path) -> None:
    doc = _coco()
    doc["annotations"] += [
        {"id": 71, "image_id": 7, "keypoints": [9, 9, 2, 9, 9, 2]},
        {"id": 81, "image_id": 8, "keypoints": [9, 9, 2, 9, 9, 2]},
    ]
    with pytest.warns(UserWarning, match="image id 7") as record:
        gt = read_ground_truth(_coco_file(tmp_path, doc))
    assert len(record) == 1
    np.testing.assert_array_equal(gt.points[0], [[1.5, 2.5], [3, 1]])


def test_coco_categories_without_keypoints_and_twins(tmp_path: Path) -> None:
    doc = _coco()
    doc["categories"] += [
        {"id": 2, "name": "box"},
        {"id": 3, "name": "bird2", "keypoints": ["beak", "tail"]},
    ]
    doc["annotations"] += [
        {"id": 90, "image_id": 9, "category_id": 2, "bbox": [0, 0, 1, 1]},  # skipped
        {"id": 91, "image_id": 9, "category_id": 3, "keypoints": [1, 1, 2, 2, 2, 2]},
    ]
    gt = read_ground_truth(_coco_file(tmp_path, doc))
    np.testing.assert_array_equal(gt.points[2], [[1, 1], [2, 2]])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"annotations": [{"id": 70, "image_id": 99, "keypoints": [1, 1, 2, 1, 1, 2]}]},
            r"annotation id 70: unknown image id 99",
        ),
        (
            {"annotations": [{"id": 71, "image_id": 7, "keypoints": [1, 1, 2, 1, 1]}]},
            r"annotation id 71: 'keypoints' must hold .* 6 values, got 5",
        ),
        (
            {"annotations": [{"id": 72, "image_id": 7, "keypoints": [1, "1", 2, 1, 1, 2]}]},
            r"annotation id 72: non-numeric keypoint value '1'",
        ),
        (
            {"annotations": [{"id": 73, "image_id": 7, "keypoints": [1, None, 2, 1, 1, 2]}]},
            r"annotation id 73: non-numeric",
        ),
        (
            {"annotations": [{"image_id": 7, "keypoints": [1]}]},
            r"annotations\[0\]: 'keypoints'",
        ),
        ({"categories": [{"id": 1, "name": "face", "keypoints": []}]}, "no keypoint category"),
        ({"categories": []}, "no keypoint category"),
        (
            {"categories": [{"id": 1, "keypoints": ["a", "b"], "skeleton": [[0, 1]]}]},
            r"skeleton edge \[0, 1\]",
        ),
        ({"images": [{"id": 1}]}, "image id 1 has no 'file_name'"),
    ],
)
def test_coco_errors(tmp_path: Path, change: dict, message: str) -> None:
    path = _coco_file(tmp_path, _coco(**change))
    with pytest.raises(GroundTruthError, match=message) as info:
        read_ground_truth(path)
    assert str(path) in str(info.value)


def test_coco_mixed_keypoint_categories(tmp_path: Path) -> None:
    doc = _coco()
    doc["categories"].append({"id": 2, "keypoints": ["x"]})
    doc["annotations"].append({"id": 5, "image_id": 9, "category_id": 2, "keypoints": [1, 1, 2]})
    with pytest.raises(GroundTruthError, match="annotation id 5: category 2"):
        read_ground_truth(_coco_file(tmp_path, doc))


def test_coco_json_syntax_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "gt.json", '{\n  "images": [],\n  "annotations": [,]\n}\n')
    with pytest.raises(GroundTruthError, match=r"line 3, column 19: invalid JSON"):
        read_ground_truth(path)


# ---------------------------------------------------------------------------------------------
# DeepLabCut

DLC_CSV = """\
scorer,Ann,Ann,Ann,Ann,Ann,Ann
bodyparts,snout,snout,leftear,leftear,tail,tail
coords,x,y,x,y,x,y
labeled-data/m1/img0.png,10,20,30.5,40,,
labeled-data/m1/img1.png,1,2,,,5,6
"""

DLC_CSV_3 = """\
scorer,,,Ann,Ann,Ann,Ann,Ann,Ann
bodyparts,,,snout,snout,leftear,leftear,tail,tail
coords,,,x,y,x,y,x,y
labeled-data,m1,img0.png,10,20,30.5,40,,
labeled-data,m1,img1.png,1,2,,,5,6
"""

CONFIG = """\
Task: test
scorer: Ann
bodyparts:
- snout
- leftear
- tail

start: 0
skeleton:
- - snout
  - leftear
- - leftear
  - tail  # a comment
skeleton_color: black
"""


def _dlc_project(tmp_path: Path, csv: str = DLC_CSV, config: str | None = CONFIG) -> Path:
    """A DLC project in tmp_path/proj; returns the CSV."""
    folder = tmp_path / "proj" / "labeled-data" / "m1"
    for name in ("img0.png", "img1.png"):
        _png(folder / name)
    if config is not None:
        _write(tmp_path / "proj" / "config.yaml", config)
    return _write(folder / "CollectedData_Ann.csv", csv)


@pytest.mark.parametrize("csv", [DLC_CSV, DLC_CSV_3], ids=["path-index", "3-column-index"])
def test_dlc_round_trip(tmp_path: Path, csv: str) -> None:
    path = _dlc_project(tmp_path, csv)
    gt = read_ground_truth(path)
    assert gt.names == ["snout", "leftear", "tail"]
    assert gt.skeleton == [(0, 1), (1, 2)]
    assert gt.source == path
    assert gt.image_paths == [(path.parent / n).resolve() for n in ("img0.png", "img1.png")]
    np.testing.assert_array_equal(gt.points[0, :2], [[10.5, 20.5], [31.0, 40.5]])  # +0.5
    np.testing.assert_array_equal(gt.points[1, [0, 2]], [[1.5, 2.5], [5.5, 6.5]])
    assert np.isnan(gt.points[0, 2]).all() and np.isnan(gt.points[1, 1]).all()


def test_dlc_custom_offset(tmp_path: Path) -> None:
    gt = read_ground_truth(_dlc_project(tmp_path), pixel_centre_offset=0.0)
    np.testing.assert_array_equal(gt.points[0, 0], [10, 20])


def test_dlc_project_folder_concatenates(tmp_path: Path) -> None:
    _dlc_project(tmp_path)
    other = tmp_path / "proj" / "labeled-data" / "m2"
    _png(other / "img5.png")
    _write(
        other / "CollectedData_Ann.csv",
        "scorer,Ann,Ann\nbodyparts,tail,tail\ncoords,x,y\nlabeled-data/m2/img5.png,7,8\n",
    )
    (tmp_path / "proj" / "labeled-data" / "m1_labeled").mkdir()  # DLC's plots, no labels
    gt = read_ground_truth(tmp_path / "proj")
    assert gt.source == tmp_path / "proj"
    assert gt.names == ["snout", "leftear", "tail"]
    assert [p.name for p in gt.image_paths] == ["img0.png", "img1.png", "img5.png"]
    np.testing.assert_array_equal(gt.points[2, 2], [7.5, 8.5])
    assert np.isnan(gt.points[2, :2]).all()


def test_dlc_project_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(GroundTruthError, match="no config.yaml"):
        read_ground_truth(tmp_path)
    _write(tmp_path / "config.yaml", CONFIG)
    with pytest.raises(GroundTruthError, match="no labeled-data"):
        read_ground_truth(tmp_path)


@pytest.mark.parametrize(
    ("skeleton", "expected"),
    [
        ("skeleton: []\n", []),
        ("skeleton: [[snout, tail], ['leftear', \"tail\"]]\n", [(0, 2), (1, 2)]),
        ("skeleton:\n  - [snout, tail]\n  - [leftear, snout]\n", [(0, 2), (1, 0)]),
        ("skeleton:\n-   - snout\n    - tail\n", [(0, 2)]),
        ("other: 1\n", []),
    ],
)
def test_dlc_config_skeleton_styles(tmp_path: Path, skeleton: str, expected: list) -> None:
    config = "bodyparts:\n- snout\n- leftear\n- tail\n" + skeleton + "pcutoff: 0.4\n"
    gt = read_ground_truth(_dlc_project(tmp_path, config=config))
    assert gt.skeleton == expected


def test_dlc_config_unparseable_skeleton_warns(tmp_path: Path) -> None:
    config = "bodyparts:\n- snout\nskeleton:\n  snout: tail\n"
    with pytest.warns(UserWarning, match="could not parse the skeleton"):
        gt = read_ground_truth(_dlc_project(tmp_path, config=config))
    assert gt.skeleton == []


def test_dlc_config_unknown_bodypart_in_skeleton_warns(tmp_path: Path) -> None:
    config = "skeleton:\n- [snout, paw]\n- [snout, tail]\n"
    with pytest.warns(UserWarning, match="paw"):
        gt = read_ground_truth(_dlc_project(tmp_path, config=config))
    assert gt.skeleton == [(0, 2)]


def test_dlc_without_config(tmp_path: Path) -> None:
    gt = read_ground_truth(_dlc_project(tmp_path, config=None))
    assert gt.skeleton == [] and len(gt) == 2


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ({4: "labeled-data/m1/img0.png,10,20,30.5,40,"}, r"line 4: 6 values, expected 7"),
        ({5: "labeled-data/m1/img1.png,1,two,,,5,6"}, r"line 5: 'two' in column snout y"),
        ({3: "coords,x,y,x,x,x,y"}, r"line 3: bodypart 'leftear' has two x columns"),
        ({3: "coords,x,y,x,likelihood,x,y"}, r"line 3: bodypart 'leftear' has only x"),
        ({3: "coords,x,y,x,y,x,z"}, r"line 3: unknown coordinate 'z'"),
        ({2: "nope,snout,snout,leftear,leftear,tail,tail"}, r"line 2: expected the 'bodyparts'"),
        ({5: "labeled-data/m1/img0.png,1,2,,,5,6"}, r"line 5: image .* already labelled on line 4"),
    ],
)
def test_dlc_errors(tmp_path: Path, lines: dict[int, str], message: str) -> None:
    rows = DLC_CSV.splitlines()
    for number, text in lines.items():
        rows[number - 1] = text
    path = _dlc_project(tmp_path, "\n".join(rows) + "\n")
    with pytest.raises(GroundTruthError, match=message) as info:
        read_ground_truth(path)
    assert str(path) in str(info.value)


def test_dlc_multi_animal_not_supported(tmp_path: Path) -> None:
    csv = (
        "scorer,Ann,Ann\nindividuals,m1,m1\nbodyparts,snout,snout\ncoords,x,y\n"
        "labeled-data/m1/img0.png,1,2\n"
    )
    with pytest.raises(GroundTruthError, match="line 2: multi-animal .* not supported yet"):
        read_ground_truth(_dlc_project(tmp_path, csv))


def test_dlc_h5_needs_pandas_and_tables(tmp_path: Path) -> None:
    try:
        import pandas  # noqa: F401
        import tables  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pandas and PyTables are installed: the .h5 reader is tested on real data")
    csv = _dlc_project(tmp_path)
    h5 = csv.with_suffix(".h5")
    h5.write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(GroundTruthError, match="pandas and PyTables") as info:
        read_ground_truth(h5)
    assert str(csv) in str(info.value)  # points to the CSV beside it


# ---------------------------------------------------------------------------------------------
# Plain CSV

PLAIN = """\
Image,nose_x,nose_y,left_eye_x,left_eye_y
a.png,1,2,3,4
b.png,5,6,,
"""


def test_plain_csv_round_trip(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    _png(tmp_path / "b.png")
    path = _write(tmp_path / "labels.csv", PLAIN)
    gt = read_ground_truth(path)
    assert gt.names == ["nose", "left_eye"]
    assert gt.skeleton == []
    assert [p.name for p in gt.image_paths] == ["a.png", "b.png"]
    np.testing.assert_array_equal(gt.points[0], [[1.5, 2.5], [3.5, 4.5]])
    np.testing.assert_array_equal(gt.points[1, 0], [5.5, 6.5])
    assert np.isnan(gt.points[1, 1]).all()
    zero = read_ground_truth(path, pixel_centre_offset=0)
    np.testing.assert_array_equal(zero.points[0], [[1, 2], [3, 4]])


def test_plain_csv_half_missing_landmark_is_missing(tmp_path: Path) -> None:
    path = _write(tmp_path / "labels.csv", "file,nose_x,nose_y\na.png,1,\n")
    gt = read_ground_truth(path, check_images=False)
    assert np.isnan(gt.points[0, 0]).all()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("image,nose_x,nose_y\na.png,1,2\nb.png,1\n", r"line 3: 2 values, expected 3"),
        ("image,nose_x,nose_y\n\na.png,1,oops\n", r"line 3: 'oops' in column nose_y"),
        (
            "image,nose_x,nose_y,eye_x\na.png,1,2,3\n",
            r"line 1: landmark 'eye' .* column eye_y is missing",
        ),
        ("image,nose_x,nose_y\na.png,1,2\nb.png,1,2\na.png,3,4\n", r"line 4: image 'a.png'"),
        ("image,nose_x,nose_y,score\na.png,1,2,3\n", r"line 1: unknown column 'score'"),
        ("picture,nose_x,nose_y\na.png,1,2\n", r"line 1: the first column"),
        ("image,nose_x,nose_y,nose_x\na.png,1,2,3\n", r"line 1: column 'nose_x' appears twice"),
    ],
)
def test_plain_csv_errors(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path / "labels.csv", text)
    with pytest.raises(GroundTruthError, match=message) as info:
        read_ground_truth(path, check_images=False)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------------------------
# Finding images


def test_image_lookup_order(tmp_path: Path) -> None:
    gt_file = _write(tmp_path / "gt" / "labels.csv", "image,p_x,p_y\nsub/a.png,1,1\n")
    given = tmp_path / "given"
    places = [
        given / "sub" / "a.png",  # images dir, name relative to it
        given / "a.png",  # images dir, bare name
        tmp_path / "gt" / "sub" / "a.png",  # beside the ground truth
        tmp_path / "gt" / "a.png",
        tmp_path / "gt" / "images" / "sub" / "a.png",  # images/ beside it
        tmp_path / "gt" / "images" / "a.png",
    ]
    for place in places:
        _png(place)
    for place in places:
        assert read_ground_truth(gt_file, given).image_paths == [place.resolve()]
        place.unlink()
    with pytest.raises(GroundTruthError, match="image 'sub/a.png' not found") as info:
        read_ground_truth(gt_file, given)
    message = str(info.value)
    assert "line 2" in message
    for folder in (given, tmp_path / "gt", tmp_path / "gt" / "images"):
        assert str(folder.resolve()) in message


def test_image_lookup_dlc_project_root(tmp_path: Path) -> None:
    csv = DLC_CSV.replace("labeled-data/m1/img1.png", "labeled-data/m2/img9.png")
    path = _dlc_project(tmp_path, csv)
    with pytest.raises(GroundTruthError, match=r"line 5: image 'labeled-data/m2/img9.png'") as e:
        read_ground_truth(path)
    assert str((tmp_path / "proj").resolve()) in str(e.value)
    image = _png(tmp_path / "proj" / "labeled-data" / "m2" / "img9.png")
    assert read_ground_truth(path).image_paths[1] == image.resolve()


def test_image_lookup_windows_separators(tmp_path: Path) -> None:
    path = _dlc_project(tmp_path, DLC_CSV.replace("labeled-data/m1/", "labeled-data\\m1\\"))
    assert read_ground_truth(path).image_paths[0] == (path.parent / "img0.png").resolve()


def test_missing_images(tmp_path: Path) -> None:
    path = _coco_file(tmp_path, images=False)
    _png(tmp_path / "a.png")
    with pytest.raises(GroundTruthError) as info:
        read_ground_truth(path)
    message = str(info.value)
    assert "image 'sub/b.png' not found" in message and "annotation id 80" in message
    assert "1 more images are missing" in message
    gt = read_ground_truth(path, check_images=False)
    assert gt.image_paths == [(tmp_path / n).resolve() for n in ("a.png", "sub/b.png", "c.png")]
    given = tmp_path / "given"
    given.mkdir()
    gt = read_ground_truth(path, given, check_images=False)
    assert gt.image_paths[1] == (given / "sub" / "b.png").resolve()  # best guess
    with pytest.raises(GroundTruthError, match="images folder not found"):
        read_ground_truth(path, tmp_path / "nowhere")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GroundTruthError, match="no such ground-truth file"):
        read_ground_truth(tmp_path / "missing.json")


# ---------------------------------------------------------------------------------------------
# GroundTruth


def _ground_truth() -> GroundTruth:
    points = np.arange(3 * 3 * 2, dtype=float).reshape(3, 3, 2)
    return GroundTruth(
        names=["a", "b", "c"],
        image_paths=[Path("0.png"), Path("1.png"), Path("2.png")],
        points=points,
        skeleton=[(0, 1), (1, 2)],
        source=Path("gt.json"),
    )


def test_subset() -> None:
    gt = _ground_truth()
    sub = gt.subset([2, 0])
    assert sub.image_paths == [Path("2.png"), Path("0.png")]
    np.testing.assert_array_equal(sub.points, gt.points[[2, 0]])
    assert sub.names == gt.names and sub.skeleton == gt.skeleton
    masked = gt.subset(np.array([False, True, True]))
    assert len(masked) == 2 and masked.image_paths[0] == Path("1.png")
    assert len(gt.subset([])) == 0
    sub.points[0] = -1  # a copy
    assert (gt.points >= 0).all()


def test_select_and_index_of() -> None:
    gt = _ground_truth()
    sel = gt.select(["c", "b"])
    assert sel.names == ["c", "b"]
    np.testing.assert_array_equal(sel.points, gt.points[:, [2, 1]])
    assert sel.skeleton == [(1, 0)]  # (b, c) kept, (a, b) dropped
    assert gt.index_of("b") == 1
    with pytest.raises(GroundTruthError, match="no landmark named 'z'; known: a, b, c"):
        gt.index_of("z")
    with pytest.raises(GroundTruthError, match="'z'"):
        gt.select(["a", "z"])


def test_shape_is_checked() -> None:
    with pytest.raises(GroundTruthError, match="expected"):
        GroundTruth(["a"], [Path("x.png")], np.zeros((1, 2, 2)), [], Path("gt.csv"))


# ---------------------------------------------------------------------------------------------
# Real data beside the project


def test_real_mtfl() -> None:
    if not MTFL.is_file():
        pytest.skip(f"../shared/data not present: {MTFL}")
    start = time.perf_counter()
    gt = read_ground_truth(MTFL)
    assert time.perf_counter() - start < 5.0
    assert len(gt) == 10_000
    assert gt.names == ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"]
    assert gt.points.shape == (10_000, 5, 2) and np.isfinite(gt.points).all()
    doc = json.loads(MTFL.read_text())
    first = np.asarray(doc["annotations"][0]["keypoints"], dtype=float).reshape(5, 3)[:, :2]
    np.testing.assert_array_equal(gt.points[0], first)  # COCO coordinates unchanged
    assert all(0 <= a < 5 and 0 <= b < 5 for a, b in gt.skeleton)
    assert gt.image_paths[0] == (MTFL.parent / "images" / doc["images"][0]["file_name"]).resolve()
    assert gt.image_paths[-1].is_file()


def test_real_dlc_openfield() -> None:
    if not OPENFIELD_CSV.is_file():
        pytest.skip(f"../shared/data not present: {OPENFIELD_CSV}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the real config parses cleanly
        gt = read_ground_truth(OPENFIELD_CSV)
        project = read_ground_truth(OPENFIELD)
    assert len(gt) == 116
    assert gt.names == ["snout", "leftear", "rightear", "tailbase"]
    assert gt.skeleton == []  # the example config has "skeleton: []"
    np.testing.assert_allclose(gt.points[0, 0], [21.521 + 0.5, 265.428 + 0.5])
    assert gt.image_paths[0] == (OPENFIELD_CSV.parent / "img0000.png").resolve()
    assert all(p.is_file() for p in gt.image_paths)
    assert project.source == OPENFIELD and project.names == gt.names
    assert project.image_paths == gt.image_paths
    np.testing.assert_array_equal(project.points, gt.points)


def test_real_dlc_openfield_h5() -> None:
    h5 = OPENFIELD_CSV.with_suffix(".h5")
    if not h5.is_file():
        pytest.skip(f"../shared/data not present: {h5}")
    try:
        import pandas  # noqa: F401
        import tables  # noqa: F401
    except ImportError:
        with pytest.raises(GroundTruthError, match="pandas and PyTables"):
            read_ground_truth(h5)
        return
    gt = read_ground_truth(h5)
    csv = read_ground_truth(OPENFIELD_CSV)
    assert gt.names == csv.names and gt.image_paths == csv.image_paths
    np.testing.assert_allclose(gt.points, csv.points)
