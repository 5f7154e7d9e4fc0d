"""The generic format for a user's own data: JSONL of unified records, or a documented CSV."""

import pytest

from hieroaction.data.adapters import get_adapter
from hieroaction.data.adapters.generic import load, locate_clip, observed_range, stable_order
from hieroaction.data.convert import convert_dataset
from hieroaction.data.records import read_jsonl
from hieroaction.data.validate import validate_dataset
from hieroaction.errors import DataError
from tests.data.other_fixtures import by_id, write_generic


def test_jsonl_and_csv_records(tmp_path):
    root = write_generic(tmp_path / "clinic")
    result = get_adapter("generic").load(root, None)
    records = by_id(result)
    assert sorted(records) == ["lunge_01", "lunge_02", "squat_01", "squat_02"]
    minimal = records["squat_01"]  # {"id", "video", "score"} only
    assert minimal.video.path == str(root / "clips" / "squat_01.mp4")  # relative to the file
    assert minimal.score.final == 7.5 and (minimal.dataset, minimal.domain) == ("custom", "generic")
    full = records["squat_02"]
    assert full.video.path == "/data/abs/squat_02.mp4"  # absolute paths are kept
    assert [s.label for s in full.steps] == ["descent", "ascent"] and full.steps[1].score == 3.0
    assert full.commentary == "knees cave in" and full.split == "test"
    lunge = records["lunge_01"]  # the CSV row with every column
    assert lunge.video.frames_dir == str(root / "clips" / "lunge_frames")
    assert (lunge.video.start_frame, lunge.video.end_frame, lunge.video.fps) == (0, 120, 25.0)
    assert lunge.score.final == 70.5 and lunge.score.judges == [7.0, 8.0, 7.5]
    assert lunge.score.components == {"tes": 40.0, "pcs": 31.5, "deductions": 1.0}
    assert lunge.score.range == (0.0, 100.0)
    assert lunge.action.label == "lunge" and lunge.action.attributes == {
        "reps": 10, "patient": "007", "load": 12.5}
    assert (lunge.domain, lunge.split) == ("figure_skating", "train")
    empty_cells = records["lunge_02"]
    assert empty_cells.score.final is None and empty_cells.video.path.endswith("lunge_02.mp4")
    problems = sorted((p.kind, p.id) for p in result.problems)
    assert problems == [("unreadable", "records.jsonl:3"), ("unreadable", "squat_01"),
                        ("unreadable", "visits.csv:4")]
    assert "column 'score'" in next(p.detail for p in result.problems if p.id == "visits.csv:4")


def test_validate_and_convert_round_trip(tmp_path):
    root = write_generic(tmp_path / "clinic")
    report = validate_dataset("generic", root)
    assert report.records == 4 and report.splits == {"none": 1, "test": 1, "train": 2}
    assert {p.kind for p in report.problems} == {"unreadable"}  # lunge_01's formula holds
    summary = convert_dataset("generic", root, tmp_path / "out" / "records.jsonl")
    assert summary.written == 4 and len(summary.skipped) == 3
    again = read_jsonl(tmp_path / "out" / "records.jsonl")
    assert again == load(root).records
    # the converted file is itself generic input, and reads back the same
    assert load(tmp_path / "out" / "records.jsonl").records == again


def test_csv_header_errors_and_empty_folders(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,video,scroe\nc1,a.mp4,3\n", encoding="utf-8")
    with pytest.raises(DataError, match="unknown CSV column 'scroe'"):
        load(bad)
    bad.write_text("video,score\na.mp4,3\n", encoding="utf-8")
    with pytest.raises(DataError, match="no 'id' column"):
        load(bad)
    bad.write_text("id,component:,score\nc1,1,3\n", encoding="utf-8")
    with pytest.raises(DataError, match="'component:'"):
        load(bad)
    bad.write_text("id,score\nc1,3,4\n", encoding="utf-8")
    result = load(bad)
    assert result.records == [] and "has 3 cells" in result.problems[0].detail
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .jsonl or .csv"):
        load(tmp_path / "empty")
    with pytest.raises(DataError, match="no such annotations folder or file"):
        load(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match=".jsonl or .csv"):
        load(tmp_path / "notes.txt")


def test_shared_helpers(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "frames").mkdir()
    assert locate_clip(tmp_path, ["x.mp4", "a.mp4"]) == (str(tmp_path / "a.mp4"), None)
    assert locate_clip(tmp_path, ["frames", "a.mp4"]) == (None, str(tmp_path / "frames"))
    assert locate_clip(tmp_path, ["x.mp4"]) == (None, None)
    assert locate_clip(None, ["a.mp4"]) == (None, None)
    order = stable_order([str(i) for i in range(20)], "salt")
    assert order == stable_order([str(i) for i in reversed(range(20))], "salt")
    assert order != stable_order([str(i) for i in range(20)], "pepper")
    assert observed_range([3.0, 1.0, float("nan"), 2.0]) == (1.0, 3.0)
    assert observed_range([2.0, 2.0]) is None and observed_range([]) is None
