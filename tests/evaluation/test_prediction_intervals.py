"""Score intervals in an existing predictions file (``evaluate --predictions``): coverage, width
and per class from the intervals the lines carry, reliability only with ``--calibration``,
computed by hand; lines that disagree on the level, a calibration that did not make the
intervals and malformed intervals."""

from __future__ import annotations

import json

import pytest

from hieroaction.errors import ConfigError
from hieroaction.evaluation.runner import EvalConfig, evaluate_files
from hieroaction.evaluation.scoring import BootstrapConfig, ScoringConfig
from hieroaction.inference.calibration import CALIBRATION_FILE, Calibration, write_calibration
from hieroaction.reports.calibration import NO_RELIABILITY
from hieroaction.sar import Assessment

NO_BOOTSTRAP = EvalConfig(scoring=ScoringConfig(bootstrap=BootstrapConfig(n_resamples=0)))


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def own_line(row_id, score, low=None, high=None, coverage=0.9, **interval):
    """A line of our own predictions.jsonl, with its interval as ScoreInterval.to_dict writes it."""
    return {
        "id": row_id, "assessment": Assessment(score=score).model_dump(mode="json"), "completion": "...",
        "problems": [],
        "interval": {"low": low, "high": high, "coverage": coverage, "method": "absolute", "unbounded": False,
                     "reason": None, "text": "", **interval},
    }


# The calibration of the intervals below: absolute errors 0.5, 1.0, ..., 10.0 (20 clips), so
# k = ceil(21 x level): 50 % -> 11th = 5.5, 80 % -> 17th = 8.5, 90 % -> 19th = 9.5, 95 % -> 20th = 10.
CAL_SCORES = [0.5 * i for i in range(1, 21)]
HALF = 9.5


def _calibration(**changes) -> Calibration:
    fields = dict(method="absolute", coverage=0.9, quantile=HALF, n=20, samples=1, scores=CAL_SCORES,
                  fingerprint="sha256:" + "0" * 64, created="2025-01-01T00:00:00+00:00", split="val")
    fields.update(changes)
    return Calibration(**fields)


@pytest.fixture()
def four(tmp_path):
    """True 10, 20, 30, 40 (classes X, X, Y, Y); predicted 12, 30, 31, 46, each -/+ 9.5:
    errors 2, 10, 1, 6, so b (20.5-39.5) misses 20 and the others are covered."""
    truth = write_jsonl(tmp_path / "truth.jsonl", [
        {"id": "a", "score": 10, "class": "X"}, {"id": "b", "score": 20, "class": "X"},
        {"id": "c", "score": 30, "class": "Y"}, {"id": "d", "score": 40, "class": "Y"},
    ])
    pred = write_jsonl(tmp_path / "predictions.jsonl", [
        own_line(i, s, s - HALF, s + HALF) for i, s in zip("abcd", [12.0, 30.0, 31.0, 46.0])
    ])
    return pred, truth


def test_coverage_width_and_per_class_from_the_lines_intervals(four, cli):
    status, out, err = cli("evaluate", "--predictions", four[0], "--truth", four[1], "--json", "--bootstrap", "0")
    assert status == 0, err
    m = json.loads(out)
    assert m["interval_nominal"] == 0.9 and m["n_interval"] == 4
    assert m["interval_coverage"] == pytest.approx(3 / 4)
    assert m["interval_width"] == pytest.approx(19.0) and m["intervals_finite"] == 4
    assert m["interval_coverage_ci"] is None and m["interval_width_ci"] is None  # --bootstrap 0
    assert m["interval_per_class"] == {
        "X": {"n": 2, "coverage": 0.5, "coverage_ci": None, "width": pytest.approx(19.0), "width_ci": None, "finite": 2},
        "Y": {"n": 2, "coverage": 1.0, "coverage_ci": None, "width": pytest.approx(19.0), "width_ci": None, "finite": 2},
    }
    # no calibration given: no reliability is made up
    assert "interval_reliability" not in m and "calibration" not in m
    assert m["problems"] == [] and m["spearman"] == pytest.approx(1.0)

    status, out, _ = cli("evaluate", "--predictions", four[0], "--truth", four[1], "--bootstrap", "20")
    assert status == 0
    assert "interval coverage (nominal 90 %)" in out and "mean interval width" in out
    assert NO_RELIABILITY in out


def test_bootstrap_intervals_and_the_report_without_reliability(four, tmp_path):
    config = EvalConfig(scoring=ScoringConfig(bootstrap=BootstrapConfig(n_resamples=50)))
    run = evaluate_files(four[0], four[1], config=config, out_dir=tmp_path / "out")
    m = run.evaluation.metrics
    lo, hi = m["interval_coverage_ci"]
    assert 0 <= lo <= 0.75 <= hi <= 1
    assert m["interval_width_ci"] == pytest.approx([19.0, 19.0])
    out = tmp_path / "out"
    md = (out / "report.md").read_text()
    assert "## Score intervals" in md and NO_RELIABILITY in md and "reliability.svg" not in md
    html = (out / "report.html").read_text()
    assert "interval coverage (nominal 90 %)" in html and 'class="level"' not in html
    assert not (out / "report_assets" / "reliability.svg").exists()
    assert json.loads((out / "metrics.json").read_text())["interval_coverage"] == pytest.approx(0.75)


def test_the_calibration_file_adds_reliability(four, tmp_path, cli):
    write_calibration(tmp_path, _calibration())
    cal = tmp_path / CALIBRATION_FILE
    status, out, err = cli("evaluate", "--predictions", four[0], "--truth", four[1], "--json", "--bootstrap", "0",
                           "--calibration", cal)
    assert status == 0, err
    m = json.loads(out)
    assert m["interval_coverage"] == pytest.approx(0.75) and m["interval_width"] == pytest.approx(19.0)
    # test errors 2, 10, 1, 6 against the refitted quantiles 5.5, 8.5, 9.5, 10
    assert m["interval_reliability"] == [
        {"nominal": 0.5, "quantile": 5.5, "empirical": 0.5},
        {"nominal": 0.8, "quantile": 8.5, "empirical": 0.75},
        {"nominal": 0.9, "quantile": 9.5, "empirical": 0.75},
        {"nominal": 0.95, "quantile": 10.0, "empirical": 1.0},
    ]
    # the nominal level's refit gives the intervals' own coverage back
    assert m["interval_reliability"][2]["empirical"] == m["interval_coverage"]
    assert m["calibration"]["method"] == "absolute" and m["calibration"]["n"] == 20

    run = evaluate_files(four[0], four[1], config=NO_BOOTSTRAP, out_dir=tmp_path / "out", calibration=cal)
    assert run.evaluation.metrics["interval_reliability"] == m["interval_reliability"]
    out = tmp_path / "out"
    assert (out / "report_assets" / "reliability.svg").is_file()
    md = (out / "report.md").read_text()
    assert "](report_assets/reliability.svg)" in md and NO_RELIABILITY not in md
    assert "Calibration: absolute conformal, 20 clips of split val" in md
    assert (out / "report.html").read_text().count('class="level"') == 4


def test_a_normalised_calibration_reads_the_spread_of_the_sampled_answers(tmp_path):
    truth = write_jsonl(tmp_path / "t.jsonl", [{"id": "a", "score": 10}, {"id": "b", "score": 20}])
    # |y - yhat| / (spread + 0.5): a 4 / (1.5 + 0.5) = 2; b has no spread -> infinite, never covered
    pred = write_jsonl(tmp_path / "p.jsonl", [
        {**own_line("a", 14.0, 5.0, 23.0, method="normalised"), "samples": {"n": 4, "spread": 1.5}},
        {**own_line("b", 20.0, None, None, method="normalised", reason="no spread"), "samples": {"n": 4, "spread": None}},
    ])
    cal = write_calibration(tmp_path, _calibration(method="normalised", samples=4, floor=0.5))
    m = evaluate_files(pred, truth, config=NO_BOOTSTRAP, calibration=cal).evaluation.metrics
    assert m["interval_coverage"] == 0.5 and m["intervals_finite"] == 1 and m["interval_width"] == 18.0
    # score 2 is at most every refitted quantile (5.5 and up); b never counts
    assert [r["empirical"] for r in m["interval_reliability"]] == [0.5, 0.5, 0.5, 0.5]


def test_missing_null_and_unbounded_intervals(tmp_path):
    truth = write_jsonl(tmp_path / "t.jsonl", [{"id": i, "score": 10.0 * n} for n, i in enumerate("abcde", 1)])
    pred = write_jsonl(tmp_path / "p.jsonl", [
        own_line("a", 11.0, 6.0, 16.0),  # covered, width 10
        {**own_line("b", 21.0), "interval": None},  # an answer without an interval: not covered
        {"id": "c", "score": 31.0},  # another system's line, no interval: not covered
        {"id": "d", "score": 41.0, "interval": {"low": None, "high": None, "coverage": 0.9, "unbounded": True}},
        {"id": "e", "score": 51.0, "interval": {"low": None, "high": None, "coverage": 0.9, "reason": "no spread"}},
    ])
    m = evaluate_files(pred, truth, config=NO_BOOTSTRAP).evaluation.metrics
    # a and d (unbounded: the whole line) are covered; d's infinite width is not averaged
    assert m["n_interval"] == 5 and m["interval_coverage"] == pytest.approx(2 / 5)
    assert m["intervals_finite"] == 1 and m["interval_width"] == 10.0
    assert m["problems"] == []


def test_predictions_without_intervals_score_as_before(tmp_path):
    truth = write_jsonl(tmp_path / "t.jsonl", [{"id": "a", "score": 1}, {"id": "b", "score": 2}])
    pred = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "score": 1, "interval": None}, {"id": "b", "score": 3}])
    m = evaluate_files(pred, truth, config=NO_BOOTSTRAP).evaluation.metrics
    assert not [k for k in m if k.startswith("interval") or k in ("n_interval", "intervals_finite", "calibration")]


def test_lines_that_disagree_on_the_nominal_coverage_are_one_sentence(four, tmp_path, cli):
    truth = four[1]
    pred = write_jsonl(tmp_path / "mixed.jsonl", [
        own_line("a", 12.0, 2.5, 21.5), own_line("b", 30.0, 25.0, 35.0, coverage=0.8), own_line("c", 31.0, 21.5, 40.5),
    ])
    with pytest.raises(ConfigError, match=r"disagree on their nominal coverage \(0\.9 for id 'a', 0\.8 for id 'b'\)"):
        evaluate_files(pred, truth, config=NO_BOOTSTRAP)
    status, out, err = cli("evaluate", "--predictions", pred, "--truth", truth, "--out", tmp_path / "out")
    assert status == 2 and out == "" and err.count("\n") == 1
    assert "one calibration at a time" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["other_coverage", "other_method", "no_intervals", "folder", "not_one", "with_model"])
def test_a_calibration_that_did_not_make_the_intervals_is_one_sentence(case, four, tmp_path, cli):
    pred, truth = four
    folder = tmp_path / "cal"
    folder.mkdir()
    cal = write_calibration(folder, _calibration(
        coverage=0.8 if case == "other_coverage" else 0.9,
        method="normalised" if case == "other_method" else "absolute", samples=4 if case == "other_method" else 1,
    ))
    argv = ["evaluate", "--predictions", pred, "--truth", truth, "--calibration", cal]
    expect = {
        "other_coverage": "its coverage 0.8 is not the 0.9 of the intervals",
        "other_method": "its method 'normalised' is not the 'absolute' of the interval of id 'a'",
        "no_intervals": "no prediction carries a score interval",
        "folder": f"a folder, not a calibration file (a calibrated model folder keeps it as {cal})",
        "not_one": "not a hieroaction calibration",
        "with_model": "--calibration belong to evaluate --predictions, not --model",
    }[case]
    if case == "no_intervals":
        argv[2] = write_jsonl(tmp_path / "plain.jsonl", [{"id": i, "score": 1} for i in "abcd"])
    elif case == "folder":
        argv[-1] = folder
    elif case == "not_one":
        cal.write_text('{"scores": []}')
    elif case == "with_model":
        argv = ["evaluate", "--model", tmp_path, "--data", truth, "--out", tmp_path / "o", "--calibration", cal]
    status, out, err = cli(*argv)
    assert status == 2 and out == "" and err.count("\n") == 1
    assert expect in err


def test_a_malformed_interval_is_a_line_problem_not_a_crash(tmp_path, cli):
    truth = write_jsonl(tmp_path / "t.jsonl", [{"id": i, "score": 10.0} for i in "abcdef"])
    pred = write_jsonl(tmp_path / "p.jsonl", [
        own_line("a", 10.0, 5.0, 15.0),
        own_line("b", 10.0, 15.0, 5.0),  # low above high
        own_line("c", 10.0, "five", 15.0),  # not a number
        own_line("d", 10.0, 5.0, True),  # a boolean is not a number
        own_line("e", 10.0, 5.0, 15.0, coverage=2),  # no coverage between 0 and 1
        {"id": "f", "score": 10.0, "interval": [5, 15]},  # not an object
    ])
    status, out, err = cli("evaluate", "--predictions", pred, "--truth", truth, "--json", "--bootstrap", "0")
    assert status == 0, err
    m = json.loads(out)
    problems = m["problems"]
    assert len(problems) == 5 and all("scored as no interval (not covered)" in p for p in problems)
    assert any(":2 (id 'b')" in p and '"interval" low 15 is above high 5' in p for p in problems)
    assert any(":3 (id 'c')" in p and "low is not a number ('five')" in p for p in problems)
    assert any(":4 (id 'd')" in p and "high is not a number (True)" in p for p in problems)
    assert any(":5 (id 'e')" in p and "has no coverage between 0 and 1 (2)" in p for p in problems)
    assert any(":6 (id 'f')" in p and "is not an object" in p for p in problems)
    # the six clips are all scored; only a's interval is usable, and every other one misses
    assert m["n"] == 6 and m["n_interval"] == 6 and m["interval_nominal"] == 0.9
    assert m["interval_coverage"] == pytest.approx(1 / 6) and m["interval_width"] == 10.0
