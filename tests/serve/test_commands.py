"""``hieroaction serve`` on the command line: flags become ServeConfig fields; mistakes end in
one sentence before any model is loaded. (Serving itself is run by test_load.py.)"""

from __future__ import annotations

import argparse
import os
import socket
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


# ---------------------------------------------------------------------------------------------
# Every setting is checked before the model is loaded (project issue 13): one sentence, status 2
# ---------------------------------------------------------------------------------------------


@pytest.fixture()
def loads(monkeypatch):
    """The model loader, replaced: it records its calls and stops the command there (status 2
    with the words 'model load reached'), so a test sees whether the checks let it through."""
    from hieroaction.errors import ConfigError
    from hieroaction.inference import Assessor

    calls: list[tuple] = []

    def from_pretrained(*args, **kwargs):
        calls.append(args)
        raise ConfigError("model load reached")

    monkeypatch.setattr(Assessor, "from_pretrained", from_pretrained)
    return calls


def _refused_before_loading(cli, loads, *argv):
    require_serve_extra()
    status, err = cli("serve", "--model", "m", "--examples", "0", "--port", "0", *argv)
    assert status == 2 and "Traceback" not in err and loads == []
    assert err.startswith("hieroaction: error: ") and err.count("\n") == 1  # one sentence
    return err


def test_an_upload_dir_that_cannot_be_created_is_refused_before_loading(cli, loads, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    err = _refused_before_loading(cli, loads, "--set", f"upload_dir={blocker / 'uploads'}")
    assert f"upload_dir '{blocker / 'uploads'}' cannot be created" in err
    err = _refused_before_loading(cli, loads, "--set", f"upload_dir={blocker}")
    assert f"upload_dir '{blocker}' is not a folder" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in any folder")
def test_an_upload_dir_that_is_not_writable_is_refused_before_loading(cli, loads, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    err = _refused_before_loading(cli, loads, "--set", f"upload_dir={locked}")
    assert f"upload_dir '{locked}' is not writable" in err


def test_a_port_in_use_is_refused_before_loading(cli, loads):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = _refused_before_loading(cli, loads, "--port", str(port))
    assert f"port {port} on 127.0.0.1 is already in use" in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--host", "203.0.113.7"], "host '203.0.113.7' is not an address of this machine"),
        (["--set", "inference.frames.max_frame_pixels=0"], "inference.frames: frame setting 'max_frame_pixels' must be a positive"),
        (["--set", "inference.frames.colour=blue"], "inference.frames: unknown config key 'colour'"),
    ],
    ids=["foreign-host", "frame-limit", "frame-key"],
)
def test_other_settings_are_refused_before_loading(cli, loads, argv, words):
    assert words in _refused_before_loading(cli, loads, *argv)


def test_good_settings_reach_the_model_load_and_a_missing_upload_dir_is_made(cli, loads, tmp_path):
    require_serve_extra()
    uploads = tmp_path / "new" / "uploads"
    status, err = cli("serve", "--model", "m", "--examples", "0", "--port", "0", "--set", f"upload_dir={uploads}")
    assert status == 2 and "model load reached" in err and len(loads) == 1
    assert uploads.is_dir() and list(uploads.iterdir()) == []  # the check's own folder is gone


def test_serve_raises_when_the_app_does_not_start(monkeypatch, tmp_path):
    """A start-up failure the checks cannot foresee ends in an error, not in a normal return."""
    require_serve_extra()
    from types import SimpleNamespace

    from hieroaction.errors import HieroActionError
    from hieroaction.serve import ServeConfig
    from hieroaction.serve.app import Service, serve

    def broken_start(self):
        raise HieroActionError("the examples cannot be rendered")

    monkeypatch.setattr(Service, "start", broken_start)
    config = ServeConfig(port=0, examples=0, upload_dir=str(tmp_path))
    with pytest.raises(HieroActionError, match=r"the server did not start on 127\.0\.0\.1:0"):
        serve(SimpleNamespace(model=None), config, log_level="critical")
