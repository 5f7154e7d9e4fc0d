"""Files on disk: writes a reader never sees half of, and readers that say why a file is unusable.

Writes go to a temporary file in the destination folder (``.<name>.<pid>.<random>.tmp``), are
flushed and synced, then renamed into place (``os.replace`` is atomic on one file system), and the
folder is synced where the operating system allows it, so the rename itself survives a power cut.
A crash or an exception at any point leaves either the previous file or the complete new one,
never a partial file; an exception removes the temporary file, a killed process may leave it
(the frame cache sweeps its own).

The readers raise one :class:`~hieroaction.errors.HieroActionError` (``ConfigError`` unless the
caller names another) whose message is one sentence: the file cannot be read, is not valid JSON
or YAML, or does not hold a mapping.

This module is the bottom floor: it imports nothing from the package but ``hieroaction.errors``.
"""

from __future__ import annotations

import errno
import json
import math
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, Union

import yaml

from hieroaction.errors import ConfigError, HieroActionError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

# A file to read: a path, or a file shipped with the package (``importlib.resources.files``).
Source = Union[str, "os.PathLike[str]", "Traversable"]


# --- writing ------------------------------------------------------------------------------------


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Sync ``folder`` so that a rename inside it survives a power cut; nothing where the
    operating system cannot open a folder (Windows) or the file system cannot sync one."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        # A file system that does not sync folders; the file itself is synced.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


@contextmanager
def _renamed_into_place(path: Path) -> Iterator[Path]:
    """A temporary name next to ``path``, renamed to ``path`` on a clean exit and removed on an
    exception."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: Literal["w", "wb"] = "w") -> Iterator[IO[Any]]:
    """A file to write ``path`` through: UTF-8 text (``"\\n"`` line ends) with ``mode="w"``,
    bytes with ``"wb"``. It becomes ``path`` (synced) only when the ``with`` block ends without
    an exception; until then ``path`` keeps its previous content."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes with mode 'w' or 'wb', not {mode!r}")
    text = {"encoding": "utf-8", "newline": "\n"} if mode == "w" else {}
    with _renamed_into_place(Path(path)) as tmp, open(tmp, mode, **text) as fh:
        yield fh
        fh.flush()
        # Synced before the rename, so a power cut cannot leave a named but empty file.
        os.fsync(fh.fileno())


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary file name next to ``path``, for writers that want a name rather than a file
    object (a video encoder): the file written there is synced and renamed to ``path`` when the
    ``with`` block ends without an exception, and removed when it raises."""
    with _renamed_into_place(Path(path)) as tmp:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write ``data`` (text is UTF-8) to ``path`` atomically; returns the path."""
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with atomic_open(path, "wb") as fh:
        fh.write(payload)
    return Path(path)


def json_ready(value: Any) -> Any:
    """``value`` with NaN and infinities turned into ``None`` (JSON has no such numbers),
    tuples into lists and numpy scalars into Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps_json(value: Any, indent: int | None = 2) -> str:
    """Strict JSON text of ``value`` (see :func:`json_ready`), ending with a newline."""
    return json.dumps(json_ready(value), indent=indent, ensure_ascii=False, allow_nan=False) + "\n"


def write_json_atomic(path: str | os.PathLike[str], value: Any) -> Path:
    """Serialise ``value`` completely first, then write it atomically: a value that cannot be
    written as JSON raises before the destination is touched."""
    return write_atomic(path, dumps_json(value))


def write_jsonl_atomic(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    """One JSON object per line, written atomically."""
    lines: Sequence[str] = [dumps_json(row, indent=None) for row in rows]
    return write_atomic(path, "".join(lines))


def append_jsonl(path: str | os.PathLike[str], *rows: Mapping[str, Any]) -> None:
    """Append one JSON object per line to ``path`` (a log: not atomic, and not synced). Every row
    is serialised before the file is opened, so a row that is not JSON appends nothing."""
    text = "".join(dumps_json(row, indent=None) for row in rows)
    with open(path, "a", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


# --- reading ------------------------------------------------------------------------------------


def _read_text(path: Source, name: str, unreadable: str, error: type[HieroActionError]) -> str:
    source = Path(path) if isinstance(path, (str, os.PathLike)) else path
    try:
        return source.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
    except UnicodeDecodeError:
        reason = "not UTF-8 text"
    raise error(f"{name}: {unreadable} ({reason})")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a text"
    return "a list" if isinstance(value, list) else f"a {type(value).__name__}"


def read_json(
    path: Source, *, name: str | None = None, error: type[HieroActionError] = ConfigError
) -> Any:
    """The JSON value in ``path``, or ``error`` saying in one sentence why there is none.
    ``name`` stands for the file in the message (default: the path)."""
    name = name or str(path)
    text = _read_text(path, name, "not a readable JSON file", error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        detail = f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
        raise error(f"{name}: not a readable JSON file ({detail})") from None


def read_json_object(
    path: Source, *, name: str | None = None, error: type[HieroActionError] = ConfigError
) -> dict[str, Any]:
    """A JSON file holding an object, or ``error`` saying in one sentence why it is not one."""
    data = read_json(path, name=name, error=error)
    if not isinstance(data, dict):
        kind = "null" if data is None else _kind(data)
        raise error(f"{name or path}: expected a JSON object, found {kind}")
    return data


def read_yaml_mapping(
    path: Source,
    *,
    what: str = "YAML file",
    name: str | None = None,
    error: type[HieroActionError] = ConfigError,
    empty_ok: bool = False,
) -> dict[str, Any]:
    """A YAML file holding a mapping, or ``error`` saying in one sentence why it is not one.

    ``what`` names the file's role in the messages ("cannot read the config file (...)"), ``name``
    stands for the file (default: the path); ``empty_ok`` reads an empty file as ``{}``.
    """
    name = name or str(path)
    text = _read_text(path, name, f"cannot read the {what}", error)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        detail = f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem
        raise error(f"{name}: cannot read the {what} (not valid YAML: {detail})") from None
    if data is None and empty_ok:
        return {}
    if not isinstance(data, dict):
        kind = "an empty file" if data is None else _kind(data)
        raise error(f"{name}: the {what} must be a YAML mapping of keys to values, not {kind}")
    return data
