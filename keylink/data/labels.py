"""Class labels for the weak method: a CSV naming an image and its class per row, or one sub-folder
per class.

A labels CSV may list more images than the folder holds (a data set's full attribute table beside
a subset of its images): rows whose image is not there are left out with a warning, and it is an
error only when none is there.
"""

from __future__ import annotations

import csv
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from keylink.config import ConfigError
from keylink.data.images import IMAGE_SUFFIXES, list_images

# Header names (lower case, letters and digits only) that name the image of a row.
IMAGE_COLUMN_NAMES = (
    "image", "imagename", "imagepath", "imagefile", "img", "file", "filename", "filepath", "path",
    "name",
)  # fmt: skip


class LabelError(ConfigError):
    """Class labels that cannot be used; the message says why and what to change."""


class LabelWarning(UserWarning):
    """Some labelled images were left out (missing, or rows without a class)."""


@dataclass
class LabelledImages:
    """Images with a class index each."""

    paths: list[Path]
    labels: np.ndarray  # (N,) int64 indices into classes
    classes: list[str]
    missing: list[str] = field(default_factory=list)  # labelled, but not found in the folder

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self) -> dict[str, int]:
        found = Counter(self.labels.tolist())
        return {name: found.get(i, 0) for i, name in enumerate(self.classes)}

    def subset(self, index) -> LabelledImages:
        idx = np.asarray(index, dtype=np.intp).reshape(-1)
        return LabelledImages(
            [self.paths[i] for i in idx], self.labels[idx].copy(), list(self.classes)
        )


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _looks_like_image(value: str) -> bool:
    return Path(value.strip()).suffix.lower() in IMAGE_SUFFIXES


def read_labels(
    images: str | Path,
    labels: str | Path | None = None,
    column: str | None = None,
    image_column: str | None = None,
    classes: list[str] | None = None,
) -> LabelledImages:
    """Class-labelled images of the folder ``images``.

    With ``labels`` (a CSV with a header row), ``image_column`` names each row's image, as a path
    relative to ``images`` or a bare file name found anywhere under it (detected from the header or
    the values when not given), and ``column`` its class. Without ``labels``, every sub-folder of
    ``images`` holding images is a class. ``classes`` fixes the class order (a resumed run's);
    by default they are sorted. Raises LabelError with what to change.
    """
    root = Path(images).expanduser()
    if labels is None:
        return _from_folders(root, classes)
    return _from_csv(root, Path(labels), column, image_column, classes)


def _from_folders(root: Path, classes: list[str] | None) -> LabelledImages:
    paths = list_images(root)
    by_class: dict[str, list[Path]] = {}
    loose = 0
    for path in paths:
        parts = path.relative_to(root).parts
        if len(parts) < 2:
            loose += 1
            continue
        by_class.setdefault(parts[0], []).append(path)
    if len(by_class) < 2:
        raise LabelError(
            f"{root}: no class labels: give --labels LABELS.csv --label-column COLUMN, or put the "
            f"images of each class in their own sub-folder (found {len(by_class)} sub-folder(s) "
            "with images)"
        )
    if loose:
        warnings.warn(
            f"{loose} image(s) directly in {root} are not in a class sub-folder and are left out",
            LabelWarning,
            stacklevel=3,
        )
    return _finish(by_class, classes, [], f"sub-folders of {root}")


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")
    except OSError as err:
        raise LabelError(f"cannot read labels file {path}: {err}") from err
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = [row for row in csv.reader(text.splitlines(), dialect) if any(c.strip() for c in row)]
    if len(rows) < 2:
        raise LabelError(f"{path}: expected a header row and at least one labelled image")
    header = [h.strip() for h in rows[0]]
    return header, rows[1:]


def _pick_image_column(path: Path, header: list[str], rows: list[list[str]], given: str | None):
    if given is not None:
        if given not in header:
            raise LabelError(
                f"{path}: no column {given!r} for the images; columns: {', '.join(header)}"
            )
        return header.index(given)
    keys = [_key(h) for h in header]
    for name in IMAGE_COLUMN_NAMES:
        if name in keys:
            return keys.index(name)
    sample = rows[:200]
    for j in range(len(header)):
        if all(j < len(r) and _looks_like_image(r[j]) for r in sample):
            return j
    raise LabelError(
        f"{path}: cannot tell which column names the images; pass --image-column "
        f"(columns: {', '.join(header)})"
    )


def _from_csv(
    root: Path, path: Path, column: str | None, image_column: str | None, classes
) -> LabelledImages:
    if not path.is_file():
        raise LabelError(f"labels file not found: {path}")
    if not root.is_dir():
        raise LabelError(f"image folder does not exist: {root}")
    header, rows = _read_rows(path)
    image_j = _pick_image_column(path, header, rows, image_column)
    others = [h for i, h in enumerate(header) if i != image_j]
    if column is None:
        if len(others) != 1:
            raise LabelError(
                f"{path}: which column holds the classes? pass --label-column, one of: "
                f"{', '.join(others)}"
            )
        column = others[0]
    if column not in header:
        raise LabelError(f"{path}: no column {column!r}; columns: {', '.join(header)}")
    label_j = header.index(column)
    if label_j == image_j:
        raise LabelError(f"{path}: column {column!r} names the images, not their classes")

    index: dict[str, list[Path]] | None = None  # bare file name -> paths, built when needed
    chosen: dict[Path, str] = {}
    missing: list[str] = []
    unlabelled = 0
    for line, row in enumerate(rows, start=2):
        name = row[image_j].strip() if image_j < len(row) else ""
        label = row[label_j].strip() if label_j < len(row) else ""
        if not name:
            raise LabelError(f"{path}, line {line}: no image name in column {header[image_j]!r}")
        if not label:
            unlabelled += 1
            continue
        candidate = Path(name) if Path(name).is_absolute() else root / name
        if not candidate.is_file():
            if index is None:
                index = {}
                for p in list_images(root):
                    index.setdefault(p.name, []).append(p)
            found = index.get(Path(name).name, [])
            if len(found) > 1:
                raise LabelError(
                    f"{path}, line {line}: {name!r} matches {len(found)} files under {root} "
                    f"(e.g. {found[0]} and {found[1]}); give paths relative to {root}"
                )
            if not found:
                missing.append(name)
                continue
            candidate = found[0]
        previous = chosen.get(candidate)
        if previous is not None and previous != label:
            raise LabelError(
                f"{path}, line {line}: {name!r} is labelled both {previous!r} and {label!r}"
            )
        chosen[candidate] = label
    if unlabelled:
        warnings.warn(
            f"{unlabelled} row(s) of {path} have no {column!r} and are left out",
            LabelWarning,
            stacklevel=3,
        )
    if not chosen:
        example = f", e.g. {root / missing[0]}" if missing else ""
        raise LabelError(
            f"none of the {len(rows)} images listed in {path} is in {root}{example}; image names "
            f"in column {header[image_j]!r} must be relative to the image folder"
        )
    if missing:
        warnings.warn(
            f"{len(missing)} of the {len(rows)} images listed in {path} are not in {root} and are "
            f"left out (e.g. {', '.join(missing[:3])}); using the {len(chosen)} found",
            LabelWarning,
            stacklevel=3,
        )
    by_class: dict[str, list[Path]] = {}
    for p, label in chosen.items():
        by_class.setdefault(label, []).append(p)
    return _finish(by_class, classes, missing, f"column {column!r} of {path}")


def _finish(
    by_class: dict[str, list[Path]], classes: list[str] | None, missing: list[str], where: str
) -> LabelledImages:
    if classes:
        unknown = sorted(set(by_class) - set(classes))
        if unknown:
            raise LabelError(
                f"{where}: class(es) {', '.join(map(repr, unknown))} are not among the run's "
                f"classes ({', '.join(classes)})"
            )
        names = list(classes)
    else:
        names = sorted(by_class)
    if len(names) < 2:
        raise LabelError(
            f"{where}: only one class ({names[0]!r}); a classifier needs at least two classes"
        )
    pairs = sorted((p, names.index(c)) for c, ps in by_class.items() for p in ps)
    return LabelledImages(
        paths=[p for p, _ in pairs],
        labels=np.array([c for _, c in pairs], dtype=np.int64),
        classes=names,
        missing=missing,
    )
