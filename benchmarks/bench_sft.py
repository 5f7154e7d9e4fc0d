"""Benchmark: visual tokens and input memory per clip for each family's frame budgets, and the
CPU time of one SFT step of the tiny and small models.

Part 1, one clip of 16 uniformly sampled frames per family and budget, from two source sizes
(a 1280x720 broadcast frame and FineDiving's 455x256 frames): the frame size after the
budget's resize (what the frame cache stores), the patch grid, the visual tokens the clip
takes in the prompt, the size of ``pixel_values_videos`` and the peak resident memory (VmHWM)
of a fresh process that resizes the frames and builds the model inputs (a baseline process
that only imports the same modules is subtracted). Budgets: each family's default (the
transformers video processor's) and the Qwen2.5-VL budget of the recipes in configs/sft/.

Part 2, SFT steps on the CPU: ``train_sft`` on a generated synthetic benchmark with the frame
settings of ``configs/sft/synth_small.yaml`` (8 frames of 112x112, the real prompt template),
batch 1, full fine-tuning; the time of every optimizer step is taken by a callback, the first
``--warmup`` steps are dropped and the median of the rest is reported with the sequence length
and the process's peak memory. Each (family, size, threads) runs in its own process.

Run::

    python benchmarks/bench_sft.py --steps 12 --json sft_bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NUM_FRAMES = 16
SOURCES = {"1280x720": (720, 1280), "455x256 (FineDiving)": (256, 455)}
# name -> (family, FrameConfig overrides): the family default, and the recipes' budget.
BUDGETS = {
    "qwen2_5_vl default (128-768 tok/frame)": ("qwen2_5_vl", {}),
    "qwen2_5_vl recipes (64-256 tok/frame)": ("qwen2_5_vl", {"min_pixels": 64 * 28 * 28, "max_pixels": 256 * 28 * 28}),
    "qwen3_vl default (128-768 tok/clip)": ("qwen3_vl", {}),
}
# The synth_small recipe's frames.
SYNTH_FRAMES = {"num_frames": 8, "min_pixels": 3136, "max_pixels": 12544}


def _rss_mb(field: str = "VmHWM") -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------------------------------------
# Part 1: visual tokens and input memory
# ---------------------------------------------------------------------------------------------


def tokens_worker(budget: str, source: str, baseline: bool) -> dict:
    """Resize 16 random frames of ``source`` size to ``budget`` and build the video inputs."""
    import numpy as np

    from hieroaction.models import VideoSettings, get_family, process_video
    from hieroaction.video.resize import resize_frames, target_size
    from hieroaction.video.sample import FrameConfig

    family_name, overrides = BUDGETS[budget]
    family = get_family(family_name)
    frames_config = FrameConfig.for_family(family_name, num_frames=NUM_FRAMES, **overrides)
    settings = VideoSettings.for_family(family).for_frames(frames_config)
    if baseline:
        return {"peak_mb": _rss_mb()}
    height, width = SOURCES[source]
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (NUM_FRAMES, height, width, 3), dtype=np.uint8)
    start = time.perf_counter()
    h, w = target_size(height, width, NUM_FRAMES, frames_config)
    resized = resize_frames(frames, h, w)
    del frames
    features = process_video(resized, [i / 25 for i in range(NUM_FRAMES)], 25.0, settings)
    seconds = time.perf_counter() - start
    return {
        "frame": f"{w}x{h}",
        "grid_thw": list(features.video_grid_thw),
        "visual_tokens": features.num_tokens(settings.merge_size),
        "pixel_values_mb": features.pixel_values_videos.numel() * 4 / 2**20,
        "cache_entry_mb": resized.nbytes / 2**20,
        "prepare_s": seconds,
        "peak_mb": _rss_mb(),
    }


# ---------------------------------------------------------------------------------------------
# Part 2: SFT step time
# ---------------------------------------------------------------------------------------------


def steps_worker(family: str, size: str, threads: int, steps: int, workdir: str) -> dict:
    """Run ``steps`` SFT steps and return the time of each."""
    import torch
    from transformers import TrainerCallback

    from hieroaction.config import config_from_dict
    from hieroaction.models import build_tiny, count_parameters, load_model_and_processor
    from hieroaction.train.data import encode_supervised, load_examples
    from hieroaction.train.sft import SFTConfig, train_sft

    if threads:
        torch.set_num_threads(threads)
    root = Path(workdir)
    model_dir = root / f"{family}_{size}"
    if not model_dir.exists():
        build_tiny(family, model_dir, size=size, seed=0)
    frames = dict(SYNTH_FRAMES)
    if family == "qwen3_vl":
        frames.update(factor=32, clip_budget=True, min_pixels=8 * 128 * 128 // 4, max_pixels=8 * 128 * 128)
    settings = {
        "model": str(model_dir),
        "output_dir": str(root / f"run_{family}_{size}_{threads}_{time.time_ns()}"),
        "data": {"records": str(root / "synth" / "records.jsonl"), "cache_dir": str(root / "frames"),
                 "frames": frames},
        "max_steps": steps, "save_steps": 10**6, "logging_steps": 10**6, "learning_rate": 1e-4,
        "report_to": ["none"], "log_data_order": False,
    }
    config = config_from_dict(SFTConfig, settings)
    model, processor = load_model_and_processor(model_dir)
    processor.video = processor.video.for_frames(config.data.frames)
    example = load_examples(config.data, progress=False)["train"][0]
    enc = encode_supervised(processor, example)
    seq_len = int(enc["input_ids"].shape[1])
    visual = int((enc["mm_token_type_ids"] == 2).sum())
    params = count_parameters(model)["total"]
    del model

    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter() - self.start)

    train_sft(config, callbacks=[Clock()], progress=False)
    return {
        "params_m": params / 1e6, "seq_len": seq_len, "visual_tokens": visual,
        "threads": torch.get_num_threads(), "step_times": times, "peak_mb": _rss_mb(),
    }


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def _sub(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", *args], check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=12, help="SFT steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out of the median")
    parser.add_argument("--families", nargs="*", default=["qwen2_5_vl", "qwen3_vl"])
    parser.add_argument("--sizes", nargs="*", default=["tiny", "small"])
    parser.add_argument("--threads", nargs="*", type=int, default=[0, 1], help="torch threads (0: torch's default)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep models and data here (default: temp)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        kind, *rest = args.worker
        if kind == "tokens":
            result = tokens_worker(rest[0], rest[1], rest[2] == "1")
        else:
            family, size, threads, steps, workdir = rest
            result = steps_worker(family, size, int(threads), int(steps), workdir)
        print(json.dumps(result))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_sft_"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                 "load_1min": os.getloadavg()[0]}, "tokens": [], "steps": []}

    lines = ["| budget | source | frame | grid (t,h,w) | visual tokens | pixel_values MB | cache entry MB | peak MB (above imports) |",
             "|---|---|---|---|---|---|---|---|"]
    for budget in BUDGETS:
        base = _sub(["tokens", budget, next(iter(SOURCES)), "1"])["peak_mb"]
        for source in SOURCES:
            r = _sub(["tokens", budget, source, "0"])
            r.update(budget=budget, source=source, peak_above_imports_mb=r["peak_mb"] - base)
            results["tokens"].append(r)
            lines.append(
                f"| {budget} | {source} | {r['frame']} | {tuple(r['grid_thw'])} | {r['visual_tokens']} | "
                f"{r['pixel_values_mb']:.1f} | {r['cache_entry_mb']:.1f} | {r['peak_above_imports_mb']:.0f} |"
            )
    print("\n".join(lines), flush=True)

    if args.sizes:
        from hieroaction.config import config_from_dict
        from hieroaction.synth import SynthConfig, generate

        if not (workdir / "synth" / "records.jsonl").exists():
            generate(workdir / "synth", config_from_dict(SynthConfig, {"n": 40, "workers": 1}), progress=False)
    lines = ["", "| family | size | params (M) | sequence tokens (visual) | torch threads | median step s | peak MB |",
             "|---|---|---|---|---|---|---|"]
    for family in args.families:
        for size in args.sizes:
            for threads in args.threads:
                r = _sub(["steps", family, size, str(threads), str(args.steps), str(workdir)])
                timed = r["step_times"][args.warmup:] or r["step_times"]
                r.update(family=family, size=size, median_step_s=statistics.median(timed))
                results["steps"].append(r)
                lines.append(
                    f"| {family} | {size} | {r['params_m']:.1f} | {r['seq_len']} ({r['visual_tokens']}) | "
                    f"{r['threads']} | {r['median_step_s']:.3f} | {r['peak_mb']:.0f} |"
                )
                print(lines[-1], flush=True)
    print("\n".join(lines))
    results["machine"]["load_1min_end"] = os.getloadavg()[0]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
