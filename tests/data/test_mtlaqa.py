import pickle

import pytest

from hieroaction.data.adapters import get_adapter
from hieroaction.data.adapters.mtlaqa import (
    DERIVED_FILES,
    commentary_text,
    compose_dive_number,
    load,
    record_id,
)
from hieroaction.data.validate import validate_dataset
from hieroaction.domains.diving import parse_dive_number
from hieroaction.errors import DataError
from tests.data.diving_fixtures import write_mtlaqa

EXPECTED_PROBLEMS = {
    "number_disagrees": ("label", "dive_number '407B' but the codes"),
    "bad_code": ("label", "do not name a FINA dive"),
    "unreadable": ("unreadable", "final_score must be a number, got 'n/a'"),
    "missing": ("missing", "in test_split_0.pkl but not in final_annotations_dict.pkl"),
}
CODES = ("rotation_type", "ss_no", "tw_no", "position", "armstand")


def _by_id(result):
    return {r.id: r for r in result.records}


def _caption_of(fx, key):
    return next((v for k, v in fx.captions.items() if (int(k[0]), k[1]) == key), None)


@pytest.fixture(scope="module", params=["python2", "protocol4"])
def written(request, tmp_path_factory):
    fx = write_mtlaqa(tmp_path_factory.mktemp(request.param), style=request.param)
    # the frames of the first video only, as in a partial copy of the frames
    first = min(video for video, _ in fx.labels)
    (fx.root / "frames" / f"{first:02d}").mkdir(parents=True)
    return fx, load(fx.root, fx.root / "frames")


def test_every_record_field_by_field(written):
    fx, result = written
    records = _by_id(result)
    assert set(records) == {record_id(*k) for k in fx.labels}
    # only the clips of the video whose frame folder is there get it
    assert 0 < sum(r.video.frames_dir is not None for r in records.values()) < len(records)
    for key, label in fx.labels.items():
        rec, ann = records[record_id(*key)], fx.annotations[key]
        assert rec.dataset == "mtl-aqa" and rec.domain == "diving"
        assert rec.split == fx.split_of(key)
        folder = fx.root / "frames" / f"{key[0]:02d}"
        assert rec.video.frames_dir == (str(folder) if folder.is_dir() else None)
        assert rec.video.frame_template == "{:06d}.jpg"
        assert (rec.video.start_frame, rec.video.end_frame) == (ann["start_frame"], ann["end_frame"])
        assert rec.action.label == label
        dive = parse_dive_number(label) if label else None
        assert rec.action.attributes == {
            **(dive.attributes() if dive else {}), "codes": {c: ann[c] for c in CODES}}
        assert rec.score.final == ann["final_score"]
        assert rec.score.range == (0.0, 125.0)
        assert rec.steps == []
        derived = fx.derived.get(key)
        if derived is None:
            assert rec.score.judges == [] and rec.score.components == {"difficulty": ann["difficulty"]}
        else:
            judges = sorted(derived["judge_scores"].tolist())
            assert rec.score.judges == derived["judge_scores"].tolist()
            assert rec.score.components == {"difficulty": ann["difficulty"], "execution": sum(judges[2:5])}
        caption = _caption_of(fx, key)
        assert rec.commentary == (" ".join(caption[1:-1]) if caption else None)


def test_labels_attributes_and_commentary(written):
    fx, result = written
    records = _by_id(result)
    twisting = records[record_id(*fx.cases["twisting"])]
    assert twisting.action.label == "5253B"
    assert twisting.action.attributes["group"] == "back" and twisting.action.attributes["twists"] == 1.5
    armstand = records[record_id(*fx.cases["armstand"])]
    assert armstand.action.label == "626C" and armstand.action.attributes["armstand"] is True
    # not in the derived copy: the label is composed from the codes
    assert records[record_id(*fx.cases["official_only"])].action.label == "109C"
    assert records[record_id(*fx.cases["bad_code"])].action.label is None
    forward = records[record_id(*fx.cases["forward"])]
    assert forward.commentary == "a lovely forward three and a half pike , very clean entry"
    assert records[record_id(*fx.cases["no_caption"])].commentary is None
    assert "mtl-aqa/7/7" not in records  # a caption without an annotation is no record


def test_problems_are_exactly_the_planted_ones(written):
    fx, result = written
    for case, key in fx.cases.items():
        problems = [p for p in result.problems if p.id == record_id(*key)]
        if case not in EXPECTED_PROBLEMS:
            assert problems == [], case
            continue
        kind, words = EXPECTED_PROBLEMS[case]
        assert [p.kind for p in problems] == [kind], case
        assert words in problems[0].detail, (case, problems[0].detail)
    assert len(result.problems) == len(EXPECTED_PROBLEMS)


@pytest.mark.parametrize("name", DERIVED_FILES)
def test_each_known_name_of_the_derived_copy(tmp_path, name):
    fx = write_mtlaqa(tmp_path, derived_name=name)
    records = _by_id(load(tmp_path, None))
    rec = records[record_id(*fx.cases["forward"])]
    assert rec.score.judges == [8.0, 8.5, 8.5, 9.0, 8.0, 8.5, 9.0]
    assert rec.video.frames_dir is None


def test_without_the_derived_copy_labels_come_from_the_codes(tmp_path):
    fx = write_mtlaqa(tmp_path, derived_name=None)
    result = load(tmp_path, None)
    records = _by_id(result)
    for case, label in {"forward": "107B", "twisting": "5253B", "armstand": "626C",
                        "number_disagrees": "407C", "no_caption": "305C"}.items():
        rec = records[record_id(*fx.cases[case])]
        assert rec.action.label == label
        assert rec.score.judges == [] and set(rec.score.components) == {"difficulty"}
    assert not any(p.id == record_id(*fx.cases["number_disagrees"]) for p in result.problems)


def test_derived_copy_alone_is_enough(tmp_path):
    fx = write_mtlaqa(tmp_path, derived_name="final_annotations_dict_with_dive_number.pkl", official=False)
    result = load(tmp_path, None)
    records = _by_id(result)
    assert set(records) == {record_id(*k) for k in fx.derived if k != fx.cases["unreadable"]}
    assert records[record_id(*fx.cases["number_disagrees"])].action.label == "407B"
    missing = [p for p in result.problems if p.kind == "missing"]
    assert "final_annotations_dict_with_dive_number.pkl" in missing[0].detail
    # in a split, but only the official file had them
    assert {p.id for p in missing} == {record_id(*fx.cases[c]) for c in ("missing", "official_only", "bad_code")}


def test_validator_adds_only_the_score_rule_problem(tmp_path):
    fx = write_mtlaqa(tmp_path)
    report = validate_dataset("mtl-aqa", tmp_path)
    assert report.records == 9
    assert report.splits == {"none": 1, "test": 3, "train": 5}
    assert [p.id for p in report.problems if p.kind == "score_rule"] == [record_id(*fx.cases["bad_score"])]


def test_missing_and_broken_files(tmp_path):
    fx = write_mtlaqa(tmp_path)
    assert get_adapter("mtlaqa").name == "mtl-aqa"
    fx.files["test"].unlink()
    with pytest.raises(DataError, match="'test_split_0.pkl'"):
        load(tmp_path, None)
    fx = write_mtlaqa(tmp_path)
    fx.files["annotations"].unlink()
    fx.files["derived"].unlink()
    with pytest.raises(DataError, match="final_annotations_dict.pkl.*augmented_final_annotations_dict.pkl"):
        load(tmp_path, None)
    fx = write_mtlaqa(tmp_path, derived_name=None)
    fx.files["captions"].write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(DataError, match="final_captions_dict.pkl: expected a dict"):
        load(tmp_path, None)
    captions = {(1, 1): 42, (1, 2): ["<sos>", "fine", "<eos>"]}
    fx.files["captions"].write_bytes(pickle.dumps(captions))
    result = load(tmp_path, None)
    records = _by_id(result)
    assert records["mtl-aqa/1/1"].commentary is None and records["mtl-aqa/1/2"].commentary == "fine"
    (problem,) = [p for p in result.problems if p.id == "mtl-aqa/1/1"]
    assert problem.kind == "label" and "final_captions_dict.pkl: caption must be a list" in problem.detail
    fx.files["captions"].unlink()  # captions are optional
    assert all(r.commentary is None for r in load(tmp_path, None).records)


def test_compose_dive_number_from_the_codes():
    code = dict.fromkeys(CODES, 0)
    assert compose_dive_number({**code, "rotation_type": 2, "ss_no": 7, "position": 2}) == "407C"
    assert compose_dive_number({**code, "rotation_type": 3, "ss_no": 3, "tw_no": 1, "position": 0}) == "5331D"
    assert compose_dive_number({**code, "rotation_type": 1, "ss_no": 4, "position": 1, "armstand": 1}) == "614B"
    assert compose_dive_number({**code, "rotation_type": 1, "ss_no": 5, "position": 3}) is None
    assert compose_dive_number({**code, "rotation_type": 1, "ss_no": 5, "armstand": 2}) is None


def test_commentary_text():
    assert commentary_text(["<sos>", "a", "clean", "entry", "<eos>"]) == "a clean entry"
    assert commentary_text(["<sos>", "<eos>"]) is None
    with pytest.raises(ValueError, match="caption"):
        commentary_text(42)
