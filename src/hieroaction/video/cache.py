"""The frame cache: every clip's sampled, resized frames decoded once and reused everywhere.

An entry is one uncompressed file (a small JSON header, then the raw frames, frame indices and
timestamps) named by a hash of

- the source's identity: a video file's resolved path, size and modification time, or a frame
  folder's path, template and the name, size and modification time of every frame image in the
  window (plus the folder's image count when frames are numbered by their sorted order);
- the record's video reference (window, fps);
- the steps' frame ranges when the ``steps`` strategy reads them;
- every :class:`~hieroaction.video.sample.FrameConfig` field and the entry format version.

So editing a video, a window or a setting gives a new entry, never a stale one. Entries are
written with :func:`hieroaction.io.atomic_open` (a temporary file, synced and renamed into
place): a killed process leaves at most a temporary file (swept later), never a half entry.
Training, RL and evaluation read clips through :meth:`FrameCache.load`, so no training step
decodes video; :func:`precompute` fills the cache for a whole records file in parallel processes
and writes the records it could not read to ``failures.jsonl`` in the cache folder.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hieroaction.data.records import BadLine, Record
from hieroaction.errors import HieroActionError, VideoError
from hieroaction.io import atomic_open, write_atomic
from hieroaction.video.decode import read_clip, resolve_source
from hieroaction.video.frame_folder import FrameFolderReader
from hieroaction.video.sample import Clip, FrameConfig

# Bump when the entry layout or the meaning of a setting changes: old entries stop matching.
CACHE_FORMAT = 1

# An entry is one file: MAGIC, then the byte length of a JSON header (little-endian uint64),
# the header (metadata and each array's dtype, shape and offset), then the raw arrays, each
# 64-byte aligned. Reading is one read() per array straight into its buffer: several times
# faster than an .npz, whose zip layer copies and checksums every byte.
MAGIC = b"HAFRAMES"
ENTRY_SUFFIX = ".frames"
_ALIGN = 64

# The failure manifest that precompute writes in the cache folder.
MANIFEST_NAME = "failures.jsonl"

# Temporary files older than this belong to a killed run (a live write takes seconds).
_STALE_TEMP_SECONDS = 3600


class FrameCache:
    """Clips stored once per (source, settings) under ``root``.

    Args:
        root: the cache folder (created when needed).
        base_dir: folder that relative video paths in records are relative to.
        threads: decoder and worker threads per clip on a miss (0: automatic).
    """

    def __init__(
        self, root: str | Path, *, base_dir: str | Path | None = None, threads: int = 0
    ) -> None:
        self.root = Path(root)
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self.threads = threads

    # -- keys ---------------------------------------------------------------------------------

    def key(self, record: Record, config: FrameConfig) -> str:
        """The entry name of ``record``'s clip under ``config`` (hex)."""
        payload = {
            "format": CACHE_FORMAT,
            "source": self._source_identity(record, config),
            "video": record.video.model_dump(),
            "steps": (
                [[s.start_frame, s.end_frame] for s in record.steps]
                if config.strategy == "steps" else None
            ),
            "config": config.to_dict(),
        }
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]

    def _source_identity(self, record: Record, config: FrameConfig) -> dict[str, Any]:
        ref = record.video
        if ref.path:
            path = resolve_source(ref.path, self.base_dir)
            try:
                st = path.stat()
            except OSError:
                raise VideoError(f"{path}: no such video file") from None
            return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        if ref.frames_dir:
            folder = resolve_source(ref.frames_dir, self.base_dir)
            reader = FrameFolderReader(
                folder, ref.frame_template, ref.start_frame, ref.end_frame, ref.fps,
                config.default_fps, config.max_source_side,
            )
            start, end = reader.window(ref.start_frame, ref.end_frame)
            return {
                "frames_dir": str(folder.resolve()),
                "template": ref.frame_template,
                "frames": reader.identity(start, end),
            }
        raise VideoError(f"record {record.id!r} names no video: set video.path or video.frames_dir")

    def path(self, key: str) -> Path:
        """Where the entry ``key`` lives."""
        return self.root / key[:2] / f"{key}{ENTRY_SUFFIX}"

    # -- reading and writing ------------------------------------------------------------------

    def get(self, record: Record, config: FrameConfig) -> Clip | None:
        """The cached clip, or None when it is not cached (or its entry is unreadable)."""
        return self._read(self.key(record, config))

    def load(self, record: Record, config: FrameConfig) -> Clip:
        """The clip from the cache, decoding and storing it first when it is not there."""
        return self.fetch(record, config)[0]

    def fetch(self, record: Record, config: FrameConfig) -> tuple[Clip, bool]:
        """``(clip, hit)``: like :meth:`load`, also saying whether the cache had it."""
        key = self.key(record, config)
        clip = self._read(key)
        if clip is not None:
            return clip, True
        clip = read_clip(record, config, base_dir=self.base_dir, threads=self.threads)
        self.put(key, clip)
        return clip, False

    def _read(self, key: str) -> Clip | None:
        try:
            meta, arrays = _read_entry(self.path(key))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
            # A damaged entry (disk error, foreign file) is a miss: it is rewritten.
            return None
        frames, indices = arrays["frames"], arrays["indices"]
        if meta.get("key") != key or frames.shape[0] != indices.shape[0]:
            return None
        clip_meta = meta["clip"]
        return Clip(
            frames=frames,
            indices=indices,
            timestamps=arrays["timestamps"],
            fps=float(clip_meta["fps"]),
            fps_source=clip_meta["fps_source"],
            source=clip_meta["source"],
            start_frame=int(clip_meta["start_frame"]),
            end_frame=int(clip_meta["end_frame"]),
            decoder=clip_meta["decoder"],
            source_size=(int(clip_meta["source_size"][0]), int(clip_meta["source_size"][1])),
            record_id=clip_meta.get("record_id"),
        )

    def put(self, key: str, clip: Clip) -> Path:
        """Store ``clip`` as entry ``key`` atomically; returns the entry's path."""
        final = self.path(key)
        meta = {"key": key, "clip": clip.metadata()}
        arrays = {
            "frames": np.ascontiguousarray(clip.frames, dtype=np.uint8),
            "indices": np.ascontiguousarray(clip.indices, dtype=np.int64),
            "timestamps": np.ascontiguousarray(clip.timestamps, dtype=np.float64),
        }
        with atomic_open(final, "wb") as fh:
            _write_entry(fh, meta, arrays)
        return final

    def sweep_temporary(self, older_than: float = _STALE_TEMP_SECONDS) -> int:
        """Delete temporary files left by killed runs; returns how many were removed."""
        if not self.root.is_dir():
            return 0
        now = time.time()
        removed = 0
        for tmp in self.root.glob("*/.*.tmp"):
            try:
                if now - tmp.stat().st_mtime > older_than:
                    tmp.unlink()
                    removed += 1
            except OSError:
                continue
        return removed


def _write_entry(fh: Any, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    layout: dict[str, Any] = {}
    # Offsets are relative to the end of the header, so they do not depend on its length.
    offset = 0
    for name, array in arrays.items():
        layout[name] = {"dtype": array.dtype.str, "shape": list(array.shape), "offset": offset}
        offset += -(-array.nbytes // _ALIGN) * _ALIGN
    header = json.dumps({**meta, "format": CACHE_FORMAT, "arrays": layout, "size": offset})
    raw = header.encode("utf-8")
    raw += b" " * (-(len(MAGIC) + 8 + len(raw)) % _ALIGN)
    fh.write(MAGIC + len(raw).to_bytes(8, "little") + raw)
    for array in arrays.values():
        fh.write(memoryview(array).cast("B"))
        fh.write(b"\0" * (-array.nbytes % _ALIGN))


def _read_entry(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    with path.open("rb", buffering=0) as fh:
        head = fh.read(len(MAGIC) + 8)
        if len(head) != len(MAGIC) + 8 or head[: len(MAGIC)] != MAGIC:
            raise ValueError(f"{path}: not a frame cache entry")
        size = int.from_bytes(head[len(MAGIC):], "little")
        meta = json.loads(fh.read(size).decode("utf-8"))
        if meta.get("format") != CACHE_FORMAT:
            raise ValueError(f"{path}: entry format {meta.get('format')}, expected {CACHE_FORMAT}")
        base = len(MAGIC) + 8 + size
        if os.fstat(fh.fileno()).st_size < base + int(meta["size"]):
            raise ValueError(f"{path}: the entry is shorter than its header says")
        arrays = {}
        for name, spec in meta["arrays"].items():
            array = np.empty(tuple(spec["shape"]), dtype=np.dtype(spec["dtype"]))
            fh.seek(base + int(spec["offset"]))
            view = memoryview(array).cast("B")
            if fh.readinto(view) != array.nbytes:
                raise ValueError(f"{path}: the entry's {name} array is cut short")
            arrays[name] = array
    return meta, arrays


# ---------------------------------------------------------------------------------------------
# Precomputing a whole records file
# ---------------------------------------------------------------------------------------------


@dataclass
class Failure:
    """A record whose frames could not be produced."""

    id: str | None
    reason: str

    def to_json(self) -> str:
        """One manifest line."""
        return json.dumps({"id": self.id, "reason": self.reason}, ensure_ascii=False)


@dataclass
class PrecomputeSummary:
    """What :func:`precompute` did."""

    total: int = 0
    hits: int = 0
    written: int = 0
    failures: list[Failure] = field(default_factory=list)
    manifest: str = ""
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        """Records that could not be cached."""
        return len(self.failures)

    def __str__(self) -> str:
        text = (
            f"{self.total} clips: {self.hits} already cached (hits), {self.written} decoded "
            f"(misses), {self.failed} failed in {self.seconds:.1f} s"
        )
        if self.failures:
            text += f"; failures listed in {self.manifest}"
        return text


# Per-process state of precompute's worker processes.
_WORKER: dict[str, Any] = {}


def _init_worker(root: str, base_dir: str | None, config: dict[str, Any], threads: int) -> None:
    _WORKER["cache"] = FrameCache(root, base_dir=base_dir, threads=threads)
    _WORKER["config"] = FrameConfig(**config)


def _precompute_one(line: str) -> tuple[str, str, str]:
    """``(id, "hit" | "miss" | "fail", reason)`` for one record given as JSON."""
    record = Record.model_validate_json(line)
    try:
        _, hit = _WORKER["cache"].fetch(record, _WORKER["config"])
    except HieroActionError as exc:
        return record.id, "fail", str(exc)
    except Exception as exc:  # one odd file must not stop a whole dataset
        return record.id, "fail", f"unexpected {exc.__class__.__name__}: {exc}"
    return record.id, ("hit" if hit else "miss"), ""


def precompute(
    records: Iterable[Record],
    cache_dir: str | Path,
    config: FrameConfig | None = None,
    workers: int = 1,
    *,
    base_dir: str | Path | None = None,
    progress: bool = True,
    bad_lines: Iterable[BadLine] = (),
) -> PrecomputeSummary:
    """Cache the frames of every record; failures go to ``failures.jsonl`` and the rest goes on.

    Args:
        records: the records to prepare.
        cache_dir: the cache folder.
        config: frame settings (defaults: :class:`FrameConfig`).
        workers: processes decoding in parallel (1: in this process).
        base_dir: folder that relative video paths are relative to.
        progress: show a progress bar on stderr.
        bad_lines: unreadable lines of the records file, listed in the manifest too.

    Returns:
        Counts of hits, newly written entries and failures, and the manifest's path.
    """
    from tqdm import tqdm

    config = config or FrameConfig()
    started = time.perf_counter()
    root = Path(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    cache = FrameCache(root, base_dir=base_dir)
    cache.sweep_temporary()
    records = list(records)
    bad = [Failure(None, str(line)) for line in bad_lines]
    summary = PrecomputeSummary(total=len(records) + len(bad), manifest=str(root / MANIFEST_NAME))
    summary.failures.extend(bad)
    workers = max(1, int(workers))
    threads = max(1, (os.cpu_count() or 1) // workers)
    bar = tqdm(total=len(records), desc="frames", unit="clip", disable=not progress, file=sys.stderr)
    try:
        for record_id, status, reason in _run(records, root, base_dir, config, workers, threads):
            if status == "hit":
                summary.hits += 1
            elif status == "miss":
                summary.written += 1
            else:
                summary.failures.append(Failure(record_id, reason))
            bar.update(1)
    finally:
        bar.close()
        _write_manifest(root / MANIFEST_NAME, summary.failures)
        summary.seconds = time.perf_counter() - started
    return summary


def _run(
    records: list[Record],
    root: Path,
    base_dir: str | Path | None,
    config: FrameConfig,
    workers: int,
    threads: int,
) -> Iterator[tuple[str, str, str]]:
    init_args = (str(root), str(base_dir) if base_dir is not None else None, config.to_dict(), threads)
    lines = [record.to_json() for record in records]
    if workers == 1 or len(lines) <= 1:
        _init_worker(*init_args)
        for line in lines:
            yield _precompute_one(line)
        return
    # spawn: safe with threads and on every platform (fork would copy decoder threads' state).
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=init_args) as pool:
        yield from pool.imap_unordered(_precompute_one, lines, chunksize=1)


def _write_manifest(path: Path, failures: list[Failure]) -> None:
    # Rewritten on every run (empty when nothing failed), so it never lists fixed records.
    write_atomic(path, "".join(failure.to_json() + "\n" for failure in failures))
