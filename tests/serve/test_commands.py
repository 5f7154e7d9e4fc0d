"""``hieroaction serve`` on the command line: flags become ServeConfig fields; mistakes end in
one sentence before any model is loaded. (Serving itself is run by test_load.py.)"""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from hieroaction.cli.serve import config_from_args, register
from tests.serve.client import require_serve_extra


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["serve", *argv])


@pytest.fixture()
def cli(capsys):
    from hieroaction import cli as cli_module

    def run(*argv: str) -> tuple[int, str]:
        status = cli_module.main(list(argv), groups=("serve",))
        return status, capsys.readouterr().err

    return run


def test_flags_set_the_config(tmp_path):
    recipe = tmp_path / "serve.yaml"
    recipe.write_text("queue_size: 9\nport: 8000\ninference:\n  max_new_tokens: 99\n")
    config = config_from_args(parse(
        "--model", "m", "--config", str(recipe), "--port", "9000", "--max-upload-mb", "3.5",
        "--timeout", "12", "--domain", "diving", "--examples", "0",
        "--set", "inference.frames.num_frames=8", "--set", "accepted_formats=[mp4]",
    ))
    assert (config.port, config.queue_size, config.max_upload_mb, config.timeout_s) == (9000, 9, 3.5, 12.0)
    assert config.max_upload_bytes == int(3.5 * 1024 * 1024)
    assert config.inference.domain == "diving" and config.inference.max_new_tokens == 99
    assert config.inference.frames == {"num_frames": 8} and config.accepted_formats == ["mp4"]
    assert config.examples == 0 and config.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--model", "/nonexistent/model"], "no such model folder"),
        (["--model", "m", "--domain", "curling"], "unknown domain 'curling'"),
        (["--model", "m", "--queue-size", "0"], "queue_size must be at least 1"),
        (["--model", "m", "--set", "accepted_formats=[mp4,flv]"], "accepted_formats must be"),
        (["--model", "m", "--set", "max_upload_mb=-1"], "max_upload_mb must be a positive number"),
        (["--model", "m", "--set", "colour=blue"], "unknown config key 'colour'"),
    ],
    ids=["missing-model", "unknown-domain", "no-queue", "unknown-format", "negative-limit", "unknown-key"],
)
def test_mistakes_end_in_one_sentence(cli, argv, words):
    require_serve_extra()  # without it, every run ends in the sentence saying how to install it
    status, err = cli("serve", *argv)
    assert status == 2 and words in err and "Traceback" not in err


def test_without_the_extra_the_command_says_how_to_install_it(cli, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_uvicorn(name, *args, **kwargs):
        if name == "uvicorn":
            raise ImportError("No module named 'uvicorn'", name="uvicorn")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_uvicorn)
    status, err = cli("serve", "--model", "m")
    assert status == 2 and "is missing" in err and "pip install 'hieroaction[serve]'" in err


def test_the_command_line_does_not_need_the_serve_extra():
    """``hieroaction --help`` must work without FastAPI: the command imports it only to serve."""
    code = (
        "import argparse, sys; from hieroaction.cli.serve import register; "
        "register(argparse.ArgumentParser().add_subparsers()); "
        "from hieroaction.serve import ServeConfig; ServeConfig(); "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'python_multipart') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
