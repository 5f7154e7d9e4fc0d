import pickle
import time
from pathlib import Path

import numpy as np
import pytest

from hieroaction.data.adapters import get_adapter
from hieroaction.data.adapters.finediving import FineDivingOptions, load, record_id
from hieroaction.data.records import read_jsonl, write_jsonl
from hieroaction.data.validate import validate_dataset
from hieroaction.domains.diving import parse_dive_number
from hieroaction.errors import DataError, UnsafePickleError
from tests.data.diving_fixtures import STYLES, write_finediving, write_finediving_bulk

FRAMES = Path("/data/FineDiving/FINADiving_MTL_256s")  # not on this machine: no clip has frames there

# case -> (problem kind, words its detail must contain); every other case has no problem
EXPECTED_PROBLEMS = {
    "negative_transit": ("steps", "[-1, 79] has a negative entry"),
    "unsorted_transit": ("steps", "[69, 19] is not strictly increasing"),
    "transit_past_end": ("steps", "[500] at or past the clip's last frame (99)"),
    "transit_disagrees": ("steps", "[24, 69] differs from the frames_labels step ends [19, 69]"),
    "flicker": ("steps", "1 run(s) shorter than 2 frames ('3.5 Soms.Tuck' at 5-5)"),
    "recurring": ("steps", "'Back' recurs at frames 50-59 after 0-19"),
    "short_labels": ("steps", "95 entries for a 100-frame window"),
    "bad_label": ("label", "'999z' is not a FINA dive number"),
    "no_fine": ("steps", "no fine-grained annotation"),
    "fine_disagrees": ("label", "dive_score 58.5 vs 59.5"),
    "unreadable": ("unreadable", "judge_scores must be a list of numbers"),
    "missing": ("missing", "in test_split.pkl but not in FineDiving_coarse_annotation.pkl"),
}


def _by_id(result):
    return {r.id: r for r in result.records}


def frame_folders(root: Path, keys) -> Path:
    """``root/<video_name>/<instance>/`` for ``keys``: the clips whose frames are present."""
    for video_name, instance in keys:
        (root / video_name / str(instance)).mkdir(parents=True)
    return root


@pytest.fixture(scope="module", params=STYLES)
def written(request, tmp_path_factory):
    fx = write_finediving(tmp_path_factory.mktemp(request.param), style=request.param)
    # frames for every other clip, as a copy holding the frames of some dives only
    return fx, load(fx.root, frame_folders(fx.root / "frames", sorted(fx.coarse)[::2]))


def test_every_record_field_by_field(written):
    fx, result = written
    records = _by_id(result)
    unreadable = {fx.cases["unreadable"]}
    assert set(records) == {record_id(*k) for k in fx.coarse if k not in unreadable}
    for key, ann in fx.coarse.items():
        if key in unreadable:
            continue
        rec = records[record_id(*key)]
        video_name, instance = key
        assert rec.dataset == "finediving"
        assert rec.split == fx.split_of(key)
        assert rec.video.path is None
        folder = fx.root / "frames" / video_name / str(instance)
        assert rec.video.frames_dir == (str(folder) if folder.is_dir() else None)
        assert rec.video.frame_template == "{:05d}.jpg"
        assert (rec.video.start_frame, rec.video.end_frame) == (ann["start_frame"], ann["end_frame"])
        assert rec.video.fps is None
        assert rec.action.label == ann["action_type"].upper()
        dive = parse_dive_number(rec.action.label)
        assert rec.action.attributes == (dive.attributes() if dive else {})
        assert rec.score.final == ann["dive_score"]
        assert rec.score.judges == [float(j) for j in ann["judge_scores"]]
        assert all(type(j) is float for j in rec.score.judges)
        assert rec.score.components["difficulty"] == ann["difficulty"]
        assert rec.score.range == (0.0, 125.0)
        assert [(s.label, s.start_frame, s.end_frame) for s in rec.steps] == fx.steps[key]
        assert all(s.score is None for s in rec.steps)
        assert rec.commentary is None


def test_judge_counts_set_domain_and_execution(written):
    fx, result = written
    records = _by_id(result)
    three = records[record_id(*fx.cases["three_judges"])]
    assert three.domain == "diving"
    assert three.action.label == "5253B"
    assert three.action.attributes["twists"] == 1.5 and three.action.attributes["position"] == "pike"
    assert three.score.components == {"difficulty": 3.2, "execution": 21.5}
    sync = records[record_id(*fx.cases["five_judges"])]
    assert sync.domain == "diving_sync"
    assert sync.score.components == {"difficulty": 3.0, "execution": 36.0}
    seven = records[record_id(*fx.cases["seven_judges"])]
    assert seven.domain == "diving"
    assert seven.score.judges == [8.5, 9.0, 8.0, 8.5, 9.5, 7.5, 8.0]
    assert seven.score.components == {"difficulty": 3.5, "execution": 25.0}  # middle 3 of 7
    assert seven.score.final == 87.5


def test_problems_are_exactly_the_planted_ones(written):
    fx, result = written
    by_case = {case: [p for p in result.problems if p.id == record_id(*key)] for case, key in fx.cases.items()}
    for case, problems in by_case.items():
        if case not in EXPECTED_PROBLEMS:
            assert problems == [], case
            continue
        kind, words = EXPECTED_PROBLEMS[case]
        assert [p.kind for p in problems] == [kind], case
        assert words in problems[0].detail, (case, problems[0].detail)
    assert len(result.problems) == len(EXPECTED_PROBLEMS)
    assert not any(p.kind == "score_rule" for p in result.problems)  # the validator's job


def test_noisy_records_keep_their_run_derived_steps(written):
    fx, result = written
    records = _by_id(result)
    flicker = records[record_id(*fx.cases["flicker"])]
    assert [(s.label, s.start_frame, s.end_frame) for s in flicker.steps] == [
        ("Back", 0, 20), ("3.5 Soms.Tuck", 21, 69), ("Entry", 70, 99)]
    negative = records[record_id(*fx.cases["negative_transit"])]
    assert [s.label for s in negative.steps] == ["Forward", "4.5 Soms.Tuck", "Entry"]
    background = records[record_id(*fx.cases["background"])]
    assert [s.label for s in background.steps] == ["Inward", "2.5 Soms.Pike", "Entry"]
    assert background.steps[0].start_frame == 5 and background.steps[-1].end_frame == 94


def test_fine_grained_aqa_file_is_the_fallback(tmp_path):
    fx = write_finediving(tmp_path, fine_grained="aqa")
    assert not (tmp_path / "Annotations" / "FineDiving_fine-grained_annotation.pkl").exists()
    result = load(tmp_path, None)
    records = _by_id(result)
    for key, steps in fx.steps.items():
        assert [(s.label, s.start_frame, s.end_frame) for s in records[record_id(*key)].steps] == steps
    assert all(r.video.frames_dir is None for r in result.records)
    assert {p.id for p in result.problems} == {record_id(*fx.cases[c]) for c in EXPECTED_PROBLEMS}


def test_options_are_honoured(tmp_path):
    fx = write_finediving(tmp_path)
    result = load(tmp_path, None, FineDivingOptions(min_run_frames=1, transit_tolerance=5))
    records = _by_id(result)
    flicker = records[record_id(*fx.cases["flicker"])]
    assert [s.label for s in flicker.steps] == ["Back", "3.5 Soms.Tuck", "Back", "3.5 Soms.Tuck", "Entry"]
    ids = {p.id for p in result.problems if p.kind == "steps"}
    assert record_id(*fx.cases["transit_disagrees"]) not in ids  # 24 is within 5 frames of 19


def test_registry_and_jsonl_round_trip(tmp_path):
    write_finediving(tmp_path / "ann")
    adapter = get_adapter("FineDiving")
    assert adapter.name == "finediving" and adapter.domain == "diving"
    result = adapter.load(tmp_path / "ann", FRAMES)
    write_jsonl(result.records, tmp_path / "out.jsonl")
    assert read_jsonl(tmp_path / "out.jsonl") == result.records


def test_validator_adds_only_the_score_rule_problem(tmp_path):
    fx = write_finediving(tmp_path)
    report = validate_dataset("finediving", tmp_path)
    assert report.records == 17
    assert report.splits == {"none": 1, "test": 7, "train": 9}
    rule = [p for p in report.problems if p.kind == "score_rule"]
    assert [p.id for p in rule] == [record_id(*fx.cases["bad_score"])]
    assert report.problem_counts == {"label": 2, "missing": 1, "score_rule": 1, "steps": 8, "unreadable": 1}


def test_missing_and_broken_files(tmp_path):
    fx = write_finediving(tmp_path)
    with pytest.raises(DataError, match="no such annotations folder"):
        load(tmp_path / "nowhere", None)
    fx.files["train"].unlink()
    with pytest.raises(DataError, match="'train_split.pkl'"):
        load(tmp_path, None)
    fx = write_finediving(tmp_path)
    fx.files["fine"].unlink()
    with pytest.raises(DataError, match="fine-grained_annotation_aqa.pkl"):
        load(tmp_path, None)
    fx = write_finediving(tmp_path)
    data = fx.files["coarse"].read_bytes()
    fx.files["coarse"].write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match="FineDiving_coarse_annotation.pkl: truncated or not a pickle"):
        load(tmp_path, None)
    fx.files["coarse"].write_bytes(fx.files["train"].read_bytes())  # a list, not a dict
    with pytest.raises(DataError, match="expected a dict of .* got a list"):
        load(tmp_path, None)
    fx.files["coarse"].write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(UnsafePickleError):
        load(tmp_path, None)


def test_unreadable_keys_and_values_do_not_stop_the_rest(tmp_path):
    fx = write_finediving(tmp_path)
    coarse = dict(fx.coarse)
    good = fx.cases["three_judges"]
    coarse["not a key"] = coarse[good]
    coarse[("v", 1)] = ["not", "a", "dict"]
    coarse[("v", 2)] = {**coarse[good], "start_frame": "early"}
    coarse[("v", 3)] = {k: v for k, v in coarse[good].items() if k != "difficulty"}
    fx.files["coarse"].write_bytes(pickle.dumps(coarse))
    result = load(tmp_path, None)
    assert len(result.records) == 17
    details = {p.id: p.detail for p in result.problems if p.kind == "unreadable"}
    assert "key 'not a key' is not a (video_name, instance_id) pair" in details["finediving/'not a key'"]
    assert "annotation must be a dict, got list" in details["finediving/v/1"]
    assert "start_frame must be an integer, got 'early'" in details["finediving/v/2"]
    assert "no 'difficulty' field" in details["finediving/v/3"]


def test_an_unreadable_fine_grained_entry_leaves_the_record_without_steps(tmp_path):
    fx = write_finediving(tmp_path)
    key = fx.cases["three_judges"]
    fine = dict(fx.fine)
    fine[key] = {**fine[key], "frames_labels": "not frames"}
    fine["bad key"] = fine[fx.cases["numpy_judges"]]
    fx.files["fine"].write_bytes(pickle.dumps(fine))
    result = load(tmp_path, None)
    record = _by_id(result)[record_id(*key)]
    assert record.steps == [] and record.score.final == 68.8
    (problem,) = [p for p in result.problems if p.id == record.id]
    assert problem.kind == "steps"
    assert "unreadable fine-grained annotation in FineDiving_fine-grained_annotation.pkl" in problem.detail
    assert "frames_labels must be a non-empty 1-D integer array" in problem.detail
    assert any(p.id == "finediving/'bad key'" and p.kind == "unreadable" for p in result.problems)


def test_three_thousand_records_load_in_seconds(tmp_path):
    write_finediving_bulk(tmp_path, 3000)
    # the frames of 24 dives are there, as in a partial copy of the frames
    present = [(f"FINADivingWorldCup2021_bulk_{i // 25:03d}", i % 25) for i in range(0, 3000, 125)]
    frames = frame_folders(tmp_path / "frames", present)
    started = time.perf_counter()
    result = load(tmp_path, frames)
    elapsed = time.perf_counter() - started
    assert len(result.records) == 3000 and result.problems == []
    with_frames = {r.id for r in result.records if r.video.frames_dir is not None}
    assert with_frames == {record_id(*key) for key in present}
    assert sum(len(r.steps) for r in result.records) >= 3 * 3000
    assert elapsed < 10.0, f"loading 3000 records took {elapsed:.1f} s"
    # the template with trailing Background frames gives no Background step
    assert not any(s.label == "Background" for r in result.records for s in r.steps)
    assert np.mean([r.split == "train" for r in result.records]) == pytest.approx(2 / 3, abs=0.01)


def test_convert_sets_only_present_frames_absolute_and_says_how_many_lack_them(tmp_path, monkeypatch, capsys):
    """``data convert finediving --frames DIR``, run from one folder with relative paths: the
    clips whose frames are under DIR get their absolute folder, the others null, the command
    says how many have none, and a clip reads from any other folder."""
    from hieroaction.cli import main
    from hieroaction.video import FrameConfig, read_clip
    from tests.video.media import make_frames

    fx = write_finediving(tmp_path / "FineDiving")
    key = fx.cases["three_judges"]
    start, end = fx.coarse[key]["start_frame"], fx.coarse[key]["end_frame"]
    make_frames(tmp_path / "FineDiving" / "frames" / key[0] / str(key[1]), range(start, end + 1))
    monkeypatch.chdir(tmp_path)
    status = main(["data", "convert", "finediving", "--annotations", "FineDiving", "--frames", "FineDiving/frames",
                   "--out", "out/records.jsonl"], groups=("data",))
    out = capsys.readouterr().out
    assert status == 0
    assert "16 of 17 clips have no video or frame folder under FineDiving/frames" in out
    records = {r.id: r for r in read_jsonl(tmp_path / "out" / "records.jsonl")}
    with_frames = {rid: r.video.frames_dir for rid, r in records.items() if r.video.frames_dir}
    assert with_frames == {record_id(*key): str(tmp_path / "FineDiving" / "frames" / key[0] / str(key[1]))}
    # another working folder: the stored path still finds the frames (readers resolve relative
    # paths against the records file's folder; these are absolute)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    clip = read_clip(records[record_id(*key)], FrameConfig(num_frames=4), base_dir=tmp_path / "out")
    assert clip.frames.shape[0] == 4 and clip.indices[0] == start and clip.indices[-1] == end


def test_convert_without_frames_says_every_clip_lacks_them(tmp_path, capsys):
    from hieroaction.cli import main

    write_finediving(tmp_path / "ann")
    status = main(["data", "convert", "finediving", "--annotations", str(tmp_path / "ann"),
                   "--out", str(tmp_path / "records.jsonl")], groups=("data",))
    assert status == 0
    assert "17 of 17 clips have no video or frame folder; their video.path and video.frames_dir stay null" in (
        capsys.readouterr().out)
