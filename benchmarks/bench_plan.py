"""Benchmark: the memory planner's estimate against the measured peak of real CPU training runs.

For each family (Qwen2.5-VL, Qwen3-VL), tiny-model size (``tiny``, ``small``) and run (SFT with
full fine-tuning, SFT with LoRA and gradient checkpointing, HPL/GRPO with full fine-tuning),
a fresh process builds the model and a small synthetic benchmark (once, shared), fills the
frame cache and reads the examples, then measures its resident memory, resets the kernel's
peak counter (``/proc/self/clear_refs``; where that is refused, a 1 ms sampling thread takes
its place), runs ``train_sft`` / ``HPLTrainer.train`` for a few steps and reads the peak again.
A one-step run before the measured one loads the modules the trainer imports and the kernels'
one-time buffers, and a fixed malloc mmap threshold makes freed tensors leave the process, so
the measured run starts from the memory it would have in a long-lived training process.
"measured" is the peak minus the memory before the run: what training added (weights loaded by
the trainer, optimizer states, gradients, activations, logits, rollouts, and whatever else the
trainer allocates). "estimate" is :func:`hieroaction.models.memory.estimate_memory` for the
same architecture (read from the model's config.json), one CPU process (DDP on 1 device, no
CUDA overhead), fp32, and the run's real sequence lengths (the longest training example; for
HPL the prompt plus ``max_completion_length``).

Run::

    OMP_NUM_THREADS=1 python benchmarks/bench_plan.py --json plan_bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# The synth_small recipe's frames: 8 frames of 112x112, 64 visual tokens (Qwen3-VL: its grid).
FRAMES = {
    "qwen2_5_vl": {"num_frames": 8, "min_pixels": 3136, "max_pixels": 12544},
    "qwen3_vl": {"num_frames": 8, "factor": 32, "clip_budget": True, "min_pixels": 32768, "max_pixels": 131072},
}
RUNS = ("sft_full", "sft_lora_ckpt", "hpl_full")
SFT_BATCH = 2
# zero_spread keep: the random models' completions all score alike, and skipped groups would
# never reach the loss pass.
HPL = {"group_size": 4, "prompts_per_step": 1, "max_completion_length": 64, "zero_spread": "keep"}


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


class PeakMeter:
    """The peak resident memory from now on: the kernel's own counter after a reset, or a
    sampling thread where the reset is not allowed."""

    def __init__(self) -> None:
        self.start_kb = _status_kb("VmRSS")
        self.sampled_kb = self.start_kb
        self._stop = threading.Event()
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
                fh.write("5")
            self.method = "VmHWM after clear_refs"
            self._thread = None
        except OSError:
            self.method = "VmRSS sampled every 1 ms"
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.sampled_kb = max(self.sampled_kb, _status_kb("VmRSS"))
            time.sleep(0.001)

    def stop(self) -> int:
        """Bytes above the starting resident memory at the peak."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            peak = self.sampled_kb
        else:
            peak = _status_kb("VmHWM")
        return (peak - self.start_kb) * 1024


def worker(family: str, size: str, run: str, steps: int, workdir: str) -> dict:
    import torch

    from hieroaction.config import config_from_dict
    from hieroaction.models import build_tiny, load_model_and_processor
    from hieroaction.models.memory import (
        Rollout,
        Workload,
        estimate_memory,
        find_architecture,
    )
    from hieroaction.train.data import encode_supervised, load_examples

    root = Path(workdir)
    model_dir = root / f"{family}_{size}"
    if not model_dir.exists():
        build_tiny(family, model_dir, size=size, seed=0)
    # Only the examples the steps use: a GPU holds one batch of them, not the data set.
    data = {"records": str(root / "synth" / "records.jsonl"), "cache_dir": str(root / "frames"),
            "frames": FRAMES[family], "eval_split": None, "max_train_samples": SFT_BATCH * steps}
    lora = run == "sft_lora_ckpt"
    # The projector trains in every run, Qwen3-VL's deepstack mergers included (apply_lora names
    # each merger of the ModuleList for PEFT's modules_to_save, as the recipes do).
    merger = True
    common = {"model": str(model_dir), "output_dir": str(root / f"out_{family}_{size}_{run}_{time.time_ns()}"),
              "data": data, "lora": {"enabled": lora, "r": 8}, "trainable": {"vision": not lora, "merger": merger},
              "gradient_checkpointing": lora, "precision": "fp32", "learning_rate": 1e-4}
    # The examples the run will see, encoded as the trainer encodes them: their lengths.
    model, processor = load_model_and_processor(model_dir)
    del model
    if run.startswith("sft"):
        from hieroaction.train.sft import SFTConfig, train_sft

        config = config_from_dict(SFTConfig, {**common, "batch_size": SFT_BATCH, "max_steps": steps,
                                              "save_steps": 10**6, "logging_steps": 10**6, "report_to": ["none"],
                                              "log_data_order": False})
    else:
        from hieroaction.train.hpl import HPLConfig, HPLTrainer

        config = config_from_dict(HPLConfig, {**common, **HPL, "max_steps": steps, "save_steps": 10**6,
                                              "eval_at_start": False, "log_samples": 0})
    processor.video = processor.video.for_frames(config.data.frames)
    examples = load_examples(config.data, progress=False)["train"]  # fills the frame cache
    encoded = [encode_supervised(processor, ex) for ex in examples]
    longest = max(int(e["input_ids"].shape[1]) for e in encoded)
    answer = max(int((e["labels"] != -100).sum()) for e in encoded)
    visual = max(int((e["mm_token_type_ids"] == 2).sum()) for e in encoded)
    arch = find_architecture(str(model_dir))
    if run.startswith("sft"):
        workload = Workload(weight_bytes=4, compute_bytes=4, sequences=SFT_BATCH, tokens=longest,
                            visual_tokens=visual, logit_tokens=longest, loss="causal_lm",
                            lora_r=8 if lora else 0, train_vision=not lora, train_merger=merger,
                            gradient_checkpointing=lora)
    else:
        prompt = longest - answer
        completion = HPL["max_completion_length"]
        workload = Workload(weight_bytes=4, compute_bytes=4, sequences=HPL["group_size"], tokens=prompt + completion,
                            visual_tokens=visual, logit_tokens=completion + 1, loss="grpo", train_vision=True,
                            # the random models never end a completion early: no padding, no mask
                            gradient_checkpointing=False, padded=False,
                            rollout=Rollout(HPL["group_size"], prompt, completion))
    estimate = estimate_memory(arch, workload, "ddp", 1, overhead=0)
    del encoded, examples

    def train(cfg) -> None:
        if run.startswith("sft"):
            train_sft(cfg, progress=False)
        else:
            HPLTrainer(cfg).train()

    # A one-step run first, so the modules the trainer imports and the kernels' one-time
    # buffers are in place before the measurement (they are not training memory).
    import dataclasses
    import gc

    train(dataclasses.replace(config, output_dir=config.output_dir + "_warmup", max_steps=1))
    gc.collect()
    meter = PeakMeter()
    train(config)
    measured = meter.stop()
    return {
        "family": family, "size": size, "run": run, "params": arch.total_parameters,
        "tokens": workload.tokens, "visual_tokens": visual, "threads": torch.get_num_threads(),
        "measured_bytes": measured, "estimate_bytes": estimate.total, "terms": estimate.terms(),
        "method": meter.method,
    }


def _sub(args: list[str]) -> dict:
    # A fixed mmap threshold: large tensors are always mapped and given back when freed, so the
    # warm-up run's freed memory is not reused unseen by the measured run.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    out = subprocess.run([sys.executable, __file__, "--worker", *args], check=True, capture_output=True, text=True,
                         env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="training steps per run")
    parser.add_argument("--families", nargs="*", default=["qwen2_5_vl", "qwen3_vl"])
    parser.add_argument("--sizes", nargs="*", default=["tiny", "small"])
    parser.add_argument("--runs", nargs="*", default=list(RUNS), choices=RUNS)
    parser.add_argument("--workdir", type=Path, default=None, help="keep models and data here (default: temp)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        family, size, run, steps, workdir = args.worker
        print(json.dumps(worker(family, size, run, int(steps), workdir)))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_plan_"))
    workdir.mkdir(parents=True, exist_ok=True)
    if not (workdir / "synth" / "records.jsonl").exists():
        from hieroaction.config import config_from_dict
        from hieroaction.synth import SynthConfig, generate

        generate(workdir / "synth", config_from_dict(SynthConfig, {"n": 40, "workers": 1}), progress=False)
    results = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                           "load_1min": os.getloadavg()[0]}, "runs": []}
    lines = ["| family | size | run | params (M) | tokens (visual) | measured MB | estimate MB | error |",
             "|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for family in args.families:
        for size in args.sizes:
            for run in args.runs:
                r = _sub([family, size, run, str(args.steps), str(workdir)])
                r["error"] = (r["estimate_bytes"] - r["measured_bytes"]) / r["measured_bytes"]
                results["runs"].append(r)
                lines.append(
                    f"| {family} | {size} | {run} | {r['params'] / 1e6:.1f} | {r['tokens']} ({r['visual_tokens']}) | "
                    f"{r['measured_bytes'] / 2**20:.0f} | {r['estimate_bytes'] / 2**20:.0f} | {r['error']:+.0%} |"
                )
                print(lines[-1], flush=True)
    results["machine"]["load_1min_end"] = os.getloadavg()[0]
    results["method"] = sorted({r["method"] for r in results["runs"]})
    print("\npeak: " + ", ".join(results["method"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
