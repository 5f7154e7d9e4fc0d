"""Fixtures of the training tests: one tiny model per family, one small synthetic dataset and one
frame cache, built once per session and shared by every test that trains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

# Small frames: 4 frames of 56x56 (2x2 merged tokens each) keep a training step well under a
# second on a CPU.
FRAME_OVERRIDES = {"num_frames": 4, "min_pixels": 56 * 56, "max_pixels": 56 * 56}
QWEN3_FRAME_OVERRIDES = {
    **FRAME_OVERRIDES, "factor": 32, "clip_budget": True, "min_pixels": 4 * 64 * 64, "max_pixels": 4 * 64 * 64,
}

# A short prompt (the real templates are tested in tests/prompts): fewer tokens, faster steps.
SHORT_TEMPLATE = 'system: "Judge the {domain_title} action."\nuser: "Frames at {timestamps} s. Assess it."\n'


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny models on one CPU thread: their matrices are so small that OpenMP's thread sync
    dominates, and on a busy 2-core machine a second thread makes every step several times
    slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_models(tiny_checkpoints):
    """A ``tiny`` checkpoint folder per family (tests/conftest.py)."""
    return tiny_checkpoints


@pytest.fixture(scope="session")
def synth_data(synth_set) -> Path:
    """The records file of a 20-clip synthetic benchmark, seed 0 (14 train, 2 val, 4 test)."""
    return synth_set(20, 0) / "records.jsonl"


@pytest.fixture(scope="session")
def frame_cache(tmp_path_factory) -> Path:
    """One frame cache folder for the whole session (clips are decoded once)."""
    return tmp_path_factory.mktemp("train_frames")


@pytest.fixture(scope="session")
def short_template(tmp_path_factory) -> Path:
    """A prompt template file with a two-line prompt."""
    path = tmp_path_factory.mktemp("train_prompt") / "short.yaml"
    path.write_text(SHORT_TEMPLATE, encoding="utf-8")
    return path


@pytest.fixture
def sft_settings(tiny_models, synth_data, frame_cache, short_template, tmp_path):
    """A function giving a fast SFT config mapping for a family (overridable)."""

    def make(family: str = "qwen2_5_vl", **extra: Any) -> dict[str, Any]:
        frames = QWEN3_FRAME_OVERRIDES if family == "qwen3_vl" else FRAME_OVERRIDES
        data = {
            "records": str(synth_data),
            "cache_dir": str(frame_cache),
            "max_train_samples": 2,
            "frames": dict(frames),
            "prompt": {"template": str(short_template)},
        }
        data.update(extra.pop("data", {}))
        settings = {
            "model": str(tiny_models[family]),
            "output_dir": str(tmp_path / "run"),
            "data": data,
            "learning_rate": 2e-3,
            "lr_scheduler": "constant",
            "warmup": 0,
            "max_steps": 4,
            "save_steps": 2,
            "logging_steps": 1,
            "report_to": ["none"],
        }
        settings.update(extra)
        return settings

    return make
