"""Benchmark: one SFT step and one GRPO step of Qwen2.5-VL-3B's real widths, cut to 2 layers, on CPU.

The model is ``hieroaction model tiny --size real3b_2layer`` (models/data/tiny_sizes.yaml): every
matrix has the released 3B's shape (text 2048 wide with an 11008 MLP, 16 heads and 2 KV heads;
the vision tower 1280 wide with 16 heads; the 151,936-row embedding tied to the output head),
2 language and 2 vision layers, random weights (about 0.54 B parameters). The tokenizer is the
tiny models' own (about 1,000 entries); the embedding keeps every 151,936 rows, so the
language-model head and the log-probabilities run over the full vocabulary.

Both steps train LoRA (r 8 on q/k/v/o/gate/up/down of the language model, the projector in
full, the vision tower frozen) on synthetic clips (``hieroaction synth``):

* SFT: ``train_sft`` with ``max_steps: 1``, batch 1: one clip, its prompt and SAR answer; the
  loss is transformers' own. ``precision: bf16`` loads the weights in bf16.
* GRPO: ``HPLTrainer.train_step`` once, ``group_size: 2``, one prompt, short completions
  (``precision: bf16``: fp32 weights under autocast). A random model earns no hierarchical
  reward (and with a 151,936-row head most of its tokens are rows the tiny tokenizer has no text
  for), so the reward is a stand-in, :func:`group_position` (0 and 1 alternately): every group
  has a spread, and the step does its full forward and backward pass.

Precision: ``--precision auto`` (default) is bf16 where bf16 matrix products are native (a GPU,
a CPU with AVX512-BF16 or AMX), else fp32: on an AVX2 CPU torch's fallback bf16 kernel runs
the ``grad_output @ weight`` product of every linear layer's backward pass at about 0.05 GFLOP/s,
so one bf16 step took 5 minutes (GRPO) and 50 minutes (SFT) on a 2-core AVX2 machine
(:func:`native_bf16`).

Each phase runs in its own process, so each peak resident memory (``resource.getrusage``'s
``ru_maxrss``, the process's lifetime peak) is that phase's alone: building the checkpoint,
the SFT run (loading, the frame cache, one step, saving the adapter), the GRPO run (loading,
one step). The weights are memory-mapped, so they count as they are read. The step times are
wall-clock around the step alone (SFT: the Trainer's step, from a callback; GRPO:
``train_step``, sampling included). One step changes the LoRA ``lora_B`` matrices (and the
projector): ``lora_A``'s gradient is 0 while ``lora_B`` is still at its zero start.
``--phases logprobs`` measures the sampled tokens' log-probabilities alone, the chunked
``token_logprobs`` against the former full-row float32 computation.

Run (about 2 minutes in fp32 on a 2-core CPU, about 4.5 GB of memory; docs/training.md has the
last result)::

    python benchmarks/bench_real_size.py --json real_size.json

``--frames``/``--frame-size`` set the clip (default 16 frames of 112x112: 512 patches through the
vision tower, 128 visual tokens); ``--template default`` uses the real prompt template instead
of the two-line test prompt (a much longer sequence).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FAMILY = "qwen2_5_vl"
SIZE = "real3b_2layer"
# A two-line prompt (tests/train/conftest.py's): fewer tokens, so a bf16 step fits a CPU budget.
SHORT_TEMPLATE = 'system: "Judge the {domain_title} action."\nuser: "Frames at {timestamps} s. Assess it."\n'
LORA = {"enabled": True, "r": 8, "alpha": 16, "dropout": 0.0, "merge": False}


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (MB; Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----- the shared set-up (also used by tests/train/test_real_size.py) ---------------------------


def build_model(out: Path, seed: int = 0) -> Path:
    """The real-width checkpoint (fp32 safetensors, about 2.2 GB)."""
    from hieroaction.models.tiny import build_tiny

    return build_tiny(FAMILY, out, size=SIZE, seed=seed, overwrite=True)


def build_data(out: Path, clips: int = 6, seed: int = 0) -> Path:
    """A synthetic benchmark's records file (a few clips; the steps use the first)."""
    from hieroaction.synth import generate

    return Path(generate(out, n=clips, seed=seed, overwrite=True).records_path)


def frames(num_frames: int, size: int) -> dict[str, Any]:
    """The data.frames section: ``num_frames`` frames of ``size`` x ``size`` pixels."""
    return {"num_frames": num_frames, "min_pixels": size * size, "max_pixels": size * size}


def data_section(records: Path, cache: Path, template: Path | None, num_frames: int, size: int) -> dict[str, Any]:
    data: dict[str, Any] = {"records": str(records), "cache_dir": str(cache), "frames": frames(num_frames, size)}
    if template is not None:
        data["prompt"] = {"template": str(template)}
    return data


def native_bf16() -> bool:
    """Whether this machine multiplies bf16 matrices natively: a CUDA GPU, or a CPU with
    AVX512-BF16 / AMX (oneDNN's bf16 path). Elsewhere (AVX2 CPUs) torch falls back to a generic
    kernel that runs some bf16 products (the ``grad_output @ weight`` of every linear layer's
    backward pass) at about 0.05 GFLOP/s, 200 times slower than fp32: one bf16 step of this model
    took 50 minutes on a 2-core AVX2 machine (fp32: 30 seconds)."""
    import torch

    return torch.cuda.is_available() or bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def default_precision() -> str:
    """bf16 where it is native (:func:`native_bf16`), else fp32."""
    return "bf16" if native_bf16() else "fp32"


def sft_settings(model: Path, data: dict[str, Any], out: Path, precision: str = "bf16",
                 learning_rate: float = 1e-3) -> dict[str, Any]:
    """One LoRA SFT step on one clip, nothing saved but the final adapter."""
    return {
        "model": str(model), "output_dir": str(out), "data": {**data, "max_train_samples": 1},
        "lora": dict(LORA), "precision": precision, "max_steps": 1, "batch_size": 1,
        "learning_rate": learning_rate, "lr_scheduler": "constant", "warmup": 0,
        "save_steps": 1000, "logging_steps": 1, "report_to": ["none"], "log_data_order": False,
    }


def hpl_args(model: Path, data: dict[str, Any], out: Path, completion: int, precision: str = "bf16",
             learning_rate: float = 1e-3) -> list[str]:
    """``key=value`` settings of one LoRA GRPO step: G = 2, one prompt."""
    args = [
        f"model={model}", f"output_dir={out}", f"data.records={data['records']}",
        f"data.cache_dir={data['cache_dir']}", "data.eval_split=none",
        "group_size=2", "prompts_per_step=1", f"max_completion_length={completion}",
        "zero_spread=keep", f"precision={precision}", f"learning_rate={learning_rate}", "seed=0",
        "lora.enabled=true", "lora.r=8", "lora.alpha=16", "lora.dropout=0.0",
        "eval_at_start=false", "save_steps=1000", "max_steps=1",
        "rewards.weights={group_position: 1.0}",
    ]
    args += [f"data.frames.{k}={v}" for k, v in data["frames"].items()]
    if "prompt" in data:
        args.append(f"data.prompt.template={data['prompt']['template']}")
    return args


def group_position(completions: list[Any], **_: Any) -> list[float]:
    """The stand-in reward: 0 and 1 alternately (a group's first completion 0, its second 1)."""
    return [float(i % 2) for i in range(len(completions))]


def lora_state(model: Any) -> dict[str, Any]:
    """Copies of the LoRA parameters (to see that a step changed them)."""
    return {n: p.detach().float().clone() for n, p in model.named_parameters() if "lora_" in n}


def changed(before: dict[str, Any], after: dict[str, Any]) -> int:
    """How many LoRA tensors differ between two :func:`lora_state` copies."""
    import torch

    return sum(not torch.equal(before[k], after[k]) for k in before)


def _cpu_training_arguments() -> type:
    """``TrainingArguments`` with ``use_cpu`` defaulting to True (see below); module level, so
    the Trainer can pickle it into checkpoints."""
    global CPUTrainingArguments
    if "CPUTrainingArguments" not in globals():
        from transformers import TrainingArguments

        class CPUTrainingArguments(TrainingArguments):  # type: ignore[no-redef]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                kwargs.setdefault("use_cpu", True)
                super().__init__(*args, **kwargs)

        CPUTrainingArguments.__qualname__ = "CPUTrainingArguments"
    return CPUTrainingArguments


@contextmanager
def cpu_bf16_training_arguments(precision: str) -> Iterator[None]:
    """transformers' ``TrainingArguments`` refuses ``bf16=True`` on a machine without a GPU
    unless ``use_cpu=True``, which ``train_sft`` does not pass: so ``precision: bf16`` SFT
    stops at its settings on a CPU. Until it does, this defaults ``use_cpu`` to True for a bf16
    run where CUDA is missing (it changes nothing else: accelerate runs on the CPU there anyway)."""
    import torch
    import transformers

    if precision != "bf16" or torch.cuda.is_available():
        yield
        return
    original = transformers.TrainingArguments
    transformers.TrainingArguments = _cpu_training_arguments()
    try:
        yield
    finally:
        transformers.TrainingArguments = original


def run_sft(settings: dict[str, Any]) -> dict[str, Any]:
    """One SFT step; its loss, step time, memory and LoRA tensors changed."""
    from transformers import TrainerCallback

    from hieroaction.config import config_from_dict
    from hieroaction.train.sft import SFTConfig, train_sft

    seen: dict[str, Any] = {}

    class Watch(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
            seen["before"] = lora_state(model)
            if train_dataloader is not None:  # the one example's tokens: all, and the answer's
                item = train_dataloader.dataset[0]
                seen["sequence_tokens"] = int(item["input_ids"].shape[-1])
                seen["answer_tokens"] = int((item["labels"] != -100).sum())

        def on_step_begin(self, args, state, control, **kwargs):
            seen["started"] = time.perf_counter()

        def on_step_end(self, args, state, control, model=None, **kwargs):
            seen["step_seconds"] = time.perf_counter() - seen["started"]
            seen["after"] = lora_state(model)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                seen["loss"] = float(logs["loss"])

    with cpu_bf16_training_arguments(settings["precision"]):
        result = train_sft(config_from_dict(SFTConfig, settings), callbacks=[Watch()], progress=False)
    loss = seen.get("loss", getattr(result, "train_loss", float("nan")))
    return {
        "loss": loss,
        "step_seconds": seen["step_seconds"],
        "sequence_tokens": seen.get("sequence_tokens"),
        "answer_tokens": seen.get("answer_tokens"),
        "lora_tensors": len(seen["before"]),
        "lora_tensors_changed": changed(seen["before"], seen["after"]),
    }


def plain_token_logprobs(logits: Any, tokens: Any, temperature: float = 1.0, blocked: Any = ()) -> Any:
    """The computation ``token_logprobs`` replaced (for ``--plain-logprobs``): generate's scores
    stacked into one (N, T, V) float32 tensor, and per completion one float32 (T, V) log-softmax
    that autograd keeps until the backward pass."""
    import torch

    if not isinstance(logits, torch.Tensor):
        logits = torch.stack(list(logits), dim=1)
    rows = []
    for row_logits, row_tokens in zip(logits, tokens):
        row = row_logits.float() / temperature
        if blocked:
            row = row.index_fill(1, torch.as_tensor(list(blocked), device=row.device), float("-inf"))
        picked = torch.gather(row, 1, row_tokens.unsqueeze(-1)).squeeze(-1)
        rows.append(picked - torch.logsumexp(row, dim=-1))
    return torch.stack(rows)


def run_grpo(args: list[str], plain_logprobs: bool = False) -> dict[str, Any]:
    """One GRPO step; its loss, step time, memory and LoRA tensors changed."""
    from hieroaction import rewards
    from hieroaction.config import load_config
    from hieroaction.train import hpl
    from hieroaction.train.hpl import HPLConfig, HPLTrainer

    if plain_logprobs:
        hpl.token_logprobs = plain_token_logprobs

    rewards.register("group_position", group_position, "structure", ())
    trainer = HPLTrainer(load_config(HPLConfig, None, args))
    example = trainer.example(trainer.train_set, 0)  # built once per prompt; not a step's work
    before = lora_state(trainer.policy)
    started = time.perf_counter()
    out = trainer.train_step()
    seconds = time.perf_counter() - started
    metrics = out["metrics"]
    return {
        "loss": float(metrics["loss"]),
        "step_seconds": seconds,
        "prompt_tokens": int(example.inputs["input_ids"].shape[1]),
        "completion_length": float(metrics["completion_length"]),
        "grad_norm": float(metrics["grad_norm"]),
        "lora_tensors": len(before),
        "lora_tensors_changed": changed(before, lora_state(trainer.policy)),
    }


def run_logprobs(mode: str, dtype: str, rows: int, tokens: int, vocab: int = 151936) -> dict[str, Any]:
    """Forward and backward of the sampled tokens' log-probabilities alone, on random (rows,
    tokens, vocab) logits: ``chunked`` (``token_logprobs``) or ``plain``
    (:func:`plain_token_logprobs`); the resident memory it added at its peak."""
    import torch

    from hieroaction.train.objective import token_logprobs

    torch.manual_seed(0)
    logits = torch.randn(rows, tokens, vocab, dtype=getattr(torch, dtype))
    ids = torch.randint(0, vocab, (rows, tokens))
    start = peak_rss_mb()
    started = time.perf_counter()
    leaf = logits.requires_grad_(True)
    fn = token_logprobs if mode == "chunked" else plain_token_logprobs
    fn(leaf, ids, 1.0, (5, 6)).sum().backward()
    return {"mode": mode, "dtype": dtype, "shape": [rows, tokens, vocab],
            "logits_mb": logits.numel() * logits.element_size() / 2**20,
            "added_peak_mb": peak_rss_mb() - start, "step_seconds": time.perf_counter() - started}


# ----- the benchmark: one process per phase -----------------------------------------------------


def _phase(argv: list[str]) -> None:
    """Run one phase in this process and print its result as the last line (JSON)."""
    phase, spec = argv[0], json.loads(argv[1])
    import torch

    torch.set_num_threads(spec["threads"])
    started = time.perf_counter()
    if phase == "build":
        from hieroaction.models.tiny import checkpoint_parameters

        path = build_model(Path(spec["model"]))
        records = build_data(Path(spec["synth"]))
        result = {"parameters": checkpoint_parameters(path), "records": str(records)}
    elif phase == "sft":
        result = run_sft(spec["settings"])
    elif phase == "logprobs":
        result = run_logprobs(spec["mode"], spec["dtype"], *spec["shape"])
    elif phase == "grpo":
        result = run_grpo(spec["args"], spec.get("plain_logprobs", False))
    else:
        raise SystemExit(f"unknown phase {phase!r}")
    result.update(phase=phase, seconds=time.perf_counter() - started, peak_rss_mb=peak_rss_mb())
    print(json.dumps(result))


def _run_phase(phase: str, spec: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"),
                                                         os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, __file__, "--phase", phase, json.dumps(spec)],
                          check=False, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"phase {phase} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--phase":
        _phase(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per phase (default 2)")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip (default 16, as the recipes)")
    parser.add_argument("--frame-size", type=int, default=112,
                        help="frame side in pixels, a multiple of 28 (default 112: 64 patches, 16 tokens a frame)")
    parser.add_argument("--completion", type=int, default=16, help="GRPO max_completion_length (default 16)")
    parser.add_argument("--template", choices=["short", "default"], default="short",
                        help="the two-line test prompt (default) or the real prompt template")
    parser.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                        help="auto (default): bf16 where the machine has native bf16 matrix products, else fp32")
    parser.add_argument("--group-size", type=int, default=2, help="GRPO's G (default 2)")
    parser.add_argument("--plain-logprobs", action="store_true",
                        help="GRPO with the former full-row float32 log-softmax (to compare peak memory)")
    parser.add_argument("--phases", nargs="*", default=["sft", "grpo"], choices=["sft", "grpo", "logprobs"],
                        help="sft, grpo (default both) and logprobs (chunked vs plain log-probs alone)")
    parser.add_argument("--logprob-shape", type=int, nargs=2, default=[4, 128], metavar=("ROWS", "TOKENS"),
                        help="the logprobs phase's completions and tokens (default 4 128)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here too")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the checkpoint and clips already in --work (skip the build)")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_real_size_") as tmp:
        work = options.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        template = None
        if options.template == "short":
            template = work / "short_prompt.yaml"
            template.write_text(SHORT_TEMPLATE, encoding="utf-8")
        model = work / "model"
        precision = default_precision() if options.precision == "auto" else options.precision
        base = {"threads": options.threads}
        if options.reuse and (work / "build.json").is_file():
            build = json.loads((work / "build.json").read_text())
        else:
            build = _run_phase("build", {**base, "model": str(model), "synth": str(work / "synth")})
            (work / "build.json").write_text(json.dumps(build))
        data = data_section(Path(build["records"]), work / "frames", template, options.frames, options.frame_size)
        results: dict[str, Any] = {
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "threads": options.threads,
                        "processor": platform.processor() or platform.machine()},
            "settings": {"precision": precision, "native_bf16": native_bf16(),
                         "frames": options.frames, "frame_size": options.frame_size,
                         "completion": options.completion, "template": options.template,
                         "group_size": options.group_size, "plain_logprobs": options.plain_logprobs},
            "build": build,
        }
        if "logprobs" in options.phases:
            results["logprobs"] = [
                _run_phase("logprobs", {**base, "mode": mode, "dtype": dtype, "shape": options.logprob_shape})
                for dtype in ("float32", "bfloat16") for mode in ("chunked", "plain")
            ]
        for phase in [p for p in options.phases if p != "logprobs"]:
            shutil.rmtree(work / phase, ignore_errors=True)  # a fresh run each time
            load_before = _load()
            if phase == "sft":
                spec = {**base, "settings": sft_settings(model, data, work / "sft", precision)}
            else:
                args = hpl_args(model, data, work / "grpo", options.completion, precision)
                args.append(f"group_size={options.group_size}")
                spec = {**base, "args": args, "plain_logprobs": options.plain_logprobs}
            results[phase] = {**_run_phase(phase, spec), "load_before": load_before, "load_after": _load()}
    import torch

    results["machine"]["torch"] = torch.__version__
    print(json.dumps(results, indent=2))
    if options.json:
        options.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nparameters {build['parameters']:,}; build: {build['seconds']:.0f} s, peak {build['peak_rss_mb']:.0f} MB")
    for r in results.get("logprobs", []):
        print(f"log-probs {r['mode']:7s} {r['dtype']:8s} {r['shape']}: added peak {r['added_peak_mb']:.0f} MB "
              f"(logits {r['logits_mb']:.0f} MB), {r['step_seconds']:.2f} s")
    for phase in [p for p in options.phases if p != "logprobs"]:
        r = results[phase]
        ok = math.isfinite(r["loss"]) and r["lora_tensors_changed"] > 0
        print(f"{phase}: step {r['step_seconds']:.1f} s, loss {r['loss']:.4f}, peak RSS {r['peak_rss_mb']:.0f} MB, "
              f"phase {r['seconds']:.0f} s, "
              f"LoRA tensors changed {r['lora_tensors_changed']}/{r['lora_tensors']}, "
              f"load {r['load_before']} -> {r['load_after']}{'' if ok else '  NOT OK'}")


if __name__ == "__main__":
    main()
