"""Hand-made demo results for the summary and report tests (no training)."""

from __future__ import annotations

from typing import Any

from hieroaction.demo.runner import SeedRun


def model_metrics(rho: float | None, rl2: float, action: float | None = None, steps: float | None = None,
                  parse: float | None = None, n: int = 40) -> dict[str, Any]:
    return {
        "n": n, "spearman": rho,
        "spearman_ci": None if rho is None or rho != rho else [rho - 0.1, rho + 0.05],
        "rl2_x100": rl2, "rl2_x100_ci": [rl2 * 0.8, rl2 * 1.2],
        "action_accuracy": action, "action_accuracy_ci": None,
        "step_sequence_accuracy": steps, "step_tiou": None if steps is None else 0.7,
        "parse_failure_rate": parse, "n_action": n, "n_steps": n, "n_completions": n,
    }


def seed_run(seed: int, sft_rho: float, hpl_rho: float, sft_rl2: float, hpl_rl2: float,
             oracle_rho: float = 0.65, shuffled: tuple[float, float] | None = None,
             all_labels: tuple[float, float] | None = None) -> SeedRun:
    run = SeedRun(seed=seed, folder=f"/tmp/seed-{seed}")
    run.data = {"clips": 200, "splits": {"train": 140, "val": 20, "test": 40},
                "reference_rho": {"difficulty_oracle": 0.66, "quality_reader": 0.99, "clips": 40}}
    run.sft = {"steps": 50, "batch_size": 8, "examples_seen": 400, "train_examples": 140,
               "seconds_per_step": 0.9,
               "log_history": [{"step": s, "loss": 3.0 / s} for s in range(1, 51, 5)]
               + [{"step": 25, "eval_loss": 0.4}, {"step": 50, "eval_loss": 0.3}]}
    run.hpl = {"steps": 6, "prompts_per_step": 2, "group_size": 4, "best_metrics": {"step": 4},
               "history": [{"step": s, "reward/total": 2 + 0.1 * s, "reward/format": 0.9,
                            "reward/score": 0.3 + 0.05 * s, "kl": 0.001 * s,
                            "completion_length": 150.0, "zero_spread_fraction": 0.5,
                            "policy/ratio_mean": 1.0, "policy/clipped_fraction": 0.0,
                            "reward_variance_share/score": 0.7, "reward_variance_share/format": 0.3}
                           for s in range(1, 7)]
               + [{"step": 4, "val/reward": 2.5}]}
    run.evaluation = {"test_clips": 40, "test_split_clips": 40}
    run.models = {
        "sft": model_metrics(sft_rho, sft_rl2, 0.95, 0.9, 0.0),
        "hpl": model_metrics(hpl_rho, hpl_rl2, 0.97, 0.92, 0.0),
        "mean_score": model_metrics(float("nan"), 9.0),
        "difficulty_oracle": model_metrics(oracle_rho, 4.0),
    }
    if shuffled is not None:
        run.models["hpl_shuffled"] = model_metrics(shuffled[0], shuffled[1], 0.95, 0.9, 0.0)
        run.hpl_shuffled = {**run.hpl, "best_metrics": {"step": 0}}
    if all_labels is not None:
        run.models["sft_all_labels"] = model_metrics(all_labels[0], all_labels[1], 0.99, 0.95, 0.0)
    run.timings = [{"stage": "data", "seconds": 12.0, "load_start": 1.0, "load_end": 1.5}]
    run.examples_html = ['<div class="card">example card</div>']
    return run
