"""Writing result files so that a reader never sees half of one.

Evaluation results are written to a temporary file in the destination folder, synced and then
renamed into place (``os.replace`` is atomic on one file system): a crash or an exception at
any point leaves either the previous file or the complete new one, never a partial file.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (text is UTF-8) to ``path`` atomically; returns the path.

    The temporary file is removed again when anything fails before the rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(payload)
            fh.flush()
            # Synced before the rename, so a power cut cannot leave a named but empty file.
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


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


def write_json_atomic(path: str | Path, value: Any) -> Path:
    """Serialise ``value`` completely first, then write it atomically: a value that cannot be
    written as JSON raises before the destination is touched."""
    return write_atomic(path, dumps_json(value))


def write_jsonl_atomic(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """One JSON object per line, written atomically."""
    lines: Sequence[str] = [dumps_json(row, indent=None) for row in rows]
    return write_atomic(path, "".join(lines))
