"""Resuming an SFT run: which checkpoints are complete, whether a resumed run is the same run,
and the data-order log that proves no micro-batch was lost or repeated.

transformers' Trainer writes ``checkpoint-N/`` folders; a crash can leave one half-written, so a
checkpoint counts only when its trainer state (written last) is there. Resuming refuses any
change of a setting that would alter the model, the data or its order (:data:`RESUMABLE_CHANGES`
lists the ones that may change).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from hieroaction.config import config_to_dict
from hieroaction.errors import ConfigError
from hieroaction.io import read_json_object, read_yaml_mapping, write_atomic

logger = logging.getLogger("hieroaction.train")

DATA_ORDER_FILE = "data_order.jsonl"

CHECKPOINT_PREFIX = "checkpoint-"  # transformers' PREFIX_CHECKPOINT_DIR
TRAINER_STATE_FILE = "trainer_state.json"  # written last into a checkpoint: its presence marks it complete

# Settings that may change when a run is resumed; any other change would alter the model, the
# data or its order, so resuming refuses it.
RESUMABLE_CHANGES = frozenset({
    "output_dir", "resume", "max_steps", "num_epochs", "save_steps", "save_total_limit",
    "logging_steps", "eval_steps", "eval_batch_size", "report_to", "dataloader_num_workers",
    "log_data_order", "attn_implementation", "gradient_checkpointing", "lora.merge", "data.decode_workers",
    "data.cache_dir", "data.video_root", "data.max_eval_samples", "data.eval_split",
})


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    """Checkpoint folders whose save finished (trainer state written), by step."""
    out = []
    for folder in Path(output_dir).glob(f"{CHECKPOINT_PREFIX}*"):
        step = checkpoint_step(folder)
        if step is not None and _is_complete(folder, step):
            out.append((step, folder))
    return [folder for _, folder in sorted(out)]


def checkpoint_step(folder: Path) -> int | None:
    suffix = folder.name[len(CHECKPOINT_PREFIX):]
    return int(suffix) if folder.is_dir() and suffix.isdigit() else None


def _is_complete(folder: Path, step: int) -> bool:
    try:
        state = read_json_object(folder / TRAINER_STATE_FILE)
    except ConfigError:
        return False
    return state.get("global_step") == step


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data}


def check_resume_matches(config: Any, saved_file: Path) -> None:
    """Refuse to resume when a setting outside :data:`RESUMABLE_CHANGES` differs from the saved
    run's (``saved_file``: its ``sft_config.yaml``)."""
    try:
        saved = read_yaml_mapping(saved_file)
    except ConfigError:
        return  # nothing reliable to compare with
    now = _flatten(json.loads(json.dumps(config_to_dict(config))))
    before = _flatten(saved)
    for key in sorted(set(now) | set(before)):
        # greedy validation draws no random numbers and only picks best/ (runs from before
        # the setting existed have none in their saved config)
        if key in RESUMABLE_CHANGES or key.startswith(("data.frames.decoder", "validation.")):
            continue
        if now.get(key) != before.get(key):
            raise ConfigError(
                f"cannot resume: {key} was {before.get(key)!r} in the run being resumed "
                f"({saved_file}) and is {now.get(key)!r} now; that would change the model or the "
                "data order, so start a new output_dir instead"
            )


def resume_point(config: Any, output_dir: Path) -> Path | None:
    """The checkpoint a run continues from (``config.resume``: None, ``auto`` or a folder), or
    None for a fresh run; one sentence when an earlier run would be overwritten."""
    resume = config.resume
    if resume is None:
        leftovers = [p for p in output_dir.iterdir()] if output_dir.is_dir() else []
        if any(p.name.startswith(CHECKPOINT_PREFIX) or p.name in ("config.json", "adapter_config.json") for p in leftovers):
            raise ConfigError(
                f"output_dir {output_dir} holds an earlier run; set resume: auto to continue it "
                "or choose another output_dir"
            )
        return None
    if resume == "auto":
        found = complete_checkpoints(output_dir) if output_dir.is_dir() else []
        return found[-1] if found else None
    folder = Path(resume).expanduser()
    step = checkpoint_step(folder) if folder.exists() else None
    if step is None or not _is_complete(folder, step):
        raise ConfigError(
            f"resume {resume}: not a complete checkpoint folder (expected checkpoint-N with "
            f"{TRAINER_STATE_FILE}), or 'auto'"
        )
    return folder


def truncate_data_order(path: Path, last_step: int) -> None:
    """Drop entries of steps after ``last_step`` (they belonged to steps a crash lost)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line)["step"] <= last_step:
                kept.append(line + "\n")
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    write_atomic(path, "".join(kept))


def remove_incomplete_checkpoints(output_dir: Path) -> None:
    complete = set(complete_checkpoints(output_dir))
    for folder in output_dir.glob(f"{CHECKPOINT_PREFIX}*"):
        if checkpoint_step(folder) is not None and folder not in complete:
            # A save cut short by a crash: resuming must not mistake it for a checkpoint.
            logger.warning("removing incomplete checkpoint %s (its save never finished)", folder)
            shutil.rmtree(folder, ignore_errors=True)


def read_data_order(output_dir: str | Path) -> dict[int, list[str]]:
    """Record ids of every optimizer step of a run (process 0), from ``data_order.jsonl``."""
    out: dict[int, list[str]] = {}
    path = Path(output_dir) / DATA_ORDER_FILE
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        out.setdefault(int(entry["step"]), []).extend(entry["ids"])
    return out
