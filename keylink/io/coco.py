"""COCO keypoints files for the annotations keylink makes.

COCO keypoint coordinates are continuous pixel coordinates in which the centre of the top-left
pixel is (0.5, 0.5): the same convention as keylink, so no offset is applied on either side.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from keylink.io.files import write_text_atomic

_DECIMALS = 2  # coordinates are written with this many decimals
_SCORE_DECIMALS = 4


@dataclass
class Category:
    name: str
    keypoint_names: list[str]
    skeleton: list[tuple[int, int]] = field(default_factory=list)  # 0-based (1-based in files)

    def validate(self) -> None:
        """Raise ValueError if the skeleton refers to keypoints that do not exist."""
        k = len(self.keypoint_names)
        for edge in self.skeleton:
            if len(edge) != 2 or not all(0 <= int(i) < k for i in edge):
                raise ValueError(f"skeleton edge {tuple(edge)} is out of range for {k} keypoints")


def _keylink_version() -> str:
    try:
        return metadata.version("keylink")
    except metadata.PackageNotFoundError:
        return "unknown"


def coco_document(
    images: Sequence[tuple[str, int, int]],
    keypoints: np.ndarray,
    confidences: np.ndarray,
    category: Category,
    *,
    visibility_threshold: float = 0.0,
    extra: dict | None = None,
) -> dict:
    """Build a COCO keypoints document with one annotation per image.

    images: (file_name, width, height) per image; keypoints: (N, K, 2) pixel coordinates of the
    original images; confidences: (N, K) in [0, 1]. Each keypoint gets visibility v = 2, or v = 1
    when its confidence is below `visibility_threshold`; non-finite keypoints are written as
    [0, 0, 0] (not labelled). `extra` entries (numpy values allowed) are added to the
    document's "info" section.
    """
    kps = np.asarray(keypoints, dtype=np.float64)
    conf = np.asarray(confidences, dtype=np.float64)
    n = len(images)
    k = len(category.keypoint_names)
    if kps.shape != (n, k, 2):
        raise ValueError(f"keypoints must have shape ({n}, {k}, 2), got {kps.shape}")
    if conf.shape != (n, k):
        raise ValueError(f"confidences must have shape ({n}, {k}), got {conf.shape}")
    category.validate()

    info: dict[str, Any] = {
        "description": "keypoints annotated automatically by keylink",
        "version": _keylink_version(),
        "date_created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if extra:
        info.update(_plain(extra))

    image_records = []
    annotations = []
    for index, (file_name, width, height) in enumerate(images):
        image_id = index + 1
        width, height = int(width), int(height)
        image_records.append(
            {"id": image_id, "file_name": str(file_name), "width": width, "height": height}
        )
        flat: list[float | int] = []
        labelled = []
        for (x, y), c in zip(kps[index], conf[index], strict=True):
            if not (math.isfinite(x) and math.isfinite(y)):
                flat += [0, 0, 0]
                continue
            v = 1 if c < visibility_threshold else 2
            flat += [round(float(x), _DECIMALS), round(float(y), _DECIMALS), v]
            labelled.append((x, y))
        if labelled:
            pts = np.array(labelled)
            x0, y0 = np.clip(pts.min(axis=0), 0, [width, height])
            x1, y1 = np.clip(pts.max(axis=0), 0, [width, height])
            bbox = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
        else:
            bbox = [0.0, 0.0, 0.0, 0.0]
        bbox = [round(b, _DECIMALS) for b in bbox]
        finite_conf = np.nan_to_num(conf[index], nan=0.0)
        annotations.append(
            {
                "id": image_id,
                "image_id": image_id,
                "category_id": 1,
                "keypoints": flat,
                "num_keypoints": len(labelled),
                "keypoint_scores": [round(float(c), _SCORE_DECIMALS) for c in finite_conf],
                "score": round(float(finite_conf.mean()), _SCORE_DECIMALS) if k else 0.0,
                "bbox": bbox,
                "area": round(bbox[2] * bbox[3], _DECIMALS),
                "iscrowd": 0,
            }
        )

    return {
        "info": info,
        "images": image_records,
        "annotations": annotations,
        "categories": [
            {
                "id": 1,
                "name": category.name,
                "supercategory": category.name,
                "keypoints": list(category.keypoint_names),
                "skeleton": [[int(a) + 1, int(b) + 1] for a, b in category.skeleton],
            }
        ],
    }


def _plain(obj: Any) -> Any:
    """Recursively turn numpy values, tuples and paths into plain JSON types."""
    if isinstance(obj, dict):
        return {str(key): _plain(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(value) for value in obj]
    if isinstance(obj, np.ndarray | np.generic | Path):
        return _plain(_json_default(obj))
    return obj


def _json_default(obj: Any) -> Any:
    # Let callers pass numpy scalars and arrays (e.g. in `extra`) without converting them first.
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def write_json_atomic(path: str | Path, obj: dict) -> None:
    """Write ``obj`` as JSON atomically (the old file or the complete new one); NaN is refused."""
    text = json.dumps(obj, allow_nan=False, default=_json_default)
    write_text_atomic(path, text)


def _fail(path: Path, problem: str) -> ValueError:
    return ValueError(f"malformed COCO keypoints file {path}: {problem}")


def read_coco_keypoints(path: str | Path) -> tuple[list[dict], np.ndarray, Category]:
    """Read a COCO keypoints file.

    Returns the image records in file order, keypoints (N, K, 3) holding x, y, v for the first
    annotation of each image (x, y are NaN where v == 0 or the image has no annotation), and the
    keypoint category. Only the first category that defines keypoints is read. Raises ValueError
    naming the problem for malformed files.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _fail(path, f"not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise _fail(path, "the top level is not a JSON object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise _fail(path, f'missing or non-list "{key}"')

    category_record = next(
        (c for c in doc["categories"] if isinstance(c, dict) and "keypoints" in c), None
    )
    if category_record is None:
        raise _fail(path, 'no category defines "keypoints"')
    category = _read_category(path, category_record)
    category_id = category_record.get("id")
    k = len(category.keypoint_names)

    images: list[dict] = doc["images"]
    row_of: dict[Any, int] = {}
    for row, record in enumerate(images):
        if not isinstance(record, dict) or "id" not in record:
            raise _fail(path, f'image record {row} has no "id"')
        if record["id"] in row_of:
            raise _fail(path, f"duplicate image id {record['id']!r}")
        row_of[record["id"]] = row

    out = np.full((len(images), k, 3), np.nan)
    out[:, :, 2] = 0
    done: set[int] = set()
    for number, ann in enumerate(doc["annotations"]):
        if not isinstance(ann, dict):
            raise _fail(path, f"annotation {number} is not an object")
        if ann.get("category_id", category_id) != category_id:
            continue
        if "image_id" not in ann:
            raise _fail(path, f'annotation {number} has no "image_id"')
        row = row_of.get(ann["image_id"])
        if row is None:
            raise _fail(path, f"annotation {number} refers to unknown image id {ann['image_id']!r}")
        if row in done:  # only the first annotation of each image is read
            continue
        out[row] = _read_keypoints(path, number, ann.get("keypoints"), k)
        done.add(row)
    return images, out, category


def _read_category(path: Path, record: dict) -> Category:
    names = record["keypoints"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _fail(path, 'category "keypoints" must be a list of names')
    skeleton_raw = record.get("skeleton", [])
    if not isinstance(skeleton_raw, list):
        raise _fail(path, 'category "skeleton" must be a list of pairs')
    skeleton = []
    for edge in skeleton_raw:
        if (
            not isinstance(edge, list | tuple)
            or len(edge) != 2
            or not all(isinstance(i, int) and 1 <= i <= len(names) for i in edge)
        ):
            raise _fail(
                path, f"skeleton edge {edge!r} is not a pair of 1-based indices <= {len(names)}"
            )
        skeleton.append((edge[0] - 1, edge[1] - 1))
    return Category(name=str(record.get("name", "")), keypoint_names=names, skeleton=skeleton)


def _read_keypoints(path: Path, number: int, flat: Any, k: int) -> np.ndarray:
    if not isinstance(flat, list) or len(flat) != 3 * k:
        size = len(flat) if isinstance(flat, list) else type(flat).__name__
        raise _fail(path, f'annotation {number}: "keypoints" must be {3 * k} numbers, got {size}')
    try:
        values = np.array(flat, dtype=np.float64).reshape(k, 3)
    except (TypeError, ValueError) as exc:
        raise _fail(path, f'annotation {number}: "keypoints" must be numbers') from exc
    if not np.isin(values[:, 2], (0, 1, 2)).all():
        raise _fail(path, f"annotation {number}: visibility flags must be 0, 1 or 2")
    values[values[:, 2] == 0, :2] = np.nan
    return values
