"""``hieroaction model tiny`` through the real command-line entry point."""

from __future__ import annotations

import functools

import pytest

from hieroaction import cli


@pytest.fixture
def main():
    """hieroaction.cli.main with only the model commands registered (the other command groups
    are tested in their own packages)."""
    return functools.partial(cli.main, groups=("model",))


def test_model_tiny_writes_a_checkpoint(main, tmp_path, capsys):
    out = tmp_path / "tiny"
    assert main(["model", "tiny", "--family", "qwen2_5_vl", "--out", str(out), "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} (qwen2_5_vl, tiny," in printed and "parameters)" in printed
    assert (out / "model.safetensors").is_file()


def test_model_tiny_bad_input_is_one_sentence(main, tmp_path, capsys):
    assert main(["model", "tiny", "--family", "gpt2", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "hieroaction: error: unknown model family 'gpt2'; expected one of "
        "['qwen2_5_vl', 'qwen3_vl']"
    )
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    assert main(["model", "tiny", "--family", "qwen3_vl", "--out", str(full)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hieroaction: error: ") and "--overwrite" in err and "\n" not in err
    assert main(["model", "tiny", "--family", "qwen3_vl", "--out", str(full), "--overwrite"]) == 0
