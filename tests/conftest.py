"""Fixtures shared by every test area: tiny checkpoints and rendered synthetic clips.

Both are built at most once per session, on first use, and shared across areas: the tiny
Qwen2.5-VL checkpoint the evaluation, serve, model and training tests load is one folder. The
area conftests name them as their tests expect (``tiny_model``, ``tiny_models``, ``tiny_dirs``,
``synth_dir``, ``clips``, ``synth_data``).

Tests must not write into these folders (copy what they need to change into ``tmp_path``): the
session checks at its end that no file in them was added, removed or changed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

FAMILIES = ("qwen2_5_vl", "qwen3_vl")


def fingerprint(folder: Path) -> dict[str, tuple[int, int]]:
    """``relative path -> (size, mtime in ns)`` of every file under ``folder``."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def check_unchanged(built: dict) -> None:
    """Fail if a shared folder was written to (``built``: key -> (folder, its fingerprint))."""
    changed = [str(folder) for folder, before in built.values() if fingerprint(folder) != before]
    assert not changed, f"a test wrote into a shared fixture folder: {changed}"


class TinyCheckpoints(Mapping):
    """``family -> folder`` of a randomly initialised ``tiny`` checkpoint (seed 0), each built
    the first time it is asked for."""

    def __init__(self, root_factory: Callable[[str], Path]) -> None:
        self._root_factory = root_factory
        self.built: dict[str, tuple[Path, dict]] = {}

    def __getitem__(self, family: str) -> Path:
        if family not in FAMILIES:
            raise KeyError(family)
        if family not in self.built:
            from hieroaction.models.tiny import build_tiny

            folder = build_tiny(family, self._root_factory(family) / "tiny", size="tiny", seed=0)
            self.built[family] = (folder, fingerprint(folder))
        return self.built[family][0]

    def __iter__(self) -> Iterator[str]:
        return iter(FAMILIES)

    def __len__(self) -> int:
        return len(FAMILIES)


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> Iterator[TinyCheckpoints]:
    """A ``tiny`` seed-0 checkpoint folder (model + processor) per family, built on first use."""
    checkpoints = TinyCheckpoints(lambda family: tmp_path_factory.mktemp(f"tiny_{family}"))
    yield checkpoints
    check_unchanged(checkpoints.built)


@pytest.fixture(scope="session")
def synth_set(tmp_path_factory) -> Iterator[Callable[[int, int], Path]]:
    """``synth_set(n, seed)``: the folder of ``n`` rendered synthetic clips of ``seed``
    (``records.jsonl``, ``videos/``), generated once per ``(n, seed)`` in one process."""
    made: dict[tuple[int, int], tuple[Path, dict]] = {}

    def get(n: int, seed: int = 0) -> Path:
        if (n, seed) not in made:
            from hieroaction.config import config_from_dict
            from hieroaction.synth import SynthConfig, generate

            out = tmp_path_factory.mktemp(f"synth_{n}_{seed}") / "data"
            generate(out, config_from_dict(SynthConfig, {"n": n, "seed": seed, "workers": 1}), progress=False)
            made[n, seed] = (out, fingerprint(out))
        return made[n, seed][0]

    yield get
    check_unchanged(made)


@contextlib.contextmanager
def benchmark_module(name: str) -> Iterator[object]:
    """``benchmarks/<name>.py`` imported as a module for a test (registered in sys.modules while
    in use: dataclasses resolve string annotations through it)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)
