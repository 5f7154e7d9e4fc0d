"""The report's assembly: charts, tables, report.html and metrics.json (no training)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from hieroaction.demo.config import DemoConfig
from hieroaction.demo.report import line_chart_svg, write_outputs
from hieroaction.demo.summary import summarise

from .fakes import seed_run

SVG = "{http://www.w3.org/2000/svg}"


def test_line_chart_draws_one_line_per_series_and_skips_bad_points():
    svg = line_chart_svg(
        [("loss", [1, 2, 3], [3.0, 2.0, float("nan")]), ("val", [2], [2.5]), ("empty", [], [])],
        title="SFT <loss>", y_label="loss",
    )
    root = ET.fromstring(svg)  # well-formed, title escaped
    lines = root.findall(f"{SVG}polyline")
    assert len(lines) == 1  # "val" has one point (a dot only), "empty" none
    dots = root.findall(f"{SVG}circle")
    assert len(dots) == 3  # two finite loss points and the validation point
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "SFT <loss>" in texts and "val" in texts


def test_line_chart_without_data_says_so():
    svg = line_chart_svg([("x", [], [])], title="nothing")
    assert "no data" in svg
    ET.fromstring(svg)


def test_outputs_hold_every_model_curve_and_target(tmp_path):
    runs = [seed_run(0, 0.70, 0.75, 3.0, 2.5), seed_run(1, 0.72, 0.74, 3.1, 2.9)]
    config = DemoConfig(seeds=2)
    summary = summarise(runs, config)
    info = {"command": "hieroaction demo --seeds 2", "seconds": 61.0, "cpu_count": 2,
            "load_average_start": [1.0, 1.0, 1.0], "load_average_end": [2.0, 2.0, 2.0]}
    report, metrics = write_outputs(tmp_path, runs, summary, config, info)
    html = report.read_text(encoding="utf-8")
    for text in ("SFT cold start", "HPL (SFT + GRPO", "baseline: mean training score",
                 "baseline: difficulty oracle", "Over seeds", "Seed 0", "Seed 1",
                 "SFT: loss per step", "reward components", "KL", "completion length",
                 "undefined (constant: read as 0)", "hieroaction demo --seeds 2", "Targets",
                 "share of the within-group reward variance", "zero spread, ratio and clipping"):
        assert text in html, text
    # self-contained: no scripts, nothing loaded from elsewhere
    assert "<script" not in html and "src=\"http" not in html and "href=\"http" not in html
    # example cards only once (the first seed)
    assert html.count("example card") == 1
    data = json.loads(metrics.read_text(encoding="utf-8"))
    assert [s["seed"] for s in data["seeds"]] == [0, 1]
    assert "examples_html" not in data["seeds"][0]
    assert data["summary"]["hpl_vs_sft"]["seeds_better_on_both"] == 2
    assert data["seeds"][0]["models"]["hpl"]["spearman_ci"] == pytest.approx([0.65, 0.8])
    assert data["demo"]["command"] == "hieroaction demo --seeds 2"


def test_sft_validation_metrics_get_their_own_chart():
    from hieroaction.demo.report import sft_curves

    history = [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0, "eval_loss": 1.5}]
    assert len(sft_curves({"log_history": history})) == 1
    history += [{"step": 2, "val/spearman": 0.5, "val/parse_failure_rate": 0.25},
                {"step": 4, "val/spearman": 0.7, "val/parse_failure_rate": 0.1}]
    loss, validation = sft_curves({"log_history": history})
    assert "SFT: validation (greedy answers)" in validation
    assert validation.count("<polyline") == 2  # rho and parse failures, two points each
