from hieroaction.data.records import Record
from hieroaction.data.validate import check_record, validate_records


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
