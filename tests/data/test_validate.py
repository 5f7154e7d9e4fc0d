import json

import pytest

from hieroaction.data.records import Record
from hieroaction.data.validate import check_record, validate_records
from tests.data.other_fixtures import write_finefs, write_fisv


def _dive(final, judges, dd=3.0, domain="diving", id_="d"):
    return Record.model_validate(
        {"id": id_, "domain": domain, "score": {"final": final, "judges": judges,
                                                "components": {"difficulty": dd, "execution": 0.0}}}
    )


def test_diving_rules_for_3_5_7_judges():
    assert check_record(_dive(63.0, [7.0, 7.0, 7.0])) == []
    assert check_record(_dive(54.0, [6.0, 6.0, 6.0, 6.0, 6.0], domain="diving_sync")) == []
    assert check_record(_dive(3.0 * 18, [1, 9, 5, 6, 2, 7, 8])) == []
    # within the 0.011 tolerance of published two-decimal scores
    assert check_record(_dive(63.01, [7.0, 7.0, 7.0])) == []
    (problem,) = check_record(_dive(64.0, [7.0, 7.0, 7.0], id_="bad"))
    assert problem.kind == "score_rule" and problem.id == "bad"
    assert "63.000" in problem.detail
    (problem,) = check_record(_dive(10.0, [7.0, 7.0, 7.0, 7.0]))
    assert problem.kind == "score_rule" and "3, 5 or 7" in problem.detail


def test_formula_domains_and_steps():
    skate = Record.model_validate({"id": "s", "domain": "figure_skating", "score": {
        "final": 70.0, "components": {"tes": 40.0, "pcs": 31.0, "deductions": 1.0}}})
    assert check_record(skate) == []
    skate.score.final = 72.0
    assert [p.kind for p in check_record(skate)] == ["score_rule"]
    overlapping = Record.model_validate({"id": "o", "steps": [
        {"label": "a", "start_frame": 0, "end_frame": 10}, {"label": "b", "start_frame": 10, "end_frame": 12}]})
    assert [p.kind for p in check_record(overlapping)] == ["steps"]
    # no score, no components: nothing to check
    assert check_record(Record(id="bare")) == []


def test_report_counts():
    records = [_dive(63.0, [7.0] * 3, id_="a"), _dive(60.0, [7.0] * 3, id_="b")]
    records[0].split = "train"
    report = validate_records(records)
    assert report.records == 2
    assert report.splits == {"none": 1, "train": 1}
    assert report.problem_counts == {"score_rule": 1}
    assert report.as_dict()["problems"][0]["id"] == "b"


# ------------------------------------------------------------- hieroaction data validate: exit status

@pytest.fixture()
def validate(capsys):
    """``validate(dataset, folder, *flags)`` -> (exit status, stdout, stderr) of the command."""
    from hieroaction.cli import main

    def run(dataset, folder, *flags):
        status = main(["data", "validate", dataset, "--annotations", str(folder), *flags], groups=("data",))
        out = capsys.readouterr()
        return status, out.out, out.err

    return run


def _generic(folder, lines):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "records.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return folder


def test_records_read_exit_0_even_with_label_problems(tmp_path, validate):
    good = _generic(tmp_path / "good", ['{"id": "a", "score": 7.5}', '{"id": "b", "score": 6}'])
    status, out, err = validate("generic", good)
    assert (status, err) == (0, "") and "2 records" in out and "no problems found" in out
    skate = '{"id": "s", "domain": "figure_skating", "score": {"final": 72, "components": {"tes": 40, "pcs": 31, "deductions": 0}}}'
    status, out, err = validate("generic", _generic(tmp_path / "noisy", [skate]))
    assert (status, err) == (0, "") and "score_rule" in out


def test_a_header_only_fisv_csv_exits_1(tmp_path, validate):
    root = tmp_path / "fisv"
    root.mkdir()
    (root / "fs_dataset.csv").write_text("number,total,tes,pcs,ded,,,\n", encoding="utf-8")
    status, out, err = validate("fis-v", root)
    assert status == 1
    assert "fis-v: 0 records" in out and "no records read" in out and "no problems found" not in out
    assert err.startswith("hieroaction: no record was read from the fis-v annotations (it reads fs_dataset.csv")


def test_a_garbage_fisv_csv_is_unreadable_not_padding(tmp_path, validate):
    root = tmp_path / "fisv"
    root.mkdir()
    garbage = ["number,total,tes,pcs,ded", "aGVsbG8gd29ybGQ=", "not,a,score,row,at all", "\x7f\x01junk"]
    (root / "fs_dataset.csv").write_text("\n".join(garbage) + "\n", encoding="utf-8")
    status, out, err = validate("fis-v", root, "--json")
    report = json.loads(out)
    assert status == 1 and report["records"] == 0
    assert report["problem_counts"] == {"unreadable": 3}
    assert report["failure"] == err.removeprefix("hieroaction: ").strip()
    assert "the 3 found could not be read" in err


def test_an_empty_generic_jsonl_exits_1(tmp_path, validate):
    status, out, err = validate("generic", _generic(tmp_path / "empty", []))
    assert status == 1 and "generic: 0 records" in out and "no records read" in out
    assert "no record was read from the generic annotations" in err


def test_an_unreadable_finefs_file_exits_1(tmp_path, validate):
    root = write_finefs(tmp_path / "finefs")  # 0, 1 and 729 read; 730.json is truncated
    status, out, err = validate("finefs", root)
    assert status == 1 and "finefs: 3 records" in out and "unreadable" in out
    assert "1 annotation(s) could not be read and became no record" in err
    # only the bad file: nothing read
    (root / "annotation" / "0.json").write_text('{"total', encoding="utf-8")
    for number in (1, 729, 730):
        (root / "annotation" / f"{number}.json").unlink()
    status, out, err = validate("finefs", root)
    assert status == 1 and "finefs: 0 records" in out and "the 1 found could not be read" in err


def test_fisv_fixture_with_one_bad_row_exits_1(tmp_path, validate):
    status, out, err = validate("fis-v", write_fisv(tmp_path / "fisv"))
    assert status == 1 and "fis-v: 5 records" in out and "1 annotation(s) could not be read" in err


def test_a_dataset_that_cannot_be_read_at_all_exits_2(tmp_path, validate):
    status, _, err = validate("fis-v", tmp_path / "nowhere")
    assert status == 2 and "no such annotations folder" in err


def test_the_help_documents_the_exit_status(capsys):
    from hieroaction.cli import main

    with pytest.raises(SystemExit):
        main(["data", "validate", "--help"], groups=("data",))
    text = " ".join(capsys.readouterr().out.split())
    assert "Exit status: 0 when every annotation was read" in text and "1 when no record was read" in text
