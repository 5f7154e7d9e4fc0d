"""The demo's results over seeds: mean and spread per model and metric, HPL against SFT, and
the issue's targets checked (never asserted: the report says which are met)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from hieroaction.demo.config import DemoConfig

# Metrics summarised over seeds (key in an evaluation's metrics -> how the report names it).
SUMMARY_METRICS = {
    "spearman": "Spearman rho",
    "rl2_x100": "R-l2 x100",
    "action_accuracy": "action accuracy",
    "step_sequence_accuracy": "step sequence accuracy",
    "step_tiou": "step tIoU",
    "parse_failure_rate": "parse failures",
}

# Models evaluated per seed, in report order: name -> what the report calls it.
MODEL_TITLES = {
    "sft": "SFT cold start",
    "hpl": "HPL (SFT + GRPO, hierarchical rewards)",
    "grpo_score_only": "GRPO, score reward only (ablation)",
    "mean_score": "baseline: mean training score",
    "difficulty_oracle": "baseline: difficulty oracle",
}

# The model whose numbers are checked against the targets: the demo's end product.
FINAL_MODEL = "hpl"


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean, sample standard deviation, min and max of the defined values (and their count)."""
    known = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not known:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None, "values": list(values)}
    return {
        "n": len(known),
        "mean": float(np.mean(known)),
        "std": float(np.std(known, ddof=1)) if len(known) > 1 else None,
        "min": min(known),
        "max": max(known),
        "values": list(values),
    }


def _value(run: Any, model: str, metric: str) -> float | None:
    value = run.models.get(model, {}).get(metric)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def hpl_vs_sft(runs: Sequence[Any]) -> dict[str, Any]:
    """Per-seed differences HPL - SFT in rho (higher is better) and SFT - HPL in R-l2 (lower is
    better, so a positive difference means HPL is better), and how many seeds HPL wins both."""
    rho, rl2, both = [], [], 0
    for run in runs:
        r_h, r_s = _value(run, "hpl", "spearman"), _value(run, "sft", "spearman")
        l_h, l_s = _value(run, "hpl", "rl2_x100"), _value(run, "sft", "rl2_x100")
        d_rho = None if r_h is None or r_s is None else r_h - r_s
        d_rl2 = None if l_h is None or l_s is None else l_s - l_h
        rho.append(d_rho)
        rl2.append(d_rl2)
        both += int(d_rho is not None and d_rl2 is not None and d_rho > 0 and d_rl2 > 0)
    return {
        "spearman_gain": spread(rho),
        "rl2_x100_reduction": spread(rl2),
        "seeds_better_on_both": both,
        "seeds": len(runs),
    }


def check_targets(summary: dict[str, Any], config: DemoConfig) -> list[dict[str, Any]]:
    """Each target: what it asks, the measured value (mean over seeds) and whether it is met."""
    t = config.targets
    models = summary["models"]

    def mean(model: str, metric: str) -> float | None:
        return models.get(model, {}).get(metric, {}).get("mean")

    rows: list[dict[str, Any]] = []

    def add(name: str, value: float | None, met: bool | None, wanted: str) -> None:
        rows.append({"target": name, "wanted": wanted, "value": value, "met": met})

    value = mean(FINAL_MODEL, "action_accuracy")
    add("action accuracy", value, None if value is None else value >= t.action_accuracy,
        f">= {t.action_accuracy:g}")
    value = mean(FINAL_MODEL, "step_sequence_accuracy")
    add("step-sequence accuracy", value,
        None if value is None else value >= t.step_sequence_accuracy, f">= {t.step_sequence_accuracy:g}")
    value = mean(FINAL_MODEL, "parse_failure_rate")
    add("SAR parse failures", value, None if value is None else value <= t.parse_failure_rate,
        f"<= {t.parse_failure_rate:g}")
    value = mean(FINAL_MODEL, "spearman")
    add("Spearman rho", value, None if value is None else value >= t.spearman, f">= {t.spearman:g}")
    oracle = mean("difficulty_oracle", "spearman")
    add("Spearman rho above the difficulty oracle", value,
        None if value is None or oracle is None else value > oracle,
        f"> {oracle:.3f}" if oracle is not None else "> oracle")
    versus = summary["hpl_vs_sft"]
    gain, reduction = versus["spearman_gain"]["mean"], versus["rl2_x100_reduction"]["mean"]
    add("HPL better than SFT on rho (mean gain over seeds)", gain,
        None if gain is None else gain > 0, f"> 0 over {versus['seeds']} seed(s)")
    add("HPL better than SFT on R-l2 (mean reduction over seeds)", reduction,
        None if reduction is None else reduction > 0, f"> 0 over {versus['seeds']} seed(s)")
    return rows


def summarise(runs: Sequence[Any], config: DemoConfig) -> dict[str, Any]:
    """Mean and spread over seeds of every summary metric of every model, HPL against SFT and
    the targets."""
    names: list[str] = []
    for run in runs:
        names += [n for n in run.models if n not in names]
    models = {
        name: {metric: spread([_value(run, name, metric) for run in runs]) for metric in SUMMARY_METRICS}
        for name in names
    }
    summary: dict[str, Any] = {
        "seeds": [run.seed for run in runs],
        "models": models,
        "hpl_vs_sft": hpl_vs_sft(runs),
    }
    summary["targets"] = check_targets(summary, config)
    return summary
