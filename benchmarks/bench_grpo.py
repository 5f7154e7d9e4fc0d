"""Benchmark: one GRPO step of HieroAction's HPL trainer against stock TRL's GRPOTrainer, on CPU.

Both trainers get the same tiny or small Qwen2.5-VL checkpoint (``hieroaction model tiny``), the
same synthetic clips (16 uniformly sampled frames of 112x112 from the frame cache), the same
group size G, completion length, temperature, learning rate, optimizer (AdamW, no weight
decay, gradient clipping at 1), loss (``grpo``, clip 0.2, no KL) and the same reward: the
recipe's :class:`~hieroaction.rewards.HierarchicalReward` (all seven rewards, gated
composition), which TRL calls as a reward function with its usual signature.

* HieroAction (``hieroaction.train.hpl.HPLTrainer``) feeds the clip as one video: the 16 frames
  become 8 temporal patches (``pixel_values_videos``, ``video_grid_thw``,
  ``second_per_grid_ts``), given to generation and to the loss pass alike.
* TRL 1.16 gets the same 16 frames as a list of 16 images, its only path that keeps the frames
  in the loss forward pass (it drops ``pixel_values_videos`` there). Each image is padded to
  the temporal patch size 2 by repeating it, so the prompt holds twice the visual tokens.
  TRL needs a transformers processor; ``Qwen2_5_VLProcessor`` insists on a video processor,
  which needs torchvision, so :func:`images_only_processor` builds a subclass that declares
  only an image processor (transformers' torchvision-free ``Qwen2VLImageProcessorPil``, read
  from the checkpoint's ``preprocessor_config.json``) and the tokenizer.

Per run (each in its own process): the median wall-clock and CPU time of a training step after
``--warmup`` steps (CPU time, ``time.process_time``, is the steadier number on a shared machine),
the time of named phases inside each step (sampling, the reward call, the loss forward pass;
HieroAction: a subclass times ``HPLTrainer.rollout``, ``rewards_for`` and ``loss_for_group``,
its override points; TRL: ``_generate``, ``_compute_loss`` and the reward function itself),
the peak resident memory (VmHWM, reset after the warm-up through ``/proc/self/clear_refs`` so it
covers the timed steps), the visual tokens per prompt and the mean completion length.

Both trainers keep groups whose rewards have zero spread (``zero_spread: keep``; TRL always
does), so every step does a full forward and backward pass although a random model earns the
same reward everywhere. Because a random model writes no SAR, its rewards stop at the parser;
:func:`sar_reward_seconds` therefore also times the reward call on well-formed SAR answers.
HieroAction builds each clip's model inputs once and keeps them; the script builds them before
the timed steps (as in every epoch after the first) and reports that one-off cost per clip.
TRL processes the 16 images of every prompt copy twice per step, inside its steps; decoding
the dataset's stored images happens in its data loader, outside the timed step.

Run (runs one after the other, the trainers alternating; the load average is recorded before
and after each run)::

    python benchmarks/bench_grpo.py --sizes tiny small --group-sizes 4 8 --steps 5 \\
        --repeats 2 --json grpo_bench.json --markdown grpo_bench.md
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FAMILY = "qwen2_5_vl"
IMPLEMENTATIONS = ("hieroaction", "trl")


@dataclass
class BenchConfig:
    """Every setting shared by both trainers (command-line flags of the same names)."""

    sizes: list[str] = field(default_factory=lambda: ["tiny", "small"])
    group_sizes: list[int] = field(default_factory=lambda: [4])
    num_frames: int = 16
    # The tiny models' pixel budget: synthetic 112x112 frames stay 112x112 (16 tokens a frame).
    min_pixels: int = 56 * 56
    max_pixels: int = 112 * 112
    max_completion_length: int = 64
    temperature: float = 1.0
    learning_rate: float = 1e-5
    warmup: int = 1  # steps left out of the median (the first pays one-off allocations)
    steps: int = 5  # timed steps per run
    repeats: int = 1  # runs per (size, G, trainer), interleaved between the trainers
    threads: int = 1  # torch threads (0: torch's default); one is fastest for these widths
    clips: int = 12  # synthetic clips generated (the train split gets about 3/4 of them)
    seed: int = 0
    # a prompt template file (data.prompt.template) for both trainers; "": the synth domain's
    prompt_template: str = ""

    def frames(self) -> dict[str, Any]:
        """The ``data.frames`` section of both runs."""
        return {"num_frames": self.num_frames, "min_pixels": self.min_pixels, "max_pixels": self.max_pixels}


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------


def _status_mb(name: str) -> float:
    """A memory line of /proc/self/status in MiB (VmHWM: peak resident, VmRSS: resident now)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(name + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> bool:
    """Set the process's peak resident memory back to its current value (Linux >= 4.0), so
    VmHWM afterwards covers only what follows; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


@dataclass
class StepClock:
    """Wall-clock and CPU times of every step and of named phases inside it (``reward``,
    ``generate``, ``loss_forward``), and the memory of the timed steps.

    CPU time (``time.process_time``, every thread of the process) is reported next to wall
    time because on a shared machine a process waits for a core: its wall time then measures
    the neighbours as much as the code.
    """

    warmup: int
    steps: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    phases: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    lengths: list[float] = field(default_factory=list)
    rss_before_mb: float = float("nan")
    peak_reset: bool = False

    def begin(self) -> None:
        """Call before each step."""
        if len(self.steps) == self.warmup:
            self.peak_reset = reset_peak_rss()
            self.rss_before_mb = _status_mb("VmRSS")
        self._in_step: dict[str, list[float]] = {}
        self._cpu_start = time.process_time()
        self._start = time.perf_counter()

    def end(self, completion_length: float) -> None:
        """Call after each step."""
        self.steps.append(time.perf_counter() - self._start)
        self.cpu.append(time.process_time() - self._cpu_start)
        self.lengths.append(completion_length)
        for name in set(self.phases) | set(self._in_step):
            wall, cpu = self._in_step.get(name, (0.0, 0.0))
            self.phases.setdefault(name, [(0.0, 0.0)] * (len(self.steps) - 1)).append((wall, cpu))

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Add the time of the ``with`` body to phase ``name`` of the current step."""
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            total = self._in_step.setdefault(name, [0.0, 0.0])
            total[0] += time.perf_counter() - wall
            total[1] += time.process_time() - cpu

    def summary(self) -> dict[str, Any]:
        """Medians over the timed steps (every step's numbers are kept too)."""
        timed = slice(self.warmup, None)
        steps, cpu = self.steps[timed], self.cpu[timed]
        out: dict[str, Any] = {
            "step_times": self.steps,
            "cpu_step_times": self.cpu,
            "phase_times": {k: v for k, v in self.phases.items()},
            "completion_lengths": self.lengths,
            "median_step_s": statistics.median(steps),
            "median_cpu_step_s": statistics.median(cpu),
            "mean_completion_length": statistics.fmean(self.lengths[timed]),
            "rss_before_mb": self.rss_before_mb,
            "peak_rss_mb": _status_mb("VmHWM"),
            "peak_covers": "timed steps" if self.peak_reset else "whole process",
        }
        for name, values in self.phases.items():
            walls, cpus = [w for w, _ in values[timed]], [c for _, c in values[timed]]
            out[f"median_{name}_cpu_s"] = statistics.median(cpus)
            out[f"{name}_share"] = sum(walls) / sum(steps)
            out[f"{name}_cpu_share"] = sum(cpus) / sum(cpu)
        return out


def _settings(bench: BenchConfig, model_dir: Path, workdir: Path) -> dict[str, Any]:
    """The HPL config both workers read their data settings from."""
    return {
        "model": str(model_dir),
        "output_dir": str(workdir / "runs" / f"hpl_{os.getpid()}"),
        "data": {
            "records": str(workdir / "synth" / "records.jsonl"),
            "cache_dir": str(workdir / "frames"),
            "frames": bench.frames(),
            **({"prompt": {"template": bench.prompt_template}} if bench.prompt_template else {}),
        },
        "prompts_per_step": 1,
        "temperature": bench.temperature,
        "max_completion_length": bench.max_completion_length,
        "zero_spread": "keep",
        "loss_type": "grpo",
        "clip_low": 0.2,
        "clip_high": 0.2,
        "beta": 0.0,
        "learning_rate": bench.learning_rate,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "bf16": "false",
        "seed": bench.seed,
    }


# ---------------------------------------------------------------------------------------------
# HieroAction's trainer
# ---------------------------------------------------------------------------------------------


def hieroaction_worker(bench: BenchConfig, size: str, group_size: int, workdir: Path) -> dict[str, Any]:
    """Time ``warmup + steps`` steps of :class:`HPLTrainer`; its override points time the
    phases (sampling, rewards, loss forward pass; the rest is backward and optimizer)."""
    import torch

    from hieroaction.config import config_from_dict
    from hieroaction.train.hpl import HPLConfig, HPLTrainer

    clock = StepClock(bench.warmup)

    class TimedHPLTrainer(HPLTrainer):
        """The trainer with its override points timed (nothing else changes)."""

        def rollout(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            with clock.phase("generate"):
                return super().rollout(*args, **kwargs)

        def rewards_for(self, rollouts):  # type: ignore[no-untyped-def]
            with clock.phase("reward"):
                return super().rewards_for(rollouts)

        def loss_for_group(self, rollout, advantages):  # type: ignore[no-untyped-def]
            with clock.phase("loss_forward"):
                return super().loss_for_group(rollout, advantages)

    settings = _settings(bench, workdir / f"{FAMILY}_{size}", workdir)
    settings.update(group_size=group_size, max_steps=bench.warmup + bench.steps)
    trainer = TimedHPLTrainer(config_from_dict(HPLConfig, settings))
    # every clip's inputs are built once and kept: build them all before timing
    start = time.perf_counter()
    examples = [trainer.example(trainer.train_set, i) for i in range(len(trainer.train_set))]
    prepare_s = (time.perf_counter() - start) / len(examples)
    video_id = trainer.processor.video_token_id
    inputs = examples[0].inputs
    for _ in range(bench.warmup + bench.steps):
        clock.begin()
        out = trainer.train_step()
        clock.end(out["metrics"]["completion_length"])
    summary = clock.summary()
    sar_reward_s = sar_reward_seconds(trainer, group_size, repeats=max(bench.steps, 3))
    return {
        **summary,
        "sar_reward_cpu_s": sar_reward_s,
        "sar_reward_cpu_share": sar_reward_s / summary["median_cpu_step_s"],
        "visual_tokens": int((inputs["input_ids"] == video_id).sum()),
        "prompt_tokens": int(inputs["input_ids"].shape[1]),
        "pixel_rows": int(inputs["pixel_values_videos"].shape[0]),
        "prepare_per_clip_s": prepare_s,
        "threads": torch.get_num_threads(),
    }


def sar_reward_seconds(trainer: Any, group_size: int, repeats: int) -> float:
    """Median CPU seconds of the trainer's reward call on a group of well-formed SAR answers.

    A random model writes no SAR, so the rewards of its answers stop at the parser; this is
    the cost with real answers: the SFT targets of ``group_size`` training clips, scored
    against the first clip's ground truth (one right answer, the rest wrong in places). The
    parse cache is emptied before each call, as every training step brings new texts.
    """
    from hieroaction.rewards.base import _parse
    from hieroaction.sar.targets import build_target

    target_config = trainer.config.data.target_config()
    records = trainer.train_set.records
    texts = [build_target(records[i % len(records)], target_config) for i in range(group_size)]
    columns = trainer.example(trainer.train_set, 0).columns
    times = []
    for _ in range(repeats):
        _parse.cache_clear()
        start = time.process_time()
        trainer.reward(texts, group_size=group_size, step=trainer.step,
                       **{k: [v] * group_size for k, v in columns.items()})
        times.append(time.process_time() - start)
    return statistics.median(times)


# ---------------------------------------------------------------------------------------------
# Stock TRL
# ---------------------------------------------------------------------------------------------


def images_only_processor(model_dir: Path, chat_template: str) -> Any:
    """A ``Qwen2_5_VLProcessor`` without a video processor, for TRL on a machine without
    torchvision.

    transformers builds a processor's parts from the names in its ``__init__`` signature and
    checks each part's class; ``Qwen2VLVideoProcessor`` cannot be built without torchvision and
    ``None`` fails the check. A subclass whose ``__init__`` names only the image processor and
    the tokenizer is a complete processor for image prompts (the parent's token expansion,
    ``mm_token_type_ids`` and chat-template handling are unchanged).
    """
    from transformers import AutoTokenizer, Qwen2_5_VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    class ImagesOnlyQwen2_5_VLProcessor(Qwen2_5_VLProcessor):
        def __init__(
            self, image_processor: Any = None, tokenizer: Any = None, chat_template: str | None = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    return ImagesOnlyQwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessorPil.from_pretrained(model_dir),
        tokenizer=AutoTokenizer.from_pretrained(model_dir),
        chat_template=chat_template,
    )


def frames_as_images(messages: list[dict[str, Any]], num_images: int) -> list[dict[str, Any]]:
    """The prompt with its video item replaced by ``num_images`` image placeholders, in place
    (TRL fills the placeholders from the example's ``images`` column)."""
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            items: list[dict[str, Any]] = []
            for item in content:
                items.extend([{"type": "image"}] * num_images if item.get("type") == "video" else [item])
            message = {**message, "content": items}
        out.append(message)
    return out


def trl_worker(bench: BenchConfig, size: str, group_size: int, workdir: Path) -> dict[str, Any]:
    """Time ``warmup + steps`` steps of TRL's GRPOTrainer fed the clip as a list of images."""
    import torch
    from datasets import Dataset
    from PIL import Image
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer
    from trl.data_utils import prepare_multimodal_messages

    from hieroaction.config import config_from_dict
    from hieroaction.models import load_model_and_processor
    from hieroaction.rewards import COLUMNS, reward_columns
    from hieroaction.train.hpl import HPLConfig, check_inputs

    clock = StepClock(bench.warmup)
    settings = _settings(bench, workdir / f"{FAMILY}_{size}", workdir)
    settings.update(group_size=group_size)
    config = config_from_dict(HPLConfig, settings)
    # the same records, frame cache, prompts and reward as HieroAction's trainer
    data, reward = check_inputs(config)
    train = data[config.data.train_split]
    model, processor = load_model_and_processor(config.model)
    rows = []
    for i in range(len(train)):
        item = train[i]
        images = [Image.fromarray(frame) for frame in item.clip.frames]
        rows.append({
            "prompt": frames_as_images(item.messages, len(images)),
            "images": images,
            # as HPLTrainer.example builds them (the synth domain has its own score range, so
            # the trainer's fallback to the split's range does not apply)
            **reward_columns(item.record, default_fps=item.clip.fps),
        })

    def hierarchical_reward(completions: list[Any], **kwargs: Any) -> list[float]:
        """HieroAction's composed reward with TRL's reward-function signature."""
        with clock.phase("reward"):
            columns = {k: kwargs[k] for k in COLUMNS if k in kwargs}
            state = kwargs.get("trainer_state")
            step = state.global_step if state is not None else 0
            return [r.total for r in reward(completions, group_size=group_size, step=step, **columns)]

    trl_processor = images_only_processor(Path(config.model), processor.chat_template)
    # the prompt exactly as TRL renders it (its own helper fills the image placeholders)
    prompt_inputs = trl_processor.apply_chat_template(
        [prepare_multimodal_messages(rows[0]["prompt"], images=rows[0]["images"])],
        add_generation_prompt=True, tokenize=True, return_dict=True,
    )
    prompt_ids = torch.as_tensor(prompt_inputs["input_ids"][0])
    image_id = trl_processor.image_token_id

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            clock.begin()

        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            lengths = trainer._metrics["train"].get("completions/mean_length") or [float("nan")]
            clock.end(float(lengths[-1]))

    args = GRPOConfig(
        output_dir=str(workdir / "runs" / f"trl_{os.getpid()}"),
        per_device_train_batch_size=group_size,  # one prompt per step, as HieroAction's runs
        num_generations=group_size,
        gradient_accumulation_steps=1,
        max_completion_length=bench.max_completion_length,
        temperature=bench.temperature,
        top_k=0,
        top_p=1.0,
        loss_type="grpo",
        epsilon=0.2,
        beta=0.0,
        learning_rate=bench.learning_rate,
        lr_scheduler_type="constant",
        optim="adamw_torch",
        weight_decay=0.0,
        max_grad_norm=1.0,
        gradient_checkpointing=False,  # TRL's default is on; HieroAction's runs have it off
        max_steps=bench.warmup + bench.steps,
        logging_steps=10**6,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        bf16=False,
        use_cpu=True,
        seed=bench.seed,
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[hierarchical_reward],
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=trl_processor,
        callbacks=[Clock()],
    )
    # phases: sampling (with TRL's tokenisation and image processing of every prompt copy) and
    # the loss forward pass; the rest is the second image processing, backward and optimizer
    trainer._generate = _timed(clock, "generate", trainer._generate)
    trainer._compute_loss = _timed(clock, "loss_forward", trainer._compute_loss)
    trainer.train()
    return {
        **clock.summary(),
        "visual_tokens": int((prompt_ids == image_id).sum()),
        "prompt_tokens": int(prompt_ids.shape[0]),
        "pixel_rows": int(prompt_inputs["pixel_values"].shape[0]),
        "prepare_per_clip_s": float("nan"),
        "threads": torch.get_num_threads(),
    }


def _timed(clock: StepClock, name: str, method: Any) -> Any:
    """``method`` with its calls counted in phase ``name`` of ``clock``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with clock.phase(name):
            return method(*args, **kwargs)

    return wrapper


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def prepare(bench: BenchConfig, workdir: Path) -> None:
    """Build the models, the synthetic clips and the frame cache (once per workdir)."""
    from hieroaction.config import config_from_dict
    from hieroaction.models.tiny import build_tiny
    from hieroaction.synth import SynthConfig, generate
    from hieroaction.train.data import DataConfig, load_examples

    for size in bench.sizes:
        model_dir = workdir / f"{FAMILY}_{size}"
        if not model_dir.exists():
            build_tiny(FAMILY, model_dir, size=size, seed=bench.seed)
    records = workdir / "synth" / "records.jsonl"
    if not records.exists():
        generate(workdir / "synth", config_from_dict(SynthConfig, {"n": bench.clips, "workers": 1}),
                 seed=bench.seed)
    data = config_from_dict(DataConfig, {"records": str(records), "cache_dir": str(workdir / "frames"),
                                         "frames": bench.frames()})
    load_examples(data, targets=False, progress=False)


def run_worker(bench: BenchConfig, impl: str, size: str, group_size: int, workdir: Path) -> dict[str, Any]:
    """One run in a fresh process (its own peak memory, no state shared between runs)."""
    spec = json.dumps({"bench": asdict(bench), "impl": impl, "size": size, "group_size": group_size,
                       "workdir": str(workdir)})
    load = os.getloadavg()
    out = subprocess.run([sys.executable, __file__, "--worker", spec], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{impl} {size} G={group_size} failed:\n{out.stderr[-4000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.update(impl=impl, size=size, group_size=group_size,
                  load_before=load[0], load_after=os.getloadavg()[0])
    return result


def _worker_main(spec: str) -> None:
    task = json.loads(spec)
    bench = BenchConfig(**task["bench"])
    import torch

    if bench.threads:
        torch.set_num_threads(bench.threads)
    torch.manual_seed(bench.seed)
    worker = hieroaction_worker if task["impl"] == "hieroaction" else trl_worker
    result = worker(bench, task["size"], task["group_size"], Path(task["workdir"]))
    print(json.dumps(result))


def table(results: list[dict[str, Any]], frames: int) -> str:
    """The markdown table of the docs: one row per (size, G). Wall-clock columns take each
    trainer's least disturbed run (lowest median), CPU-time columns its lowest median CPU time;
    memory, reward shares and lengths come from the run with the lowest wall-clock median
    ("SAR reward share": :func:`sar_reward_seconds` over the median CPU step time)."""
    lines = [
        "| model | G | frames | visual tokens / prompt (ours / TRL) | prompt tokens (ours / TRL) "
        "| our step s (wall / CPU) | TRL step s (wall / CPU) | ratio (wall / CPU) "
        "| peak RSS MB (ours / TRL) | reward share of step (ours / TRL) | SAR reward share (ours) "
        "| completion tokens (ours / TRL) "
        "| runs | load 1 min |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(r["size"], r["group_size"]) for r in results}, key=lambda k: (k[0] != "tiny", k[1]))
    for size, g in keys:
        runs = {impl: [r for r in results if (r["size"], r["group_size"], r["impl"]) == (size, g, impl)]
                for impl in IMPLEMENTATIONS}
        if not all(runs.values()):
            continue
        best = {impl: min(rs, key=lambda r: r["median_step_s"]) for impl, rs in runs.items()}
        cpu = {impl: min(r["median_cpu_step_s"] for r in rs) for impl, rs in runs.items()}
        ours, trl = best["hieroaction"], best["trl"]
        loads = [r[k] for rs in runs.values() for r in rs for k in ("load_before", "load_after")]
        lines.append(
            f"| {FAMILY} {size} | {g} | {frames} | {ours['visual_tokens']} / {trl['visual_tokens']} "
            f"| {ours['prompt_tokens']} / {trl['prompt_tokens']} "
            f"| {ours['median_step_s']:.2f} / {cpu['hieroaction']:.2f} "
            f"| {trl['median_step_s']:.2f} / {cpu['trl']:.2f} "
            f"| {ours['median_step_s'] / trl['median_step_s']:.2f} / {cpu['hieroaction'] / cpu['trl']:.2f} "
            f"| {ours['peak_rss_mb']:.0f} / {trl['peak_rss_mb']:.0f} "
            f"| {100 * ours['reward_share']:.2f}% / {100 * trl['reward_share']:.2f}% "
            f"| {100 * ours['sar_reward_cpu_share']:.2f}% "
            f"| {ours['mean_completion_length']:.0f} / {trl['mean_completion_length']:.0f} "
            f"| {len(runs['hieroaction'])} + {len(runs['trl'])} | {min(loads):.1f}-{max(loads):.1f} |"
        )
    return "\n".join(lines)


def phase_table(results: list[dict[str, Any]]) -> str:
    """Where each trainer's CPU time goes: median CPU seconds per phase of a step, from the run
    with the lowest median CPU step time (``rest``: backward, optimizer and bookkeeping; for
    TRL also its second processing of the images for the loss pass)."""
    lines = [
        "| model | G | trainer | step CPU s | generate | reward | loss forward | rest |",
        "|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(r["size"], r["group_size"]) for r in results}, key=lambda k: (k[0] != "tiny", k[1]))
    for size, g in keys:
        for impl in IMPLEMENTATIONS:
            runs = [r for r in results if (r["size"], r["group_size"], r["impl"]) == (size, g, impl)]
            if not runs:
                continue
            r = min(runs, key=lambda r: r["median_cpu_step_s"])
            parts = [r.get(f"median_{p}_cpu_s", 0.0) for p in ("generate", "reward", "loss_forward")]
            rest = r["median_cpu_step_s"] - sum(parts)
            lines.append(
                f"| {FAMILY} {size} | {g} | {impl} | {r['median_cpu_step_s']:.2f} | "
                + " | ".join(f"{v:.3f}" for v in parts) + f" | {rest:.2f} |"
            )
    return "\n".join(lines)


def ratio_table(files: list[Path]) -> str:
    """Our step time over TRL's, per (size, G) and per results file (each file's runs share the
    machine's state of the moment): each trainer's lowest median within the file, wall-clock
    and CPU, then the median of the files' CPU ratios."""
    per_file = [json.loads(Path(f).read_text())["runs"] for f in files]
    keys = sorted({(r["size"], r["group_size"]) for runs in per_file for r in runs},
                  key=lambda k: (k[0] != "tiny", k[1]))
    lines = ["| model | G | " + " | ".join(f"{Path(f).stem} (wall / CPU)" for f in files)
             + " | median CPU ratio |",
             "|---|---|" + "---|" * len(files) + "---|"]
    for size, g in keys:
        cells, cpu_ratios = [], []
        for runs in per_file:
            best = {}
            for impl in IMPLEMENTATIONS:
                mine = [r for r in runs if (r["size"], r["group_size"], r["impl"]) == (size, g, impl)]
                if mine:
                    best[impl] = (min(r["median_step_s"] for r in mine), min(r["median_cpu_step_s"] for r in mine))
            if len(best) < 2:
                cells.append("")
                continue
            wall = best["hieroaction"][0] / best["trl"][0]
            cpu = best["hieroaction"][1] / best["trl"][1]
            cpu_ratios.append(cpu)
            cells.append(f"{wall:.2f} / {cpu:.2f}")
        median = f"{statistics.median(cpu_ratios):.2f}" if cpu_ratios else ""
        lines.append(f"| {FAMILY} {size} | {g} | " + " | ".join(cells) + f" | {median} |")
    return "\n".join(lines)


def main() -> None:
    """Command line: see the module docstring."""
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=defaults.sizes)
    parser.add_argument("--group-sizes", nargs="+", type=int, default=defaults.group_sizes)
    parser.add_argument("--impls", nargs="+", choices=IMPLEMENTATIONS, default=list(IMPLEMENTATIONS))
    for name in ("num_frames", "min_pixels", "max_pixels", "max_completion_length", "warmup", "steps",
                 "repeats", "threads", "clips", "seed"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    for name in ("temperature", "learning_rate"):
        parser.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(defaults, name))
    parser.add_argument("--prompt-template", default=defaults.prompt_template,
                        help="prompt template file for both trainers (default: the synth domain's)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep models and data here (default: temp)")
    parser.add_argument("--json", type=Path, default=None, help="also write every run as JSON")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table")
    parser.add_argument("--tables-from", nargs="+", type=Path, default=None,
                        help="run nothing: print the tables of these --json files (and the ratio of each)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker_main(args.worker)
        return
    if args.tables_from:
        runs = [r for f in args.tables_from for r in json.loads(f.read_text())["runs"]]
        frames = json.loads(args.tables_from[0].read_text())["bench"]["num_frames"]
        print(table(runs, frames), phase_table(runs), ratio_table(args.tables_from), sep="\n\n")
        return

    bench = BenchConfig(**{k: getattr(args, k) for k in asdict(defaults)})
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_grpo_"))
    workdir.mkdir(parents=True, exist_ok=True)
    prepare(bench, workdir)
    results: list[dict[str, Any]] = []
    for size in bench.sizes:
        for g in bench.group_sizes:
            for repeat in range(bench.repeats):
                # alternate which trainer goes first, so a load spike does not favour one
                order = args.impls if repeat % 2 == 0 else list(reversed(args.impls))
                for impl in order:
                    r = run_worker(bench, impl, size, g, workdir)
                    results.append(r)
                    print(
                        f"{impl:11s} {size:5s} G={g} step {r['median_step_s']:.3f} s "
                        f"(CPU {r['median_cpu_step_s']:.3f} s)  reward "
                        f"{100 * r['reward_share']:.2f}%  peak {r['peak_rss_mb']:.0f} MB  visual "
                        f"{r['visual_tokens']}  length {r['mean_completion_length']:.0f}  "
                        f"load {r['load_before']:.1f}->{r['load_after']:.1f}",
                        flush=True,
                    )
    text = table(results, bench.num_frames) + "\n\n" + phase_table(results)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")
    if args.json:
        machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
        args.json.write_text(json.dumps({"machine": machine, "bench": asdict(bench), "runs": results}, indent=2))


if __name__ == "__main__":
    main()
