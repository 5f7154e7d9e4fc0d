"""Fixtures of the evaluation tests: a tiny model, a few synthetic clips, a corrupt video,
and a way to run the command line with only this area's commands registered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

EVAL_COMMANDS = ("evaluate", "assess")  # command groups of hieroaction.cli


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoints) -> Path:
    """A randomly initialised Qwen2.5-VL checkpoint folder (model + processor; tests/conftest.py)."""
    return tiny_checkpoints["qwen2_5_vl"]


@pytest.fixture(scope="session")
def synth_dir(synth_set) -> Path:
    """Six rendered synthetic clips (seed 3) and their records."""
    return synth_set(6, 3)


@pytest.fixture(scope="session")
def records_path(synth_dir) -> Path:
    return synth_dir / "records.jsonl"


@pytest.fixture(scope="session")
def good_video(records_path) -> Path:
    first = json.loads(records_path.read_text().splitlines()[0])
    return Path(first["video"]["path"])


@pytest.fixture()
def corrupt_video(tmp_path) -> Path:
    """A file named like a video whose bytes are not one."""
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return path


@pytest.fixture(scope="session")
def assessor(tiny_model):
    """The tiny model loaded once, with short answers and 8 frames (fast on a CPU)."""
    from hieroaction.inference import Assessor, InferenceConfig

    config = InferenceConfig(max_new_tokens=24, batch_size=4, frames={"num_frames": 8}, domain="synth")
    return Assessor.from_pretrained(tiny_model, config)


@pytest.fixture()
def cli(capsys):
    """``cli(*argv) -> (status, stdout, stderr)`` through ``hieroaction.cli.main``, with the
    evaluation commands registered (and nothing else, so other areas cannot break these tests)."""
    from hieroaction import cli as cli_module

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        status = cli_module.main([str(a) for a in argv], groups=EVAL_COMMANDS)
        out, err = capsys.readouterr()
        return status, out, err

    return run
