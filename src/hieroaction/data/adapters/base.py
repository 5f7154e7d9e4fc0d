"""What every dataset adapter provides, and helpers they share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from hieroaction.data.records import Record
from hieroaction.errors import DataError
from hieroaction.io import read_yaml_mapping


@dataclass
class Problem:
    """A record whose annotations contradict each other or cannot be used as they are.

    ``kind`` is one of: ``score_rule`` (the final score differs from the domain rule),
    ``steps`` (step annotations noisy or out of range), ``missing`` (a split key with no
    annotation), ``unreadable`` (an annotation that could not be turned into a record at all),
    ``label`` (a label that does not fit the domain's grammar).
    """

    id: str
    kind: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "kind": self.kind, "detail": self.detail}


@dataclass
class LoadResult:
    """Records an adapter built, and the problems it found on the way.

    A record with a ``score_rule`` or ``steps`` problem is still returned (the problem is a
    warning about its labels); an ``unreadable`` or ``missing`` one is not.
    """

    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class Adapter:
    """A reader of one dataset's original annotation files.

    ``load(annotations_dir, frames_dir)`` returns a :class:`LoadResult`; it raises
    :class:`~hieroaction.errors.DataError` only when the dataset as a whole cannot be read (a
    missing folder or required file, a file of the wrong type), never for one bad record.
    """

    name: str
    domain: str
    description: str
    files: tuple[str, ...]  # the original file names it reads (required ones first)
    load: Callable[[Path, Path | None], LoadResult]


def find_file(root: Path, name: str, required: bool = True) -> Path | None:
    """The file called ``name`` anywhere under ``root`` (shallowest first)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such annotations folder")
    direct = root / name
    if direct.is_file():
        return direct
    matches = sorted(root.rglob(name), key=lambda p: (len(p.parts), str(p)))
    matches = [m for m in matches if m.is_file()]
    if matches:
        return matches[0]
    if required:
        raise DataError(f"{root}: no file named {name!r} in this folder or below it")
    return None


def find_files(root: Path, pattern: str) -> list[Path]:
    """All files under ``root`` matching the glob ``pattern``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such annotations folder")
    return sorted(p for p in root.rglob(pattern) if p.is_file())


@lru_cache(maxsize=None)
def dataset_description(filename: str) -> dict[str, Any]:
    """The parsed dataset description ``domains/data/datasets/<filename>`` (file names, class
    names, label sets, fps: each dataset's facts as data)."""
    ref = resources.files("hieroaction.domains") / "data" / "datasets" / filename
    return read_yaml_mapping(ref, what="dataset description", name=filename, error=DataError)
