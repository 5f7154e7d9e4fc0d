"""The fast demo runs the whole recipe end to end (it must finish and report, not reach targets)."""

import json

from hieroaction.cli import main


def test_demo_with_a_two_minute_budget_writes_its_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--budget-minutes", "2", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    html = (out / "report.html").read_text()
    assert "<svg" in html and "SFT" in html and "HPL" in html
    text = json.dumps(metrics)
    for name in ("sft", "hpl", "spearman", "rl2_x100"):
        assert name in text
