"""Fixtures of the model tests: tiny checkpoints of both families, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

FAMILIES = ("qwen2_5_vl", "qwen3_vl")


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory) -> dict[str, Path]:
    """A ``tiny`` checkpoint folder per family."""
    from hieroaction.models.tiny import build_tiny

    root = tmp_path_factory.mktemp("tiny_models")
    return {name: build_tiny(name, root / name, size="tiny", seed=0) for name in FAMILIES}


@pytest.fixture(scope="session")
def loaded(tiny_dirs):
    """``(model, processor)`` per family, loaded back from the saved folders."""
    from hieroaction.models import load_model_and_processor

    return {name: load_model_and_processor(path) for name, path in tiny_dirs.items()}
