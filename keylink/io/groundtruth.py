"""Reading labelled landmarks ("ground truth") from COCO, DeepLabCut and plain CSV files.

All readers return a :class:`GroundTruth` in keylink's coordinate convention: continuous pixel
coordinates where pixel (0, 0) covers [0, 1) x [0, 1), so the centre of the top-left pixel is
(0.5, 0.5).

- COCO keypoints JSON already uses this convention: coordinates are kept as they are.
- DeepLabCut and plain CSV labels are pixel indices with (0, 0) at the centre of the top-left
  pixel (DeepLabCut labels in matplotlib/napari, where integer coordinates are pixel centres), so
  ``pixel_centre_offset`` (0.5 by default) is added to x and y when reading them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["GroundTruth", "GroundTruthError", "read_ground_truth"]

_IMAGE_COLUMNS = frozenset({"image", "file", "file_name", "filename"})
_DLC_COORDS = frozenset({"x", "y", "likelihood"})


class GroundTruthError(ValueError):
    """A ground-truth file that cannot be read; the message names the file and the place in it."""


@dataclass
class GroundTruth:
    """Labelled landmarks of N images: points (N, L, 2) float64, NaN where a landmark is missing."""

    names: list[str]
    image_paths: list[Path]
    points: np.ndarray
    skeleton: list[tuple[int, int]]
    source: Path

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, dtype=np.float64)
        n, k = len(self.image_paths), len(self.names)
        if self.points.shape != (n, k, 2):
            raise GroundTruthError(
                f"{self.source}: points have shape {self.points.shape}, expected ({n}, {k}, 2)"
            )

    def __len__(self) -> int:
        return len(self.image_paths)

    def subset(self, index: Sequence[int] | np.ndarray) -> GroundTruth:
        """The images at ``index`` (integer indices or a boolean mask), in that order."""
        idx = np.asarray(index)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise IndexError(f"boolean mask of shape {idx.shape} for {len(self)} images")
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.intp, copy=False).reshape(-1)
        return GroundTruth(
            names=list(self.names),
            image_paths=[self.image_paths[i] for i in idx],
            points=self.points[idx].copy(),
            skeleton=list(self.skeleton),
            source=self.source,
        )

    def select(self, names: Sequence[str]) -> GroundTruth:
        """The landmarks ``names`` in that order; skeleton edges between kept landmarks remain."""
        names = list(names)
        if len(set(names)) != len(names):
            raise GroundTruthError(f"{self.source}: landmark names repeated in {names}")
        idx = [self.index_of(name) for name in names]
        new_of = {old: new for new, old in enumerate(idx)}
        skeleton = [(new_of[a], new_of[b]) for a, b in self.skeleton if a in new_of and b in new_of]
        return GroundTruth(
            names=names,
            image_paths=list(self.image_paths),
            points=self.points[:, idx].copy(),
            skeleton=skeleton,
            source=self.source,
        )

    def index_of(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            known = ", ".join(self.names)
            raise GroundTruthError(
                f"{self.source}: no landmark named {name!r}; known: {known}"
            ) from None


@dataclass
class _Labels:
    """Landmarks of one file before image lookup, in the file's own coordinate convention."""

    names: list[str]
    files: list[str]  # image names as written in the file
    where: list[str]  # place of each image in the file, for messages ("line 7", "image id 3")
    points: np.ndarray  # (N, L, 2)
    skeleton: list[tuple[int, int]]


def read_ground_truth(
    path: str | Path,
    images: str | Path | None = None,
    *,
    check_images: bool = True,
    pixel_centre_offset: float = 0.5,
) -> GroundTruth:
    """Read labelled landmarks from a COCO, DeepLabCut or plain CSV file.

    The format is chosen from the suffix and content:

    - ``.json``: COCO keypoints (``images``, ``annotations``, a category with ``keypoints`` and a
      1-based ``skeleton``). Coordinates are kept; v == 0 gives NaN; images without annotation
      get NaN points; of several annotations of one image the first is used (with a warning).
    - a CSV starting with DeepLabCut's header rows (``scorer``, ``bodyparts``, ``coords``), as in
      ``CollectedData_<scorer>.csv``, with a one-column (path) or three-column index. The skeleton
      comes from the project's ``config.yaml`` (two levels above ``labeled-data/<video>/``).
    - ``.h5``: DeepLabCut's HDF5 twin of that CSV (needs pandas and PyTables).
    - any other CSV: ``image,<name>_x,<name>_y,...`` with one row per image.
    - a DeepLabCut project folder (with ``config.yaml``): every
      ``labeled-data/*/CollectedData_*.csv`` in it, concatenated.

    DeepLabCut and plain CSV coordinates are pixel indices with (0, 0) the centre of the top-left
    pixel; ``pixel_centre_offset`` is added to them to reach keylink's convention, where that
    centre is (0.5, 0.5). Empty cells give NaN; a landmark with only one of x, y is NaN.

    Images are looked up in ``images`` (the name relative to it, then its bare name), beside the
    ground-truth file, in an ``images/`` folder beside it and, for DeepLabCut, relative to the
    project root. With ``check_images`` an image found nowhere raises GroundTruthError; without,
    the most likely path is kept. Malformed files raise GroundTruthError naming the file and the
    line (1-based) or annotation/image id.
    """
    path = Path(path)
    images_dir = Path(images) if images is not None else None
    if images_dir is not None and not images_dir.is_dir():
        raise GroundTruthError(f"{images_dir}: images folder not found")
    offset = float(pixel_centre_offset)
    if path.is_dir():
        return _read_dlc_project(path, images_dir, check_images, offset)
    if not path.is_file():
        raise GroundTruthError(f"{path}: no such ground-truth file")

    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5", ".hdf"):
        return _dlc_ground_truth([path], path, images_dir, check_images, offset)
    text = _read_text(path)
    if suffix == ".json" or (suffix != ".csv" and text.lstrip()[:1] in ("{", "[")):
        labels = _parse_coco(path, text)
        return _finish(path, labels, _search_dirs(path, images_dir), None, check_images)
    rows = _csv_rows(path, text)
    if _is_dlc_csv(rows):
        return _dlc_ground_truth([path], path, images_dir, check_images, offset)
    labels = _parse_plain_csv(path, rows)
    labels.points = labels.points + offset
    return _finish(path, labels, _search_dirs(path, images_dir), None, check_images)


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise GroundTruthError(f"{path}: not UTF-8 text ({exc})") from exc
    except OSError as exc:
        raise GroundTruthError(f"{path}: cannot read ({exc})") from exc


def _number(path: Path, line: int, cell: str, column: str) -> float:
    """A CSV cell as a float: NaN when empty; GroundTruthError naming the line otherwise."""
    cell = cell.strip()
    if not cell:
        return math.nan
    try:
        value = float(cell)
    except ValueError:
        raise GroundTruthError(
            f"{path}: line {line}: {cell!r} in column {column} is not a number"
        ) from None
    if math.isinf(value):
        raise GroundTruthError(f"{path}: line {line}: {cell!r} in column {column} is not finite")
    return value


def _pair_missing(points: np.ndarray) -> np.ndarray:
    """Make a landmark missing (both NaN) when either coordinate is missing."""
    points[np.isnan(points).any(axis=-1)] = np.nan
    return points


class _ImageFinder:
    """Looks images up with one directory listing per folder (no stat per file)."""

    def __init__(self) -> None:
        self._listings: dict[str, frozenset[str]] = {}

    def exists(self, candidate: str) -> bool:
        folder, name = os.path.split(candidate)
        names = self._listings.get(folder)
        if names is None:
            try:
                with os.scandir(folder) as entries:
                    names = frozenset(e.name for e in entries if e.is_file())
            except OSError:
                names = frozenset()
            self._listings[folder] = names
        return name in names


def _search_dirs(path: Path, images_dir: Path | None) -> list[Path]:
    """Folders searched for the images of ``path``, in order."""
    beside = path.resolve().parent
    dirs = [images_dir.resolve()] if images_dir is not None else []
    return [*dirs, beside, beside / "images"]


def _candidates(name: str, dirs: list[Path], project_root: Path | None) -> tuple[list[str], str]:
    """Places to look for image ``name`` in order, and the best guess if it is nowhere.

    Plain strings rather than Paths: this runs for every image, and pathlib is slow.
    """
    rel = name.replace("\\", "/")  # DLC files written on Windows use backslashes
    bare = rel.rsplit("/", 1)[-1]
    absolute = os.path.isabs(rel)
    out = [rel] if absolute else []
    for d in dirs:
        if not absolute:
            out.append(os.path.join(d, rel))
        out.append(os.path.join(d, bare))
    if project_root is not None and not absolute:
        out.append(os.path.join(project_root, rel))
    # DLC paths are relative to the project; others to the first folder searched
    guess = out[-1] if project_root is not None and not absolute else out[0]
    unique = list(dict.fromkeys(os.path.normpath(p) for p in out))
    return unique, os.path.normpath(guess)


def _resolve_images(
    source: Path,
    labels: _Labels,
    dirs: list[Path],
    project_root: Path | None,
    check_images: bool,
    finder: _ImageFinder | None = None,
) -> list[Path]:
    finder = finder or _ImageFinder()
    searched = [*dirs, *([project_root] if project_root is not None else [])]
    paths: list[Path] = []
    missing: list[int] = []
    for i, name in enumerate(labels.files):
        candidates, guess = _candidates(name, dirs, project_root)
        found = next((c for c in candidates if finder.exists(c)), None)
        if found is None:
            missing.append(i)
        paths.append(Path(found or guess))
    if check_images and missing:
        i = missing[0]
        more = f" ({len(missing) - 1} more images are missing too)" if len(missing) > 1 else ""
        folders = ", ".join(str(d) for d in searched)
        raise GroundTruthError(
            f"{source}: {labels.where[i]}: image {labels.files[i]!r} not found; "
            f"searched {folders}{more}"
        )
    return paths


def _finish(
    source: Path,
    labels: _Labels,
    dirs: list[Path],
    project_root: Path | None,
    check_images: bool,
) -> GroundTruth:
    paths = _resolve_images(source, labels, dirs, project_root, check_images)
    return GroundTruth(labels.names, paths, labels.points, labels.skeleton, source)


# ---------------------------------------------------------------------------------------------
# COCO


def _parse_coco(path: Path, text: str) -> _Labels:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GroundTruthError(
            f"{path}: line {exc.lineno}, column {exc.colno}: invalid JSON ({exc.msg})"
        ) from exc
    if not isinstance(doc, dict):
        raise GroundTruthError(f"{path}: not a COCO file (the top level is not a JSON object)")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise GroundTruthError(f"{path}: missing or non-list {key!r}")

    names, skeleton, first_id, other_ids, plain_ids = _coco_category(path, doc["categories"])
    k = len(names)

    row_of: dict[Any, int] = {}
    files: list[str] = []
    where: list[str] = []
    for row, record in enumerate(doc["images"]):
        if not isinstance(record, dict) or "id" not in record:
            raise GroundTruthError(f"{path}: images[{row}] has no 'id'")
        image_id = record["id"]
        if image_id in row_of:
            raise GroundTruthError(f"{path}: image id {image_id!r} appears twice")
        name = record.get("file_name")
        if not isinstance(name, str) or not name:
            raise GroundTruthError(f"{path}: image id {image_id!r} has no 'file_name'")
        row_of[image_id] = row
        files.append(name)
        where.append(f"image id {image_id!r}")

    points = np.full((len(files), k, 2), np.nan)
    done: set[int] = set()
    repeated: list[Any] = []  # image ids with more than one annotation
    for number, ann in enumerate(doc["annotations"]):
        if not isinstance(ann, dict):
            raise GroundTruthError(f"{path}: annotations[{number}] is not an object")
        label = f"annotation id {ann['id']!r}" if "id" in ann else f"annotations[{number}]"
        category = ann.get("category_id")
        if category in other_ids:
            raise GroundTruthError(
                f"{path}: {label}: category {category!r} has other keypoints than category "
                f"{first_id!r}; mixed keypoint categories are not supported"
            )
        if category in plain_ids:
            continue  # an annotation of a category without keypoints (e.g. a plain box)
        if "image_id" not in ann:
            raise GroundTruthError(f"{path}: {label}: no 'image_id'")
        row = row_of.get(ann["image_id"])
        if row is None:
            raise GroundTruthError(f"{path}: {label}: unknown image id {ann['image_id']!r}")
        if row in done:
            repeated.append(ann["image_id"])
            continue
        flat = ann.get("keypoints")
        if not isinstance(flat, list) or len(flat) != 3 * k:
            got = f"{len(flat)} values" if isinstance(flat, list) else type(flat).__name__
            raise GroundTruthError(
                f"{path}: {label}: 'keypoints' must hold 3 * {k} = {3 * k} values, got {got}"
            )
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in flat):
            bad = next(v for v in flat if not isinstance(v, int | float) or isinstance(v, bool))
            raise GroundTruthError(f"{path}: {label}: non-numeric keypoint value {bad!r}")
        values = np.asarray(flat, dtype=np.float64).reshape(k, 3)
        xy = values[:, :2]
        xy[values[:, 2] == 0] = np.nan
        points[row] = xy
        done.add(row)
        where[row] = f"image id {ann['image_id']!r} ({label})"

    if repeated:
        warnings.warn(
            f"{path}: {len(repeated)} extra annotations for images that already have one (first: "
            f"image id {repeated[0]!r}); only the first annotation of each image is used",
            stacklevel=3,
        )
    return _Labels(names, files, where, _pair_missing(points), skeleton)


def _coco_category(
    path: Path, categories: list[Any]
) -> tuple[list[str], list[tuple[int, int]], Any, set[Any], set[Any]]:
    """Names and 0-based skeleton of the first keypoint category, its id, the ids of categories
    with other keypoints, and the ids of categories without keypoints."""
    keyed = [c for c in categories if isinstance(c, dict) and c.get("keypoints")]
    if not keyed:
        raise GroundTruthError(f"{path}: no keypoint category (no category lists 'keypoints')")
    first = keyed[0]
    names = first["keypoints"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise GroundTruthError(
            f"{path}: category {first.get('id')!r}: 'keypoints' must be a list of names"
        )
    if len(set(names)) != len(names):
        raise GroundTruthError(f"{path}: category {first.get('id')!r}: repeated keypoint names")
    other = {c.get("id") for c in keyed if c["keypoints"] != names}
    plain = {c.get("id") for c in categories if isinstance(c, dict) and not c.get("keypoints")}

    skeleton: list[tuple[int, int]] = []
    raw = first.get("skeleton") or []
    if not isinstance(raw, list):
        raise GroundTruthError(f"{path}: category {first.get('id')!r}: 'skeleton' is not a list")
    for edge in raw:
        ok = (
            isinstance(edge, list | tuple)
            and len(edge) == 2
            and all(isinstance(i, int) and 1 <= i <= len(names) for i in edge)
        )
        if not ok:
            raise GroundTruthError(
                f"{path}: category {first.get('id')!r}: skeleton edge {edge!r} is not a pair of "
                f"1-based keypoint numbers up to {len(names)}"
            )
        skeleton.append((edge[0] - 1, edge[1] - 1))
    return list(names), skeleton, first.get("id"), other, plain


# ---------------------------------------------------------------------------------------------
# CSV (DeepLabCut and plain)


def _csv_rows(path: Path, text: str) -> list[tuple[int, list[str]]]:
    """Non-blank CSV rows with the (1-based) line each one ends on."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except csv.Error as exc:
        raise GroundTruthError(f"{path}: line {reader.line_num}: bad CSV ({exc})") from exc


def _is_dlc_csv(rows: list[tuple[int, list[str]]]) -> bool:
    return bool(rows) and rows[0][1][0].strip().lower() == "scorer"


def _add_image(
    path: Path, line: int, name: str, first_line: dict[str, int], files: list, where: list
) -> None:
    """Record an image row of a CSV, refusing an image labelled twice."""
    if name in first_line:
        raise GroundTruthError(
            f"{path}: line {line}: image {name!r} already labelled on line {first_line[name]}"
        )
    first_line[name] = line
    files.append(name)
    where.append(f"line {line}")


def _parse_plain_csv(path: Path, rows: list[tuple[int, list[str]]]) -> _Labels:
    if not rows:
        raise GroundTruthError(f"{path}: empty CSV file")
    header_line, header = rows[0]
    header = [h.strip() for h in header]
    if header[0].lower() not in _IMAGE_COLUMNS:
        raise GroundTruthError(
            f"{path}: line {header_line}: the first column must be named image, file, "
            f"file_name or filename, not {header[0]!r}"
        )
    names: list[str] = []
    columns: dict[tuple[str, str], int] = {}  # (name, "x" | "y") -> column
    for col, title in enumerate(header[1:], start=1):
        name, _, axis = title.rpartition("_")
        axis = axis.lower()
        if not name or axis not in ("x", "y"):
            raise GroundTruthError(
                f"{path}: line {header_line}: unknown column {title!r} (column {col + 1}); "
                f"expected <name>_x and <name>_y columns"
            )
        if (name, axis) in columns:
            raise GroundTruthError(f"{path}: line {header_line}: column {title!r} appears twice")
        columns[(name, axis)] = col
        if name not in names:
            names.append(name)
    for name in names:
        for axis, other in (("x", "y"), ("y", "x")):
            if (name, axis) in columns and (name, other) not in columns:
                raise GroundTruthError(
                    f"{path}: line {header_line}: landmark {name!r} has column {name}_{axis} "
                    f"but column {name}_{other} is missing"
                )

    files: list[str] = []
    where: list[str] = []
    first_line: dict[str, int] = {}
    points = np.full((len(rows) - 1, len(names), 2), np.nan)
    for r, (line, cells) in enumerate(rows[1:]):
        if len(cells) != len(header):
            raise GroundTruthError(
                f"{path}: line {line}: {len(cells)} values, expected {len(header)} as in the header"
            )
        name = cells[0].strip()
        if not name:
            raise GroundTruthError(f"{path}: line {line}: no image name")
        _add_image(path, line, name, first_line, files, where)
        for j, landmark in enumerate(names):
            for a, axis in enumerate(("x", "y")):
                col = columns[(landmark, axis)]
                points[r, j, a] = _number(path, line, cells[col], header[col])
    return _Labels(names, files, where, _pair_missing(points), [])


# ---------------------------------------------------------------------------------------------
# DeepLabCut


def _dlc_columns(
    path: Path, bodyparts: list[str], coords: list[str], line: int | None
) -> tuple[list[str], list[int], list[int]]:
    """Bodypart names and the value columns holding their x and y."""
    at = f"{path}: line {line}" if line is not None else f"{path}"
    names: list[str] = []
    cols: dict[tuple[str, str], int] = {}
    for col, (part, coord) in enumerate(zip(bodyparts, coords, strict=True)):
        part, coord = part.strip(), coord.strip().lower()
        if not part:
            raise GroundTruthError(f"{at}: value column {col + 1} has no bodypart name")
        if coord not in _DLC_COORDS:
            raise GroundTruthError(
                f"{at}: unknown coordinate {coord!r} for bodypart {part!r} (expected x or y)"
            )
        if (part, coord) in cols:
            raise GroundTruthError(f"{at}: bodypart {part!r} has two {coord} columns")
        cols[(part, coord)] = col
        if part not in names:
            names.append(part)
    for part in names:
        have = [c for c in ("x", "y") if (part, c) in cols]
        if len(have) != 2:
            what = f"only {have[0]}" if have else "neither x nor y"
            raise GroundTruthError(f"{at}: bodypart {part!r} has {what}; it needs both x and y")
    return names, [cols[(p, "x")] for p in names], [cols[(p, "y")] for p in names]


def _parse_dlc_csv(path: Path, rows: list[tuple[int, list[str]]]) -> _Labels:
    if len(rows) < 3:
        raise GroundTruthError(f"{path}: a DeepLabCut CSV needs 3 header rows")
    for line, cells in rows[:4]:
        if cells[0].strip().lower() == "individuals":
            raise GroundTruthError(
                f"{path}: line {line}: multi-animal DeepLabCut files (an 'individuals' header "
                f"row) are not supported yet"
            )
    (l0, r0), (l1, r1), (l2, r2) = rows[:3]
    for line, cells, title in ((l1, r1, "bodyparts"), (l2, r2, "coords")):
        if cells[0].strip().lower() != title:
            raise GroundTruthError(
                f"{path}: line {line}: expected the {title!r} header row, got {cells[0]!r}"
            )
    # the index is as wide as the empty cells after the row titles: 1 (a path) or 3 (folders)
    n_index = 1
    while n_index < len(r0) and not r0[n_index].strip():
        n_index += 1
    width = len(r0)
    if n_index >= width:
        raise GroundTruthError(f"{path}: line {l0}: no scorer columns")
    for line, cells in ((l1, r1), (l2, r2)):
        if len(cells) != width:
            raise GroundTruthError(
                f"{path}: line {line}: {len(cells)} values, expected {width} as on line {l0}"
            )
        if any(c.strip() for c in cells[1:n_index]):
            raise GroundTruthError(
                f"{path}: line {line}: header rows disagree on the number of index columns"
            )
    names, xcols, ycols = _dlc_columns(path, r1[n_index:], r2[n_index:], l2)

    data = rows[3:]
    files: list[str] = []
    where: list[str] = []
    points = np.full((len(data), len(names), 2), np.nan)
    first_line: dict[str, int] = {}
    for r, (line, cells) in enumerate(data):
        if len(cells) != width:
            raise GroundTruthError(
                f"{path}: line {line}: {len(cells)} values, expected {width} as in the header"
            )
        name = "/".join(c.strip() for c in cells[:n_index] if c.strip())
        if not name:
            raise GroundTruthError(f"{path}: line {line}: no image path")
        _add_image(path, line, name, first_line, files, where)
        for j, (cx, cy) in enumerate(zip(xcols, ycols, strict=True)):
            part = names[j]
            points[r, j, 0] = _number(path, line, cells[n_index + cx], f"{part} x")
            points[r, j, 1] = _number(path, line, cells[n_index + cy], f"{part} y")
    return _Labels(names, files, where, _pair_missing(points), [])


def _parse_dlc_h5(path: Path) -> _Labels:
    try:
        import pandas as pd
        import tables  # noqa: F401  (pandas.read_hdf needs PyTables)
    except ImportError as exc:
        beside = path.with_suffix(".csv")
        hint = f"or read the CSV beside it ({beside})" if beside.is_file() else "or use the CSV"
        raise GroundTruthError(
            f"{path}: reading DeepLabCut .h5 files needs pandas and PyTables "
            f"(pip install pandas tables); {hint}"
        ) from exc
    try:
        frame = pd.read_hdf(path)
    except Exception as exc:  # PyTables and pandas raise many kinds of errors
        raise GroundTruthError(f"{path}: cannot read HDF5 ({exc})") from exc
    if not isinstance(frame, pd.DataFrame):
        raise GroundTruthError(f"{path}: the HDF5 file does not hold a table")
    level_names = [str(n).lower() for n in frame.columns.names]
    if "individuals" in level_names or frame.columns.nlevels == 4:
        raise GroundTruthError(
            f"{path}: multi-animal DeepLabCut files (an 'individuals' level) are not supported yet"
        )
    if frame.columns.nlevels != 3:
        raise GroundTruthError(
            f"{path}: expected 3 column levels (scorer, bodyparts, coords), "
            f"got {frame.columns.nlevels}"
        )
    names, xcols, ycols = _dlc_columns(
        path,
        [str(c[1]) for c in frame.columns],
        [str(c[2]) for c in frame.columns],
        None,
    )
    try:
        values = frame.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GroundTruthError(f"{path}: non-numeric values ({exc})") from exc
    files = []
    for entry in frame.index:
        parts = entry if isinstance(entry, tuple) else (entry,)
        files.append("/".join(str(p) for p in parts if str(p)))
    where = [f"row {i + 1} ({name})" for i, name in enumerate(files)]
    points = np.stack([values[:, xcols], values[:, ycols]], axis=-1)
    return _Labels(names, files, where, _pair_missing(points), [])


def _parse_dlc_file(path: Path) -> _Labels:
    if path.suffix.lower() in (".h5", ".hdf5", ".hdf"):
        return _parse_dlc_h5(path)
    rows = _csv_rows(path, _read_text(path))
    if not _is_dlc_csv(rows):
        raise GroundTruthError(f"{path}: not a DeepLabCut CSV (the first row is not 'scorer,...')")
    return _parse_dlc_csv(path, rows)


def _dlc_project_root(labels_file: Path) -> Path | None:
    """The project folder of ``<root>/labeled-data/<video>/CollectedData_*.csv``."""
    folder = labels_file.resolve().parent
    return folder.parent.parent if folder.parent.name == "labeled-data" else None


def _dlc_ground_truth(
    files: list[Path],
    source: Path,
    images_dir: Path | None,
    check_images: bool,
    offset: float,
) -> GroundTruth:
    """Read DeepLabCut label files, concatenated, with the skeleton from config.yaml."""
    finder = _ImageFinder()
    parsed: list[_Labels] = []
    paths: list[Path] = []
    roots: list[Path] = []
    for f in files:
        labels = _parse_dlc_file(f)
        root = _dlc_project_root(f)
        if root is not None:
            roots.append(root)
        paths += _resolve_images(f, labels, _search_dirs(f, images_dir), root, check_images, finder)
        parsed.append(labels)

    config_parts: list[str] = []
    config_edges: list[tuple[str, str]] | None = None
    config = roots[0] / "config.yaml" if roots else None
    if config is not None and config.is_file():
        config_parts, config_edges = _read_dlc_config(config)

    seen = list(dict.fromkeys(n for labels in parsed for n in labels.names))
    names = [n for n in config_parts if n in seen] + [n for n in seen if n not in config_parts]
    points = np.full((len(paths), len(names), 2), np.nan)
    start = 0
    for labels in parsed:
        cols = [names.index(n) for n in labels.names]
        points[start : start + len(labels.files), cols] = labels.points + offset
        start += len(labels.files)

    skeleton: list[tuple[int, int]] = []
    unknown: list[str] = []
    for a, b in config_edges or []:
        if a in names and b in names:
            skeleton.append((names.index(a), names.index(b)))
        else:
            unknown += [n for n in (a, b) if n not in names]
    if unknown:
        warnings.warn(
            f"{config}: skeleton edges with bodyparts that are not labelled were left out: "
            f"{', '.join(dict.fromkeys(unknown))}",
            stacklevel=3,
        )
    return GroundTruth(names, paths, points, skeleton, source)


def _read_dlc_project(
    folder: Path, images_dir: Path | None, check_images: bool, offset: float
) -> GroundTruth:
    if not (folder / "config.yaml").is_file():
        raise GroundTruthError(
            f"{folder}: a folder is read as a DeepLabCut project, but it has no config.yaml"
        )
    files: list[Path] = []
    for video in sorted(p for p in (folder / "labeled-data").glob("*") if p.is_dir()):
        found = sorted(video.glob("CollectedData_*.csv")) or sorted(
            video.glob("CollectedData_*.h5")
        )
        files += found
    if not files:
        raise GroundTruthError(f"{folder}: no labeled-data/*/CollectedData_*.csv in the project")
    return _dlc_ground_truth(files, folder, images_dir, check_images, offset)


# ---------------------------------------------------------------------------------------------
# DeepLabCut config.yaml: only the bodyparts and skeleton lists


def _read_dlc_config(path: Path) -> tuple[list[str], list[tuple[str, str]] | None]:
    """Bodyparts and skeleton (pairs of names; None if unreadable) of a DeepLabCut config."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        warnings.warn(f"{path}: cannot read ({exc}); no skeleton", stacklevel=4)
        return [], None
    try:
        import yaml
    except ImportError:
        parts, edges = _config_lists(text)
    else:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            doc = None
        doc = doc if isinstance(doc, dict) else {}
        raw_parts, raw_edges = doc.get("bodyparts"), doc.get("skeleton")
        parts = [str(p) for p in raw_parts] if isinstance(raw_parts, list) else []
        edges = _name_pairs(raw_edges) if raw_edges is not None else []
    if edges is None:
        warnings.warn(f"{path}: could not parse the skeleton; reading without one", stacklevel=4)
    return parts, edges


def _name_pairs(raw: Any) -> list[tuple[str, str]] | None:
    if not isinstance(raw, list):
        return None
    if not all(isinstance(e, list | tuple) and len(e) == 2 for e in raw):
        return None
    return [(str(a), str(b)) for a, b in raw]


def _scalar(text: str) -> str:
    text = re.sub(r"\s+#.*$", "", text).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    return text


def _top_level(text: str, key: str) -> tuple[str, list[str]] | None:
    """The inline value after ``key:`` at the top level and the block lines that follow it."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(rf"{re.escape(key)}\s*:(.*)$", line)
        if m is None:
            continue
        block: list[str] = []
        for nxt in lines[i + 1 :]:
            stripped = nxt.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if not nxt[0].isspace() and not nxt.startswith("-"):
                break  # the next top-level key
            block.append(re.sub(r"\s+#.*$", "", nxt.rstrip()))
        return re.sub(r"(^|\s+)#.*$", "", m.group(1)).strip(), block
    return None


def _flow_items(text: str) -> list[str]:
    inner = text.strip()[1:-1].strip()
    return [_scalar(t) for t in inner.split(",")] if inner else []


def _config_lists(text: str) -> tuple[list[str], list[tuple[str, str]] | None]:
    """Parse ``bodyparts:`` and ``skeleton:`` with a tolerant line parser (no PyYAML)."""
    parts: list[str] = []
    found = _top_level(text, "bodyparts")
    if found is not None:
        inline, block = found
        if inline.startswith("["):
            parts = _flow_items(inline)
        elif not inline:
            parts = [_scalar(b.strip()[1:]) for b in block if b.strip().startswith("-")]

    found = _top_level(text, "skeleton")
    if found is None:
        return parts, []
    inline, block = found
    if inline:
        if not (inline.startswith("[") and inline.endswith("]")):
            return parts, None
        if not inline[1:-1].strip():
            return parts, []
        pairs = [_flow_items(f"[{m}]") for m in re.findall(r"\[([^\[\]]*)\]", inline[1:-1])]
        return parts, _name_pairs(pairs)

    # block style: "- - a" / "  - b", or "- [a, b]"
    if not block:
        return parts, []
    base = min(len(b) - len(b.lstrip()) for b in block)
    edges: list[list[str]] = []
    for line in block:
        indent = len(line) - len(line.lstrip())
        item = line.strip()
        if not item.startswith("-"):
            return parts, None
        rest = item[1:].strip()
        if indent == base:
            edges.append([])
            if rest.startswith("["):
                edges[-1] += _flow_items(rest)
            elif rest.startswith("-"):
                edges[-1].append(_scalar(rest[1:]))
            elif rest:
                return parts, None
        elif edges:
            edges[-1].append(_scalar(rest))
        else:
            return parts, None
    return parts, _name_pairs(edges)
