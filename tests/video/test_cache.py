"""The frame cache: keys, hits, atomic writes, precompute with a failure manifest, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from hieroaction.cli import main
from hieroaction.data.records import Record, Step, VideoRef, write_jsonl
from hieroaction.video.cache import MANIFEST_NAME, FrameCache, precompute
from hieroaction.video.decode import read_clip
from hieroaction.video.sample import FrameConfig
from tests.video.media import make_frames, make_video

SMALL = FrameConfig(num_frames=4, min_pixels=56 * 56, max_pixels=112 * 112)


@pytest.fixture()
def video(tmp_path: Path) -> Path:
    return make_video(tmp_path / "clip.mp4", n=30)


def _record(path: Path, rid: str = "r1", **video: object) -> Record:
    return Record(id=rid, video=VideoRef(path=str(path), **video))


def _entries(root: Path) -> list[Path]:
    return sorted(root.glob("*/*.frames"))


def test_miss_then_hit_gives_the_same_clip(tmp_path: Path, video: Path) -> None:
    cache = FrameCache(tmp_path / "cache")
    record = _record(video, start_frame=3, end_frame=27)
    first, hit1 = cache.fetch(record, SMALL)
    second, hit2 = cache.fetch(record, SMALL)
    assert (hit1, hit2) == (False, True)
    np.testing.assert_array_equal(first.frames, second.frames)
    np.testing.assert_array_equal(first.indices, second.indices)
    np.testing.assert_array_equal(first.timestamps, second.timestamps)
    assert first.metadata() == second.metadata()
    assert second.record_id == "r1" and second.fps_source == "container"
    fresh = read_clip(record, SMALL)
    np.testing.assert_array_equal(fresh.frames, second.frames)
    assert len(_entries(tmp_path / "cache")) == 1


def test_key_follows_settings_window_and_file(tmp_path: Path, video: Path) -> None:
    cache = FrameCache(tmp_path / "cache")
    record = _record(video)
    base = cache.key(record, SMALL)
    assert cache.key(record, SMALL) == base
    assert cache.key(record, FrameConfig(num_frames=5, min_pixels=56 * 56, max_pixels=112 * 112)) != base
    assert cache.key(record, FrameConfig(**{**SMALL.to_dict(), "decoder": "pyav"})) != base
    assert cache.key(_record(video, start_frame=1), SMALL) != base
    assert cache.key(_record(video, fps=10.0), SMALL) != base
    # Steps only matter to the steps strategy.
    stepped = record.model_copy(update={"steps": [Step(label="a", start_frame=0, end_frame=5)]})
    assert cache.key(stepped, SMALL) == base
    steps_cfg = FrameConfig(**{**SMALL.to_dict(), "strategy": "steps", "min_frames_per_step": 1})
    assert cache.key(stepped, steps_cfg) != cache.key(record, steps_cfg)
    # A rewritten file is another source.
    os.utime(video, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert cache.key(record, SMALL) != base


def test_frame_folder_key_follows_its_images(tmp_path: Path) -> None:
    folder = make_frames(tmp_path / "frames", range(10), "{:05d}.png")
    record = Record(id="f", video=VideoRef(frames_dir=str(folder), frame_template="{:05d}.png",
                                           start_frame=0, end_frame=9))
    cache = FrameCache(tmp_path / "cache")
    base = cache.key(record, SMALL)
    make_frames(folder, [4], "{:05d}.png", height=48, width=64)  # rewritten in place
    os.utime(folder / "00004.png", ns=(time.time_ns(), time.time_ns() + 10**9))
    assert cache.key(record, SMALL) != base
    clip, hit = cache.fetch(record, SMALL)
    assert not hit and clip.decoder == "images"
    assert cache.fetch(record, SMALL)[1]


def test_damaged_entry_is_a_miss_and_is_rewritten(tmp_path: Path, video: Path) -> None:
    cache = FrameCache(tmp_path / "cache")
    record = _record(video)
    cache.load(record, SMALL)
    entry = _entries(tmp_path / "cache")[0]
    whole = entry.read_bytes()
    entry.write_bytes(whole[:-100])  # cut short
    assert cache.get(record, SMALL) is None
    entry.write_bytes(b"garbage")
    assert cache.get(record, SMALL) is None
    clip, hit = cache.fetch(record, SMALL)
    assert not hit and clip.num_frames == 4
    assert cache.get(record, SMALL) is not None


def test_failed_write_leaves_no_entry_and_no_temporary(
    tmp_path: Path, video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = FrameCache(tmp_path / "cache")

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        cache.load(_record(video), SMALL)
    assert list((tmp_path / "cache").rglob("*")) == [p for p in (tmp_path / "cache").rglob("*") if p.is_dir()]


def test_killed_writer_never_leaves_a_half_entry(tmp_path: Path, video: Path) -> None:
    root = tmp_path / "cache"
    # A process killed (SIGKILL) in the middle of writing an entry, after the data is written
    # but before the rename: only its temporary file may remain.
    script = textwrap.dedent(f"""
        import os, signal
        from hieroaction.data.records import Record, VideoRef
        from hieroaction.video.cache import FrameCache
        from hieroaction.video.sample import FrameConfig
        os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
        FrameCache({str(root)!r}).load(Record(id="k", video=VideoRef(path={str(video)!r})),
                                       FrameConfig(num_frames=4, min_pixels=3136, max_pixels=12544))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert result.returncode == -9, result.stderr.decode()
    assert _entries(root) == []
    temporary = list(root.glob("*/.*.tmp"))
    assert len(temporary) == 1
    cache = FrameCache(root)
    assert cache.sweep_temporary(older_than=3600) == 0  # a recent one may be a live write
    assert cache.sweep_temporary(older_than=0) == 1
    assert list(root.glob("*/.*.tmp")) == []


def _dataset(tmp_path: Path) -> Path:
    make_video(tmp_path / "videos" / "a.mp4", n=30)
    make_video(tmp_path / "videos" / "b.mkv", n=20)
    (tmp_path / "videos" / "text.mp4").write_text("not a video")
    (tmp_path / "videos" / "zero.mp4").write_bytes(b"")
    make_frames(tmp_path / "frames" / "c", range(100, 120), "{:05d}.png")
    records = [
        Record(id="a", video=VideoRef(path="videos/a.mp4", start_frame=2, end_frame=20)),
        Record(id="b", video=VideoRef(path="videos/b.mkv")),
        Record(id="text", video=VideoRef(path="videos/text.mp4")),
        Record(id="zero", video=VideoRef(path="videos/zero.mp4")),
        Record(id="past", video=VideoRef(path="videos/a.mp4", start_frame=10, end_frame=90)),
        Record(id="c", video=VideoRef(frames_dir="frames/c", frame_template="{:05d}.png",
                                      start_frame=100, end_frame=119)),
    ]
    path = tmp_path / "records.jsonl"
    write_jsonl(records, path)
    return path


def _manifest(cache: Path) -> dict[str | None, str]:
    lines = (cache / MANIFEST_NAME).read_text().splitlines()
    return {row["id"]: row["reason"] for row in map(json.loads, lines)}


def test_precompute_records_failures_and_finishes_the_rest(tmp_path: Path) -> None:
    data = _dataset(tmp_path)
    from hieroaction.data.records import read_jsonl

    records = read_jsonl(data)
    cache_dir = tmp_path / "cache"
    summary = precompute(records, cache_dir, SMALL, base_dir=tmp_path, progress=False)
    assert (summary.total, summary.written, summary.hits, summary.failed) == (6, 3, 0, 3)
    failures = _manifest(cache_dir)
    assert set(failures) == {"text", "zero", "past"}
    assert "text.mp4" in failures["text"] and "not a video" in failures["text"]
    assert "empty" in failures["zero"]
    assert "past the end" in failures["past"]
    # Every entry is complete and loads.
    cache = FrameCache(cache_dir, base_dir=tmp_path)
    for record in records:
        if record.id not in failures:
            assert cache.get(record, SMALL) is not None
    assert len(_entries(cache_dir)) == 3
    again = precompute(records, cache_dir, SMALL, base_dir=tmp_path, progress=False)
    assert (again.hits, again.written, again.failed) == (3, 0, 3)


def test_precompute_in_worker_processes(tmp_path: Path) -> None:
    data = _dataset(tmp_path)
    from hieroaction.data.records import read_jsonl

    records = read_jsonl(data)
    summary = precompute(records, tmp_path / "cache", SMALL, workers=2, base_dir=tmp_path,
                         progress=False)
    assert (summary.written, summary.failed) == (3, 3)
    assert set(_manifest(tmp_path / "cache")) == {"text", "zero", "past"}


def test_cli_frames_second_run_is_all_hits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _dataset(tmp_path)
    with data.open("a") as fh:
        fh.write("{ not json\n")
    cache = tmp_path / "cache"
    args = ["data", "frames", "--data", str(data), "--cache", str(cache), "--no-progress",
            "--num_frames", "4", "--max_pixels", "12544", "--min_pixels", "3136"]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "3 decoded (misses)" in out and "4 failed" in out
    failures = _manifest(cache)
    assert None in failures and "records.jsonl:7" in failures[None]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "3 already cached (hits), 0 decoded" in out


def test_cli_frames_reads_a_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_video(tmp_path / "a.mp4", n=30)
    write_jsonl([Record(id="a", video="a.mp4")], tmp_path / "r.jsonl")
    config = tmp_path / "frames.yaml"
    config.write_text("strategy: fps\nfps: 5\nmax_frames: 3\nresize: false\n")
    cache = tmp_path / "cache"
    assert main(["data", "frames", "--data", str(tmp_path / "r.jsonl"), "--cache", str(cache),
                 "--config", str(config), "--no-progress"]) == 0
    clip = FrameCache(cache, base_dir=tmp_path).get(
        Record(id="a", video="a.mp4"),
        FrameConfig(strategy="fps", fps=5, max_frames=3, resize=False),
    )
    assert clip is not None and clip.indices.tolist() == [0, 14, 29]
    assert clip.frames.shape == (3, 48, 64, 3)
    assert main(["data", "frames", "--data", str(tmp_path / "r.jsonl"), "--cache", str(cache),
                 "--no-such-setting", "1"]) == 2
    assert "unknown config key" in capsys.readouterr().err
