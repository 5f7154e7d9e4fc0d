"""``hieroaction plan``: how much memory a recipe needs per GPU, and which GPUs fit it.

``hieroaction plan --config RECIPE [--gpus N] [--gpu-memory GB]`` prints the model's shape,
the clip's visual tokens and the sequence lengths, then the per-device memory of LoRA and of
full fine-tuning under DDP, FSDP, ZeRO-2 and ZeRO-3 (weights, optimizer states, gradients,
activations with or without checkpointing as the recipe says, logits, visual inputs, the
rollout KV cache for HPL), and which device sizes fit. Without ``--config`` it prints the fit
table of the shipped recipes (``configs/sft``, ``configs/hpl``). The library functions are in
:mod:`hieroaction.train.plan`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``plan`` command."""
    plan = subparsers.add_parser(
        "plan",
        help="per-GPU memory of a recipe (LoRA/full, DDP/FSDP/ZeRO) and which GPUs fit it",
        description="Estimate the per-device memory of training a recipe: weights, optimizer "
        "states, gradients, activations, logits, visual inputs and (HPL) the rollout KV cache, "
        "for LoRA and full fine-tuning under DDP, FSDP, ZeRO-2 and ZeRO-3. Without --config: "
        "the table of the shipped recipes against 24, 40, 80 and 141 GB GPUs.",
    )
    plan.add_argument("--config", metavar="RECIPE", help="an SFT or HPL recipe (configs/sft/..., configs/hpl/...)")
    plan.add_argument("--gpus", type=int, default=None, metavar="N",
                      help="GPUs of the sharded strategies (default 1 with --config, 8 for the table)")
    plan.add_argument("--gpu-memory", type=float, default=None, metavar="GB",
                      help="memory of one GPU in GiB (default: show 24, 40, 80 and 141)")
    plan.add_argument("--source", default=None, metavar="WxH",
                      help="frame size of the videos before resizing (default 1280x720)")
    plan.add_argument("--prompt-tokens", type=int, default=None, metavar="N",
                      help="text tokens of the prompt around the video (default 640)")
    plan.add_argument("--answer-tokens", type=int, default=None, metavar="N",
                      help="tokens of an SFT answer (default 512; HPL uses max_completion_length)")
    plan.add_argument("--arch", default=None, metavar="NAME",
                      help="a known architecture instead of the model's, e.g. Qwen/Qwen3-VL-8B-Instruct")
    plan.add_argument("--configs", default="configs", metavar="DIR",
                      help="folder of the shipped recipes for the table (default configs)")
    plan.add_argument("--json", action="store_true", help="print one JSON object")
    plan.set_defaults(handler=run_plan, accepts_overrides=True)


def _source(text: str | None) -> tuple[int, int]:
    from hieroaction.errors import ConfigError
    from hieroaction.train.plan import DEFAULT_SOURCE

    if not text:
        return DEFAULT_SOURCE
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--source must be WIDTHxHEIGHT, e.g. 1280x720, got {text!r}") from None
    if width < 1 or height < 1:
        raise ConfigError(f"--source must be positive, got {text!r}")
    return height, width


def _gib(value: int) -> str:
    return f"{value / 1024**3:.1f}"


def run_plan(args: argparse.Namespace) -> int:
    """Handler of ``hieroaction plan``."""
    from hieroaction.errors import ConfigError
    from hieroaction.train import plan as planning

    if args.gpus is not None and args.gpus < 1:
        raise ConfigError(f"--gpus must be at least 1, got {args.gpus}")
    if args.gpu_memory is not None and not args.gpu_memory > 0:
        raise ConfigError(f"--gpu-memory must be positive, got {args.gpu_memory}")
    options: dict[str, Any] = {"source": _source(args.source), "arch": args.arch}
    if args.prompt_tokens is not None:
        options["prompt_tokens"] = args.prompt_tokens
    if args.answer_tokens is not None:
        options["answer_tokens"] = args.answer_tokens
    sizes = (args.gpu_memory,) if args.gpu_memory else planning.GPU_SIZES_GB
    if not args.config:
        if args.overrides:
            raise ConfigError(f"settings {' '.join(args.overrides)} need --config")
        gpus = args.gpus or 8
        plans, skipped = [], []
        for recipe in planning.shipped_recipes(args.configs):
            try:
                plans.append(planning.plan_recipe(recipe, gpus, args.gpu_memory, **options))
            except ConfigError as exc:  # e.g. the CPU demo's tiny model, not built here
                skipped.append({"recipe": str(recipe), "reason": str(exc)})
        rows = planning.fit_table(plans, sizes, gpus)
        if args.json:
            print(json.dumps({"gpus": gpus, "rows": rows, "skipped": skipped}, indent=2))
        else:
            print(_table(rows, sizes, gpus))
            for skip in skipped:
                print(f"skipped {skip['recipe']}: {skip['reason']}")
        return 0
    plan = planning.plan_recipe(args.config, args.gpus or 1, args.gpu_memory, overrides=args.overrides, **options)
    if args.json:
        print(json.dumps(_plan_json(plan, sizes), indent=2))
    else:
        print(_report(plan, sizes))
    return 0


def _table(rows: list[dict[str, Any]], sizes: Any, gpus: int) -> str:
    heads = [f"{s:g} GB" for s in sizes]
    lines = [
        f"Shipped recipes: the cheapest way each fits (1 GPU, else {gpus} GPUs with the least sharding).",
        "",
        "| recipe | method | " + " | ".join(heads) + " |",
        "|---|---|" + "---|" * len(heads),
    ]
    for row in rows:
        lines.append(f"| {row['recipe']} | {row['method']} | " + " | ".join(row[h] for h in heads) + " |")
    return "\n".join(lines)


def _report(plan: Any, sizes: Any) -> str:
    a = plan.arch
    counts = a.parameter_counts()
    frames, height, width = plan.frames
    lines = [
        f"{plan.recipe} ({plan.kind.upper()}, {plan.method})",
        (
            f"model: {a.name} [{a.source}]: {counts['total'] / 1e9:.2f} B parameters "
            f"(language {counts['language'] / 1e9:.2f} B, vision {counts['vision'] / 1e6:.0f} M, "
            f"projector {counts['merger'] / 1e6:.0f} M); {a.text.num_hidden_layers} layers, hidden "
            f"{a.text.hidden_size}, {a.text.num_attention_heads} heads ({a.text.num_key_value_heads} KV) x "
            f"{a.text.head_dim}, vocabulary {a.text.vocab_size:,}"
        ),
        (
            f"clip: {frames} frames at {width}x{height} -> {plan.visual_tokens} visual tokens; "
            f"prompt {plan.prompt_tokens} tokens, {'completion' if plan.kind == 'hpl' else 'answer'} "
            f"{plan.completion_tokens}"
        ),
    ]
    workload = plan.workloads[plan.method]
    if workload.rollout is not None:
        r = workload.rollout
        lines.append(f"rollout: {r.backend}, {r.group_size} completions per prompt; loss pass {workload.sequences} sequences")
    else:
        lines.append(f"micro-batch: {workload.sequences} sequence(s) of {workload.tokens} tokens")
    lines.append(f"gradient checkpointing: {'on' if workload.gradient_checkpointing else 'off'} (the recipe's)")
    lines.append("")
    lines.append(f"GiB per GPU ({plan.gpus} GPU{'s' if plan.gpus > 1 else ''} for the sharded strategies):")
    lines.append("")
    heads = ["weights", "optimizer", "gradients", "activations", "recompute", "logits", "visual", "rollout", "engine",
             "gathered", "total"]
    lines.append("| method | strategy | " + " | ".join(heads) + " | fits (GB) |")
    lines.append("|---|---|" + "---|" * (len(heads) + 1))
    for method in (plan.method, "full" if plan.method == "lora" else "lora"):
        for strategy, est in plan.estimates[method].items():
            terms = est.terms()
            fits = [f"{s:g}" for s in sizes if _estimate_for(plan, method, strategy, s).fits(int(s * 1024**3))]
            mark = " (recipe)" if method == plan.method else ""
            lines.append(
                f"| {method}{mark} | {strategy} | " + " | ".join(_gib(terms[h]) for h in heads)
                + f" | {', '.join(fits) or 'none'} |"
            )
    lines.append("")
    lines.append(
        "total = weights + optimizer + gathered + engine + CUDA overhead (1.5) + max(training pass, "
        "rollout), training pass = gradients + visual + activations + max(logits, recompute); "
        "fits: total <= 95% of the GPU. Rules: docs/training.md, Memory planning."
    )
    for note in plan.notes + sorted({n for d in plan.estimates.values() for e in d.values() for n in e.notes}):
        lines.append(f"note: {note}")
    return "\n".join(lines)


def _estimate_for(plan: Any, method: str, strategy: str, size: float) -> Any:
    from hieroaction.models.memory import estimate_memory

    return estimate_memory(plan.arch, plan.workloads[method], strategy, plan.gpus, device_bytes=int(size * 1024**3))


def _plan_json(plan: Any, sizes: Any) -> dict[str, Any]:
    frames, height, width = plan.frames
    out: dict[str, Any] = {
        "recipe": plan.recipe, "kind": plan.kind, "method": plan.method,
        "model": plan.arch.name, "architecture_source": plan.arch.source,
        "parameters": plan.arch.parameter_counts(),
        "frames": {"count": frames, "height": height, "width": width},
        "visual_tokens": plan.visual_tokens, "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": plan.completion_tokens, "gpus": plan.gpus, "notes": plan.notes,
        "estimates": {},
    }
    for method, by_strategy in plan.estimates.items():
        out["estimates"][method] = {
            strategy: {
                "bytes": est.terms(),
                "fits_gb": [s for s in sizes if _estimate_for(plan, method, strategy, s).fits(int(s * 1024**3))],
                "notes": est.notes,
            }
            for strategy, est in by_strategy.items()
        }
    return out
