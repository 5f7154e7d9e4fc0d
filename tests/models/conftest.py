"""Fixtures of the model tests: tiny checkpoints of both families, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

FAMILIES = ("qwen2_5_vl", "qwen3_vl")


@pytest.fixture(scope="session")
def tiny_dirs(tiny_checkpoints) -> dict[str, Path]:
    """A ``tiny`` checkpoint folder per family (tests/conftest.py)."""
    return {name: tiny_checkpoints[name] for name in FAMILIES}


@pytest.fixture(scope="session")
def loaded(tiny_dirs):
    """``(model, processor)`` per family, loaded back from the saved folders."""
    from hieroaction.models import load_model_and_processor

    return {name: load_model_and_processor(path) for name, path in tiny_dirs.items()}
