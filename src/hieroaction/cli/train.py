"""``hieroaction train ...``: the training jobs (``sft`` and ``hpl``; each job adds itself in
:func:`register` through one ``_add_<job>`` function)."""

from __future__ import annotations

import argparse
from typing import Any

from hieroaction.cli.common import log_to_stderr, subcommands

# ----- sft --------------------------------------------------------------------------------------


def _sft(args: argparse.Namespace) -> int:
    from hieroaction.train.sft import load_sft_config, prepare_sft, train_sft

    log_to_stderr()
    config = load_sft_config(args.config, getattr(args, "overrides", None))
    if args.check:
        plan = prepare_sft(config, progress=not args.quiet)
        data = plan.data
        assert data is not None
        sizes = ", ".join(f"{name} {len(ex)}" for name, ex in data.splits.items())
        print(
            f"config OK: model {plan.model_path} ({plan.family.name}), examples: {sizes}, "
            f"{len(data.skipped)} skipped, precision {plan.precision}, "
            f"{'resume from ' + str(plan.resume_from) if plan.resume_from else 'fresh run'}"
        )
        return 0
    result = train_sft(config, progress=not args.quiet)
    loss = f"{result.train_loss:.4f}" if result.train_loss is not None else "n/a"
    print(f"trained {result.global_step} steps (train loss {loss}); model in {result.output_dir}")
    return 0


def _add_sft(sub: Any) -> None:
    p = sub.add_parser(
        "sft",
        help="supervised cold start on SAR targets (full fine-tuning or LoRA)",
        description=(
            "Fine-tune a video VLM on SAR completions built from annotations. Settings come from "
            "--config (a recipe in configs/sft/) and --key value overrides with dotted keys, e.g. "
            "--max_steps 100 --lora.enabled true --data.records data/synth/records.jsonl. "
            "Multi-GPU: accelerate launch --config_file configs/accelerate/<setup>.yaml "
            "-m hieroaction train sft --config ..."
        ),
    )
    p.add_argument("--config", metavar="FILE", help="YAML recipe of SFTConfig settings")
    p.add_argument("--check", action="store_true",
                   help="check the settings, model path and records and fill the frame cache, then stop")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_sft, accepts_overrides=True)


# ----- hpl --------------------------------------------------------------------------------------


def _hpl(args: argparse.Namespace) -> int:
    from hieroaction.config import load_config
    from hieroaction.train.hpl import HPLConfig, check_inputs, train_hpl

    log_to_stderr()
    config = load_config(HPLConfig, args.config, getattr(args, "overrides", None))
    if args.check:
        data, reward = check_inputs(config)
        sizes = ", ".join(f"{name} {len(ex)}" for name, ex in data.splits.items())
        print(f"config OK: model {config.model}, examples: {sizes}, rewards {sorted(reward.weights)}")
        return 0
    result = train_hpl(config)
    print(f"trained {result.global_step} steps; final model in {result.output_dir}, best in {result.best_dir}")
    return 0


def _add_hpl(sub: Any) -> None:
    p = sub.add_parser(
        "hpl",
        help="hierarchical policy learning: GRPO with rewards at every level",
        description=(
            "GRPO from an SFT checkpoint (or a base model) with the hierarchical rewards. Settings "
            "come from --config (a recipe in configs/hpl/) and --key value overrides with dotted "
            "keys, e.g. --max_steps 50 --rewards.composition.mode sum. A run resumes from the "
            "newest checkpoint in output_dir. Multi-GPU: accelerate launch --config_file "
            "configs/accelerate/<setup>.yaml -m hieroaction train hpl --config ..."
        ),
    )
    p.add_argument("--config", metavar="FILE", help="YAML recipe of HPLConfig settings")
    p.add_argument("--check", action="store_true",
                   help="check the settings, rewards and records and fill the frame cache, then stop")
    p.set_defaults(handler=_hpl, accepts_overrides=True)


# ----- registration -----------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    """Add ``hieroaction train`` and its jobs."""
    train = subparsers.add_parser("train", help="train a model (sft, hpl)")
    sub = subcommands(train, "train_command", metavar="JOB")
    _add_sft(sub)
    _add_hpl(sub)
