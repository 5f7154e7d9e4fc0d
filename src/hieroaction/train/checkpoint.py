"""Atomic training checkpoints that survive ``kill -9``.

A checkpoint is written into ``checkpoint-NNNNNN.partial-<pid>/`` and renamed into place only
when complete; the ``latest`` file (also replaced atomically) names the newest complete one.
A kill at any moment therefore leaves either the previous checkpoint or the new one, never a
half-written folder that resume would read. Leftover ``.partial-*`` folders are removed at the
next start.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hieroaction.io import read_json_object, write_atomic

LATEST = "latest"
STATE = "trainer_state.json"


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step:06d}"


def clean_partial(output_dir: str | Path) -> int:
    """Remove checkpoint folders a killed run left half-written; returns how many."""
    removed = 0
    for path in Path(output_dir).glob("checkpoint-*.partial-*"):
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    return removed


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    output_dir = Path(output_dir)
    pointer = output_dir / LATEST
    if pointer.is_file():
        candidate = output_dir / pointer.read_text(encoding="utf-8").strip()
        if (candidate / STATE).is_file():
            return candidate
    complete = sorted(p for p in output_dir.glob("checkpoint-*") if (p / STATE).is_file())
    return complete[-1] if complete else None


def rng_state() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    output_dir: str | Path,
    step: int,
    save_model: Any,
    trainer_state: dict[str, Any],
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    rng_states: list[dict[str, Any]] | None = None,
    keep: int | None = 2,
) -> Path:
    """Write checkpoint ``step`` atomically; ``save_model(folder)`` writes the weights.

    ``rng_states`` holds every process's random state (rank order), so a resumed run samples
    exactly what the uninterrupted one would have. ``keep`` newest checkpoints are kept (None
    keeps all).
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    final = output_dir / checkpoint_name(step)
    partial = output_dir / f"{final.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    save_model(partial / "model")
    torch.save(optimizer.state_dict(), partial / "optimizer.pt")
    torch.save(scheduler.state_dict(), partial / "scheduler.pt")
    torch.save(rng_states or [rng_state()], partial / "rng_state.pt")
    (partial / STATE).write_text(json.dumps(trainer_state, indent=1), encoding="utf-8")
    if final.exists():  # a re-run of the same step after a resume
        shutil.rmtree(final)
    os.replace(partial, final)
    # Also syncs output_dir, so the rename above survives a power cut too.
    write_atomic(output_dir / LATEST, final.name)
    if keep is not None:
        complete = sorted(p for p in output_dir.glob("checkpoint-*") if (p / STATE).is_file())
        for old in complete[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_trainer_state(checkpoint: Path) -> dict[str, Any]:
    return read_json_object(checkpoint / STATE)


def restore_optimizer(
    checkpoint: Path, optimizer: torch.optim.Optimizer, scheduler: Any, rank: int = 0
) -> None:
    """Load the optimizer, scheduler and this process's random state from ``checkpoint``."""
    optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", weights_only=False))
    scheduler.load_state_dict(torch.load(checkpoint / "scheduler.pt", weights_only=False))
    states = torch.load(checkpoint / "rng_state.pt", weights_only=False)
    set_rng_state(states[rank] if rank < len(states) else states[0])
