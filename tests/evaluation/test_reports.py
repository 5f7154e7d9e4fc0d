"""The report building blocks, on real assessments (SFT targets of synthetic records)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from hieroaction.data.records import read_jsonl
from hieroaction.evaluation.predictions import truth_from_record
from hieroaction.inference import AssessResult
from hieroaction.reports import (
    assessment_html,
    assessment_markdown,
    assessment_text,
    assessments_page,
    scatter_svg,
    timeline_svg,
)
from hieroaction.reports.svg import label_colour, nice_ticks
from hieroaction.sar import parse_sar
from hieroaction.sar.targets import build_target


@pytest.fixture(scope="module")
def record(records_path):
    return read_jsonl(records_path)[0]


@pytest.fixture(scope="module")
def good_result(record):
    """What the assessor returns for a perfect answer: the record's own SAR target, parsed."""
    completion = build_target(record)
    parsed = parse_sar(completion)
    assert parsed.ok
    rng = np.random.default_rng(0)
    from hieroaction.video import Clip

    n = 12
    clip = Clip(
        frames=rng.integers(0, 255, (n, 56, 84, 3), dtype=np.uint8), indices=np.arange(n),
        timestamps=np.arange(n) / 4.0, fps=4.0, fps_source="record", source="clip.mp4",
        start_frame=0, end_frame=n - 1, decoder="pyav", source_size=(56, 84),
    )
    return AssessResult(
        source="clip.mp4", record_id=record.id, domain=record.domain, assessment=parsed.assessment,
        problems=[], completion=completion, window=(0.0, 3.0), fps=4.0,
        frame_times=list(clip.timestamps), clip=clip,
    )


def test_text_is_aligned_and_complete(good_result):
    text = assessment_text(good_result, width=100)
    a = good_result.assessment
    rows = [line for line in text.splitlines() if re.match(r"\s+\d+\s{2}", line)]
    assert len(rows) == len(a.steps)
    # every step row puts its start time in the same column
    columns = {line.index(f"{s.start:.2f}", len(s.label)) for line, s in zip(rows, a.steps)}
    assert len(columns) == 1
    assert a.action in text and "difficulty" in text and "formula gives" in text
    assert "none: the answer follows the SAR format" in text
    assert all(len(line) <= 100 for line in text.splitlines())


def test_partial_answer_is_shown_with_its_problems():
    parsed = parse_sar("<recognition>looks like a dive<action>407C</action></recognition> score: 7")
    result = AssessResult(source="x.mp4", domain="diving", assessment=parsed.assessment,
                          problems=parsed.problems, completion="...")
    text = assessment_text(result, width=90)
    assert "407C" in text and "(none read)" in text and "missing_block" in text
    html = assessment_html(result)
    assert "The answer has problems" in html and "missing_block" in html


def test_html_card_has_true_and_predicted_tracks_over_key_frames(good_result, record):
    truth = truth_from_record(record)
    html = assessment_html(good_result, truth)
    steps = len(good_result.assessment.steps)
    assert html.count('class="step"') == steps + len(truth.steps)
    assert html.count("<image ") == 8  # key frames (default 8 of the clip's 12)
    assert ">true<" in html and ">predicted<" in html
    page = assessments_page([good_result, AssessResult(source="bad.mp4", error="bad.mp4: no such video file")])
    assert "2 clip(s), 1 not assessed" in page and "no such video file" in page


def test_markdown_card(good_result, record):
    md = assessment_markdown(good_result, truth_from_record(record))
    assert md.startswith(f"### {record.id}") and "| predicted | true |" in md
    assert "True steps:" in md and "**Problems:** none" in md


def test_scatter_points_and_escaping():
    svg = scatter_svg([1, 2, 3, float("nan")], [1.5, 2.0, 2.5, 1.0], ids=["a", "<b>", "c", "d"],
                      imputed=[False, True, False, False])
    assert svg.count('class="point"') == 3  # the NaN pair is not drawn
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert "hollow: no score read" in svg


def test_timeline_steps_frames_and_colours():
    frames = [np.zeros((32, 48, 3), np.uint8)] * 4
    steps = [{"label": "take-off", "start": 0.0, "end": 1.0}, {"label": "entry", "start": 1.0, "end": 2.0}]
    svg = timeline_svg(2.0, [("predicted", steps), ("true", [])], frames=frames, frame_times=[0, 0.5, 1, 1.5])
    assert svg.count("<image ") == 4 and svg.count('class="step"') == 2 and "no steps" in svg
    assert svg.count(label_colour("entry")) == 1 and label_colour("entry") == label_colour("entry")


def test_nice_ticks():
    assert nice_ticks(0, 100) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(17.25, 112) == [20, 40, 60, 80, 100]
    assert nice_ticks(0, 9, count=4) == [0, 2.5, 5, 7.5]
    assert nice_ticks(0, 2.9, count=8) == [0, 0.5, 1.0, 1.5, 2.0, 2.5]


def test_evaluation_report_tables(tmp_path):
    from hieroaction.evaluation.predictions import PredictionRow, Span, TruthRow
    from hieroaction.evaluation.scoring import BootstrapConfig, ScoringConfig, score_predictions
    from hieroaction.reports import write_evaluation_report

    truths = [TruthRow(id=str(i), score=float(i), action="AB"[i % 2], group="AB"[i % 2],
                       steps=[Span("x", 0.0, 1.0)]) for i in range(8)]
    preds = [PredictionRow(id=str(i), score=float(i) + 0.5, action="A", has_action=True, has_steps=True,
                           steps=[Span("x", 0.0, 0.5)]) for i in range(8)]
    preds[3].score = None
    evaluation = score_predictions(preds, truths, ScoringConfig(bootstrap=BootstrapConfig(n_resamples=20)))
    files = write_evaluation_report(tmp_path, evaluation, info={"data": "t.jsonl"})
    assert sorted(p.name for p in files) == ["report.html", "report.md", "scatter.svg"]
    md = (tmp_path / "report.md").read_text()
    assert "| B | A | 4 |" in md  # the one confusion: every B read as A
    assert "4 of the 8 clips with a true action label" in md
    assert "| A | 4 |" in md and "| B | 4 |" in md  # per-class rows
    assert "1 prediction(s) without a score are scored as the mean" in md
    html = (tmp_path / "report.html").read_text()
    assert html.count('class="point"') == 8 and "hollow: no score read" in html
    assert "AIoU@0.5" in html and "Spearman rho" in html
