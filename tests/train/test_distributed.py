"""SFT and HPL on two CPU processes under DeepSpeed ZeRO-2, ZeRO-3 and FSDP2 (full sharding),
launched as on GPUs (``accelerate launch`` with the configs in tests/train/accelerate/, the
same settings as configs/accelerate/8gpu_*.yaml in fp32; DeepSpeed with DS_ACCELERATOR=cpu,
every engine over gloo).

Each run trains the tiny Qwen2.5-VL for 2 steps; every process then writes the whole trainable
parameters it ends with (tests/train/distributed_run.py). The ranks must hold identical
parameters, the saved model must load with exactly those, and they must match a one-process run
on the same data within TOLERANCE.

Run with ``python -m pytest -m distributed`` (minutes: every run starts two processes; the
first DeepSpeed run on a machine also compiles DeepSpeed's CPU communication op, about 3-4
minutes on 2 busy cores, cached in ~/.cache/torch_extensions).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

pytestmark = pytest.mark.distributed

HERE = Path(__file__).parent
RUN = HERE / "distributed_run.py"
ENGINES = {  # config, what the processes must report: kind, ZeRO stage, processes
    "zero2": ("zero2_cpu.yaml", "deepspeed 2 2"),
    "zero3": ("zero3_cpu.yaml", "deepspeed 3 2"),
    "fsdp": ("fsdp_cpu.yaml", "fsdp 0 2"),
}
# The largest difference allowed between a parameter after 2 steps on two processes and after
# the same 2 steps on one (learning rates: HPL 0.01, SFT 0.002; Adam moves a parameter by up to
# about the learning rate per step). Measured on this project's CPU machine: at most 8e-6 (HPL)
# and 6e-6 (SFT, ZeRO-3), on the attention key biases, whose gradient is nearly 0 (softmax
# ignores a shift of every score) so that Adam's normalisation enlarges the rounding differences
# of another reduction order; below 1e-6 elsewhere.
TOLERANCE = 1e-4
HPL_LEARNING_RATE = 0.01
SFT_LEARNING_RATE = 0.002
FRAMES = {"num_frames": 4, "min_pixels": 3136, "max_pixels": 3136}
TIMEOUT = 900  # seconds per run; the first DeepSpeed run compiles DeepSpeed's CPU op


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(HERE.parents[1]), "OMP_NUM_THREADS": "1", "DS_ACCELERATOR": "cpu"}


def _launch(engine: str | None, mode: str, recipe: Path, *extra: str) -> None:
    """Run distributed_run.py: two processes under ``engine``'s accelerate config, or one."""
    if engine is None:
        args = [sys.executable, str(RUN), mode, str(recipe), *extra]
    else:
        if engine.startswith("zero"):
            pytest.importorskip("deepspeed")
        args = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                str(HERE / "accelerate" / ENGINES[engine][0]), "--num_processes", "2",
                "--main_process_port", str(_free_port()), str(RUN), mode, str(recipe), *extra]
    run = subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-4000:])


def _write(path: Path, settings: dict) -> Path:
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_models, synth_set, short_template):
    root = tmp_path_factory.mktemp("distributed")
    return {"root": root, "model": tiny_models["qwen2_5_vl"], "records": synth_set(12, 0) / "records.jsonl",
            "template": short_template}


def _sft_recipe(inputs, out: Path, **extra) -> Path:
    settings = {
        "model": str(inputs["model"]), "output_dir": str(out),
        "data": {"records": str(inputs["records"]), "cache_dir": str(inputs["root"] / "cache"),
                 "max_train_samples": 4, "frames": FRAMES, "prompt": {"template": str(inputs["template"])}},
        "learning_rate": SFT_LEARNING_RATE, "lr_scheduler": "constant", "warmup": 0, "max_steps": 2,
        "save_steps": 1, "logging_steps": 1, "report_to": ["none"], "batch_size": 1, **extra,
    }
    return _write(out.with_suffix(".yaml"), settings)


def _hpl_recipe(inputs, out: Path, **extra) -> Path:
    settings = {
        "model": str(inputs["model"]), "output_dir": str(out),
        "data": {"records": str(inputs["records"]), "cache_dir": str(inputs["root"] / "cache"),
                 "eval_split": "val", "frames": FRAMES},
        "group_size": 3, "prompts_per_step": 1, "max_completion_length": 8, "learning_rate": HPL_LEARNING_RATE,
        "warmup_steps": 2, "rewards": {"weights": {"toy": 1.0}}, "save_steps": 1, "keep_checkpoints": 10,
        "max_steps": 2, "seed": 0, **extra,
    }
    return _write(out.with_suffix(".yaml"), settings)


def _flat_ids(records: Path, seed: int = 0) -> str:
    """The prompts of rank 1 at step 1 and of rank 0 at step 2 (the HPL trainer's order: a seeded
    permutation of the training split, consumed 2 prompts per step, rank r taking the r-th): their
    groups get a zero spread, so at each step one process keeps a group and the other none."""
    train = [json.loads(line)["id"] for line in records.read_text().splitlines()
             if json.loads(line)["split"] == "train"]
    order = np.random.default_rng(seed).permutation(len(train))
    return ",".join(train[i] for i in order[1:3])


LORA = {"lora": {"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0}}  # no dropout: no random masks
HPL_LORA = {**LORA, "beta": 0.05}  # with the KL to the reference, the model with its adapters off


@pytest.fixture(scope="module")
def one_process(inputs):
    """The one-process runs the distributed ones must match, each run once: SFT with 2
    micro-batches accumulated per step (the two processes' batch of 1 each), HPL with 2 prompts
    per step. ``get(mode, lora)`` -> the run's folder."""
    done: dict[tuple[str, bool], Path] = {}

    def get(mode: str, lora: bool = False) -> Path:
        if (mode, lora) not in done:
            out = inputs["root"] / f"{mode}-one{'-lora' if lora else ''}"
            extra = LORA if lora else {}
            if mode == "sft":
                _launch(None, "sft", _sft_recipe(inputs, out, gradient_accumulation_steps=2, **extra))
            else:
                extra = HPL_LORA if lora else {}
                _launch(None, "hpl", _hpl_recipe(inputs, out, prompts_per_step=2, **extra), _flat_ids(inputs["records"]))
            done[mode, lora] = out
        return done[mode, lora]

    return get


def _params(folder: Path, rank: int = 0) -> dict[str, torch.Tensor]:
    return torch.load(folder / f"params-rank{rank}.pt", weights_only=True)


def _close(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor], what: str) -> None:
    assert ours.keys() == theirs.keys()
    gap = {k: float((ours[k].detach() - theirs[k].detach()).abs().max()) for k in ours}
    worst = max(gap, key=gap.get)
    assert gap[worst] <= TOLERANCE, f"{what}: {worst} differs from the one-process run's by {gap[worst]:.3g}"


def _check(out: Path, engine: str, one: Path, model: Path, final: Path, lora: bool = False) -> None:
    from hieroaction.models.loading import load_model_and_processor

    for rank in (0, 1):
        assert (out / f"engine-rank{rank}.txt").read_text().strip() == ENGINES[engine][1]
    rank0, rank1 = _params(out, 0), _params(out, 1)
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0), "the ranks ended with different parameters"
    _close(rank0, _params(one), "trained parameters")
    saved = dict(load_model_and_processor(final)[0].named_parameters())
    if lora:
        # the merged model, made from the adapter gathered off the shards, is the one-process run's
        one_final = one / "final" if (one / "final").is_dir() else one
        _close(saved, dict(load_model_and_processor(one_final)[0].named_parameters()), "merged model")
        return
    # the comparison means something: training moved the parameters far beyond the tolerance
    start = dict(load_model_and_processor(model)[0].named_parameters())
    assert max(float((rank0[k] - start[k].detach()).abs().max()) for k in rank0) > 10 * TOLERANCE
    # the saved model (gathered from the shards) loads with exactly these parameters
    assert all(torch.equal(rank0[k], saved[k].detach()) for k in rank0)


@pytest.mark.parametrize("engine", list(ENGINES))
def test_sft_on_two_processes_matches_one(engine, inputs, one_process, tmp_path):
    out = tmp_path / "sft"
    _launch(engine, "sft", _sft_recipe(inputs, out))
    _check(out, engine, one_process("sft"), inputs["model"], out)
    # process 0 logs its own micro-batches: one per step
    assert [json.loads(line)["step"] for line in (out / "data_order.jsonl").read_text().splitlines()] == [1, 2]


@pytest.mark.parametrize("engine", list(ENGINES))
def test_hpl_on_two_processes_matches_one(engine, inputs, one_process, tmp_path):
    out = tmp_path / "hpl"
    _launch(engine, "hpl", _hpl_recipe(inputs, out), _flat_ids(inputs["records"]))
    _check(out, engine, one_process("hpl"), inputs["model"], out / "final")
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    # validated at the start (1 clip on 2 processes: one answers it, the other keeps in step)
    assert [m["step"] for m in metrics] == [0, 1, 2]
    # at each step one process skipped its zero-spread group and the other trained on its own
    assert [m["zero_spread_fraction"] for m in metrics[1:]] == [0.5, 0.5]
    assert (out / "best" / "config.json").is_file() and (out / "checkpoint-000002" / "model" / "trainable.pt").is_file()


@pytest.mark.parametrize("mode", ["sft", "hpl"])
def test_lora_under_zero3_merges_in_one_process_and_matches_one(mode, inputs, one_process, tmp_path):
    # the merge loads the base model again in the main process only, which ZeRO-3 would build
    # sharded (a collective the other process never joins); HPL adds the KL to the adapters-off
    # reference (beta), one more forward pass per chunk in every process
    out = tmp_path / mode
    if mode == "sft":
        _launch("zero3", "sft", _sft_recipe(inputs, out, **LORA))
        final = out
    else:
        _launch("zero3", "hpl", _hpl_recipe(inputs, out, **HPL_LORA), _flat_ids(inputs["records"]))
        final = out / "final"
    _check(out, "zero3", one_process(mode, lora=True), inputs["model"], final, lora=True)
    assert (final / "adapter" / "adapter_config.json").is_file()


def test_sft_validation_and_best_under_zero3(inputs, tmp_path):
    # greedy validation runs in step on both processes (ZeRO-3 gathers weights in every
    # forward), the answers of both are gathered, and best/ is saved from the shards
    from hieroaction.models.loading import load_model_and_processor

    out = tmp_path / "sft-validated"
    val = [line for line in inputs["records"].read_text().splitlines() if json.loads(line)["split"] == "val"]
    _launch("zero3", "sft", _sft_recipe(inputs, out, validation={"every": 1, "max_new_tokens": 8},
                                       data={"records": str(inputs["records"]), "cache_dir": str(inputs["root"] / "cache"),
                                             "max_train_samples": 4, "frames": FRAMES, "eval_split": "val",
                                             "prompt": {"template": str(inputs["template"])}}))
    rows = [json.loads(line) for line in (out / "validation.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(r["val/clips"] == len(val) for r in rows)
    best = json.loads((out / "best" / "best.json").read_text())
    assert best["step"] in (1, 2)
    load_model_and_processor(out / "best")
