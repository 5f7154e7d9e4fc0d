"""End-to-end: the whole demo, generation to report, on a tiny budget.

``test_demo_runs_end_to_end_in_two_minutes`` is the issue's smoke test (``--budget-minutes 2``
through the command line, about 2.5 minutes on a busy 2-core machine). It does not check what
the models learned: only that every stage ran and the outputs hold every model, baseline,
curve and target.
"""

from __future__ import annotations

import json
from pathlib import Path


from hieroaction.cli import main

EXPECTED_MODELS = {"sft", "hpl", "mean_score", "difficulty_oracle"}


def check_outputs(out: Path, models: set[str] = EXPECTED_MODELS) -> dict:
    report = (out / "report.html").read_text(encoding="utf-8")
    data = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert json.loads((out / "demo.json").read_text(encoding="utf-8"))["complete"] is True
    (seed,) = data["seeds"]
    assert set(seed["models"]) == models
    for name in models:
        metrics = seed["models"][name]
        assert metrics["n"] == seed["evaluation"]["test_clips"] >= 8
        assert "spearman_ci" in metrics and "rl2_x100" in metrics
    assert seed["sft"]["steps"] >= 1 and seed["sft"]["log_history"]
    assert seed["hpl"]["steps"] >= 1 and seed["hpl"]["history"]
    assert {t["stage"] for t in seed["timings"]} >= {"data", "model", "sft", "hpl", "evaluation"}
    for text in ("SFT: loss per step", "HPL: reward components", "HPL: KL", "Targets",
                 "baseline: difficulty oracle", "Example assessments", "data:image/jpeg;base64,"):
        assert text in report, text
    assert "<script" not in report
    for name in ("sft", "hpl"):
        assert (out / "seed-0" / "eval" / name / "predictions.jsonl").is_file()
    assert (Path(seed["hpl"]["best"]) / "config.json").is_file()
    return data


def test_demo_runs_end_to_end_in_two_minutes(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--budget-minutes", "2"]) == 0
    check_outputs(out)
    printed = capsys.readouterr()
    assert "report:" in printed.out and "Spearman rho" in printed.out  # results on stdout
    assert "SFT cold start" in printed.err and "left)" in printed.err  # progress: stage and time left


def test_a_second_run_needs_overwrite(tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "demo.json").write_text('{"complete": true}\n', encoding="utf-8")
    assert main(["demo", "--out", str(out), "--quiet"]) == 2
