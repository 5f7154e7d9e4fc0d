"""Calibrated scores: ``hieroaction calibrate``, the calibration file, intervals in every output,
coverage and reliability in ``evaluate``.

The tiny random model writes no readable score, so two kinds of runs are used:

- the real model, answers as they come (the command line): every clip counts as an infinite
  error, the quantile is infinite, and no result shows a made-up interval;
- the real model generating, its answers then replaced by known SAR texts (a record's own SFT
  target with a chosen score): the quantiles, intervals and coverages are computed by hand.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest

from hieroaction.data.records import read_jsonl, write_jsonl
from hieroaction.errors import ConfigError
from hieroaction.inference import AssessResult, Assessor, InferenceConfig, calibrate
from hieroaction.inference import conformal as cf
from hieroaction.inference.calibration import (
    CALIBRATION_FILE,
    Calibration,
    SampleAgreement,
    ScoreInterval,
    read_calibration,
    weights_fingerprint,
)
from hieroaction.sar import parse_sar
from hieroaction.sar.targets import build_target

FAST = ["--max-new-tokens", "4", "--set", "frames.num_frames=4", "--batch-size", "8"]
N_VAL, N_TEST = 22, 8


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cal_records(tmp_path_factory) -> Path:
    """30 rendered synthetic clips: 22 of split val, 8 of split test."""
    from hieroaction.config import config_from_dict
    from hieroaction.synth import SynthConfig, generate

    out = tmp_path_factory.mktemp("calibration") / "data"
    generate(out, config_from_dict(SynthConfig, {"n": N_VAL + N_TEST, "seed": 5, "workers": 1}), progress=False)
    records = read_jsonl(out / "records.jsonl")
    records = [r.model_copy(update={"split": "val" if i < N_VAL else "test"}) for i, r in enumerate(records)]
    path = out / "calibration.jsonl"
    write_jsonl(records, path)
    return path


@pytest.fixture()
def model_copy(tiny_model, tmp_path) -> Path:
    """A private copy of the tiny model folder (calibrate writes into it)."""
    return Path(shutil.copytree(tiny_model, tmp_path / "model"))


@pytest.fixture(scope="module")
def fast_assessor(tiny_model):
    """The tiny model, uncalibrated, with 4 frames and 4 new tokens (a test sets and restores
    its calibration and sampling)."""
    config = InferenceConfig(max_new_tokens=4, batch_size=8, frames={"num_frames": 4}, domain="synth")
    return Assessor.from_pretrained(tiny_model, config, calibrated=False)


def _cli_calibrate(cli, model, data, *extra):
    return cli("calibrate", "--model", model, "--data", data, "--quiet", *FAST, *extra)


@pytest.fixture()
def cli(capsys):
    from hieroaction import cli as cli_module

    def run(*argv):
        capsys.readouterr()
        status = cli_module.main([str(a) for a in argv], groups=("calibrate", "assess", "evaluate"))
        out, err = capsys.readouterr()
        return status, out, err

    return run


# ---------------------------------------------------------------------------------------------
# The fingerprint and the file
# ---------------------------------------------------------------------------------------------


def test_the_fingerprint_follows_the_weights_not_the_folder(model_copy, tiny_model, tmp_path):
    assert weights_fingerprint(model_copy) == weights_fingerprint(tiny_model)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", weights_fingerprint(model_copy))
    weights = model_copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # the last byte of the last tensor
    weights.write_bytes(bytes(data))
    assert weights_fingerprint(model_copy) != weights_fingerprint(tiny_model)
    with pytest.raises(ConfigError, match="no weight files"):
        weights_fingerprint(tmp_path / "nothing")


def _calibration(**changes) -> Calibration:
    fields = dict(method="absolute", coverage=0.9, quantile=3.0, n=20, samples=1,
                  scores=[float(i) for i in range(20)], fingerprint="sha256:" + "0" * 64,
                  created="2025-01-01T00:00:00+00:00", split="val")
    fields.update(changes)
    return Calibration(**fields)


def test_the_file_reads_back_and_a_stale_one_is_refused_in_one_sentence(model_copy, cli, good_video):
    from hieroaction.inference.calibration import write_calibration

    calibration = _calibration(scores=[1.0, math.inf], quantile=math.inf)
    write_calibration(model_copy, calibration)
    stored = json.loads((model_copy / CALIBRATION_FILE).read_text())
    assert stored["scores"] == [1.0, None] and stored["quantile"] is None  # JSON has no infinity
    again = read_calibration(model_copy, check=False)
    assert again.scores == [1.0, math.inf] and again.quantile == math.inf and again.path == model_copy / CALIBRATION_FILE
    # made for other weights: refused when the model is loaded, before its weights are
    with pytest.raises(ConfigError, match="made for other weights"):
        read_calibration(model_copy)
    with pytest.raises(ConfigError, match="made for other weights"):
        Assessor.from_pretrained(model_copy)
    status, out, err = cli("assess", good_video, "--model", model_copy, *FAST)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "made for other weights" in err and "hieroaction calibrate again" in err
    # not a calibration at all
    (model_copy / CALIBRATION_FILE).write_text('{"format": "something else"}')
    with pytest.raises(ConfigError, match="not a hieroaction calibration"):
        read_calibration(model_copy)


# ---------------------------------------------------------------------------------------------
# Bad input: one sentence, nothing written
# ---------------------------------------------------------------------------------------------


@pytest.fixture()
def unscored_records(cal_records, tmp_path) -> Path:
    records = [r.model_copy(update={"score": r.score.model_copy(update={"final": None})}) for r in read_jsonl(cal_records)]
    path = tmp_path / "unscored.jsonl"
    write_jsonl(records, path)
    return path


@pytest.mark.parametrize(
    ("extra", "data", "message"),
    [
        (["--coverage", "0"], "cal", "coverage must lie strictly between 0 and 1"),
        (["--coverage", "1.5"], "cal", "coverage must lie strictly between 0 and 1"),
        (["--split", "test"], "cal", f"only {N_TEST} clip(s) have a true score; a calibration needs at least 20"),
        (["--split", "train"], "cal", "no record has split 'train'"),
        ([], "unscored", "no clip has a true score"),
        (["--samples", "0"], "cal", "samples must be at least 1"),
    ],
)
def test_bad_input_ends_in_one_sentence_and_writes_nothing(cli, model_copy, cal_records, unscored_records,
                                                           extra, data, message):
    status, out, err = _cli_calibrate(cli, model_copy, cal_records if data == "cal" else unscored_records, *extra)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and message in err
    assert not (model_copy / CALIBRATION_FILE).exists()


def test_a_hub_id_is_refused_before_anything_is_loaded(tmp_path, cal_records):
    with pytest.raises(ConfigError, match="not a local folder"):
        calibrate("Qwen/Qwen2.5-VL-7B-Instruct", cal_records)


# ---------------------------------------------------------------------------------------------
# The real tiny model, as it answers
# ---------------------------------------------------------------------------------------------


def test_the_command_calibrates_the_real_tiny_model(cli, model_copy, cal_records, good_video):
    status, out, err = _cli_calibrate(cli, model_copy, cal_records)
    assert status == 0, err
    stored = json.loads((model_copy / CALIBRATION_FILE).read_text())
    assert stored["method"] == "absolute" and stored["samples"] == 1 and stored["coverage"] == 0.9
    assert stored["n"] == N_VAL and stored["split"] == "val" and len(stored["scores"]) == N_VAL
    assert stored["fingerprint"] == weights_fingerprint(model_copy)
    assert stored["created"].endswith("+00:00") and stored["data"] == str(cal_records)
    # the stored quantile is the conformal quantile of the stored scores
    scores = [math.inf if s is None else s for s in stored["scores"]]
    assert scores == sorted(scores)
    expected = cf.conformal_quantile(scores, 0.9)
    assert (stored["quantile"] is None) == math.isinf(expected)
    assert stored["missing"] == sum(math.isinf(s) for s in scores)
    assert f"wrote {model_copy / CALIBRATION_FILE}" in out and "clips of split val" in out
    # the calibrated folder: a score the model did not write gets no interval
    status, out, err = cli("assess", good_video, "--model", model_copy, "--format", "json", *FAST)
    assert status == 0, err
    result = json.loads(out)
    if result["assessment"]["score"] is None:
        assert result["interval"] is None
    else:
        assert result["interval"]["coverage"] == 0.9
    assert result["samples"] is None  # calibrated without samples


# ---------------------------------------------------------------------------------------------
# Known answers: the real model generates, its text is replaced by a chosen SAR answer
# ---------------------------------------------------------------------------------------------


def _greedy_score(index: int, true: float) -> float:
    """The chosen greedy score of clip ``index``: off by -2.5 .. 2.5."""
    return true + ((index * 7) % 11 - 5) * 0.5


def _sample_spread(index: int) -> float:
    return 1.0 + index % 4


class KnownAnswers:
    """Replaces the decoded answers of an Assessor with SAR targets whose score is chosen:
    the greedy answer scores :func:`_greedy_score`; sampled answer ``j`` of ``n`` scores that
    plus ``(j - 1) x`` :func:`_sample_spread` and names another action when ``j == 2``."""

    def __init__(self, records, monkeypatch, assessor) -> None:
        import hieroaction.inference.assessor as assessor_module

        self.by_video = {Path(r.video.path).name: (i, r) for i, r in enumerate(records)}
        self.pending: list[str] = []
        self.decoded = False
        real_prompt = assessor_module.build_prompt

        def build_prompt(domain, clip, config):
            if self.decoded:
                self.pending, self.decoded = [], False
            self.pending.append(Path(clip.source).name)
            return real_prompt(domain, clip, config)

        def batch_decode(ids, **_):
            repeat = len(ids) // len(self.pending)
            self.decoded = True
            return [self.text(name, j if repeat > 1 else None) for name in self.pending for j in range(repeat)]

        monkeypatch.setattr(assessor_module, "build_prompt", build_prompt)
        monkeypatch.setattr(assessor.processor, "batch_decode", batch_decode)

    def text(self, video: str, sample: int | None) -> str:
        index, record = self.by_video[video]
        score = _greedy_score(index, record.score.final)
        target = build_target(record)
        if sample is not None:
            score += (sample - 1) * _sample_spread(index)
            if sample == 2:
                target = re.sub(r"<action>[^<]*</action>", "<action>another-action</action>", target)
        return re.sub(r"<score>[^<]*</score>", f"<score>{score:g}</score>", target)


@pytest.fixture()
def known(cal_records, fast_assessor, monkeypatch):
    records = read_jsonl(cal_records)
    yield KnownAnswers(records, monkeypatch, fast_assessor), records
    fast_assessor.calibration = fast_assessor.sampling = None


def test_absolute_calibration_then_intervals_and_coverage(known, fast_assessor, model_copy, cal_records, tmp_path):
    answers, records = known
    val = [(i, r) for i, r in enumerate(records) if r.split == "val"]
    calibration = calibrate(model_copy, cal_records, "val", 1, 0.8, assessor=fast_assessor)
    # by hand: |y - yhat| of each val clip, sorted; k = ceil(23 x 0.8) = 19
    errors = sorted(abs(_greedy_score(i, r.score.final) - r.score.final) for i, r in val)
    assert calibration.scores == pytest.approx(errors)
    assert calibration.quantile == pytest.approx(errors[19 - 1]) and calibration.missing == 0
    assert fast_assessor.calibration is None  # calibrate left the loaded model as it was
    assert read_calibration(model_copy).quantile == pytest.approx(calibration.quantile)

    # every later result carries its interval: score -/+ q, cut to the synth range [0, 120]
    fast_assessor.calibration = read_calibration(model_copy)
    test_idx, test_rec = next((i, r) for i, r in enumerate(records) if r.split == "test")
    result = next(iter(fast_assessor.assess_records([test_rec], base_dir=cal_records.parent)))
    score = result.assessment.score
    q = calibration.quantile
    assert score == pytest.approx(_greedy_score(test_idx, test_rec.score.final))
    assert (result.interval.low, result.interval.high) == pytest.approx((max(0, score - q), min(120, score + q)))
    assert result.interval.text() == f"80 % interval {score - q:.1f}-{score + q:.1f}"
    assert result.to_dict()["interval"]["low"] == pytest.approx(score - q)
    assert result.agreement is None

    # evaluate: coverage, width and reliability, computed by hand on the test split
    from hieroaction.evaluation.runner import EvalConfig, evaluate_model
    from hieroaction.evaluation.scoring import BootstrapConfig, ScoringConfig

    config = EvalConfig(inference=fast_assessor.config,
                        scoring=ScoringConfig(bootstrap=BootstrapConfig(n_resamples=50)))
    run = evaluate_model(model_copy, cal_records, tmp_path / "eval", config=config, split="test",
                         assessor=fast_assessor, progress=False)
    m = run.evaluation.metrics
    tests = [(i, r) for i, r in enumerate(records) if r.split == "test"]
    test_errors = [abs(_greedy_score(i, r.score.final) - r.score.final) for i, r in tests]
    assert m["interval_nominal"] == 0.8 and m["n_interval"] == N_TEST
    assert m["interval_coverage"] == pytest.approx(sum(e <= q for e in test_errors) / N_TEST)
    assert m["interval_width"] == pytest.approx(2 * q)  # no interval reaches the range's ends
    assert len(m["interval_coverage_ci"]) == 2 and m["calibration"]["method"] == "absolute"
    levels = [row["nominal"] for row in m["interval_reliability"]]
    assert levels == [0.5, 0.8, 0.9, 0.95]
    for row in m["interval_reliability"]:
        q_level = cf.conformal_quantile(errors, row["nominal"])
        assert row["empirical"] == pytest.approx(sum(e <= q_level for e in test_errors) / N_TEST)
    # the nominal level's refit gives the stored coverage back
    assert m["interval_reliability"][1]["empirical"] == pytest.approx(m["interval_coverage"])
    classes = {r.action.label for _, r in tests}
    assert set(m["interval_per_class"]) == (classes if len(classes) > 1 else set())
    out = tmp_path / "eval"
    html = (out / "report.html").read_text()
    assert "Score intervals" in html and 'aria-label="empirical against nominal coverage"' in html
    assert html.count('class="level"') == 4 and "interval coverage (nominal 80 %)" in html
    assert (out / "report_assets" / "reliability.svg").is_file()
    md = (out / "report.md").read_text()
    assert "## Score intervals" in md and "](report_assets/reliability.svg)" in md
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["interval_coverage"] == pytest.approx(m["interval_coverage"])
    lines = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert all(line["interval"]["coverage"] == 0.8 for line in lines)


def test_normalised_calibration_with_samples(known, fast_assessor, model_copy, cal_records):
    answers, records = known
    val = [(i, r) for i, r in enumerate(records) if r.split == "val"]
    calibration = calibrate(model_copy, cal_records, "val", samples=3, coverage=0.9, floor=0.5,
                            assessor=fast_assessor)
    assert calibration.method == "normalised" and calibration.samples == 3 and calibration.floor == 0.5
    # by hand: the 3 sampled scores are yhat - s, yhat, yhat + s: population std s x sqrt(2/3)
    expected = sorted(
        abs(_greedy_score(i, r.score.final) - r.score.final) / (_sample_spread(i) * math.sqrt(2 / 3) + 0.5)
        for i, r in val
    )
    assert calibration.scores == pytest.approx(expected)
    assert calibration.quantile == pytest.approx(expected[math.ceil(23 * 0.9) - 1])

    fast_assessor.calibration = calibration
    fast_assessor.sampling = calibration.sampling
    index, record = val[0]
    result = next(iter(fast_assessor.assess_records([record], base_dir=cal_records.parent)))
    agreement = result.agreement
    assert agreement.n == 3 and agreement.action_agree == 2 and agreement.steps_agree == 3
    assert agreement.spread == pytest.approx(_sample_spread(index) * math.sqrt(2 / 3))
    half = calibration.quantile * (agreement.spread + 0.5)
    score = result.assessment.score
    assert (result.interval.low, result.interval.high) == pytest.approx((max(0, score - half), score + half))
    assert "3 sampled answers (temperature 1): 2 give this action, 3 this step sequence" in agreement.text()
    data = result.to_dict()
    assert data["samples"]["action_share"] == pytest.approx(2 / 3) and data["samples"]["steps_share"] == 1.0


# ---------------------------------------------------------------------------------------------
# What people read
# ---------------------------------------------------------------------------------------------


def _result(interval=None, agreement=None) -> AssessResult:
    parsed = parse_sar("<scoring>fine<score>78.2</score></scoring>")
    return AssessResult(source="dive.mp4", domain="diving", assessment=parsed.assessment,
                        problems=parsed.problems, completion="...", interval=interval, agreement=agreement)


def test_the_interval_is_shown_in_text_html_and_json():
    from hieroaction.reports import assessment_html, assessment_markdown, assessment_text

    interval = ScoreInterval(74.1, 81.9, 0.9)
    agreement = SampleAgreement(n=8, scores=[77.0, 79.0], spread=1.0, action_agree=7, steps_agree=5)
    result = _result(interval, agreement)
    text = assessment_text(result, width=120)
    assert re.search(r"\n  score\s+78\.2\n  interval\s+90 % interval 74\.1-81\.9\n", text)
    assert "8 sampled answers (temperature 1): 7 give this action, 5 this step sequence" in text
    assert "90 % interval 74.1-81.9" in assessment_html(result)
    assert "| interval | 90 % interval 74.1-81.9 |" in assessment_markdown(result)
    data = result.to_dict()
    assert data["interval"] == {"low": 74.1, "high": 81.9, "coverage": 0.9, "method": "absolute",
                                "unbounded": False, "reason": None, "text": "90 % interval 74.1-81.9"}
    assert data["samples"]["n"] == 8 and data["samples"]["action_agree"] == 7


def test_without_a_calibration_no_interval_is_made_up():
    from hieroaction.reports import assessment_html, assessment_text

    result = _result()
    assert "interval" not in assessment_text(result) and "interval" not in assessment_html(result)
    assert result.to_dict()["interval"] is None and result.to_dict()["samples"] is None


def test_interval_text_has_one_decimal_or_enough_to_tell_the_ends_apart():
    assert ScoreInterval(55.583, 62.817, 0.9).text() == "90 % interval 55.6-62.8"
    assert ScoreInterval(59.1, 59.35, 0.9).text() == "90 % interval 59.10-59.35"
    assert ScoreInterval(5.0, 5.0, 0.5).text() == "50 % interval 5.0-5.0"


def test_unbounded_and_missing_intervals_say_so():
    unbounded = _calibration(quantile=math.inf).interval(50.0, domain="synth")
    assert (unbounded.low, unbounded.high) == (0.0, 120.0) and unbounded.unbounded
    assert "the whole score range" in unbounded.text()
    assert unbounded.to_dict()["unbounded"] is True
    assert _calibration(quantile=math.inf).interval(50.0).to_dict()["low"] is None
    assert _calibration().interval(None) is None  # no score read: nothing to put an interval around
    normalised = _calibration(method="normalised", samples=4, floor=0.1)
    missing = normalised.interval(50.0, spread=None, samples=4)
    assert missing.low is None and "fewer than two of the 4 sampled answers gave a score" in missing.text()
