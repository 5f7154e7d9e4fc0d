"""``hieroaction demo`` on the command line: flags, overrides and one-sentence errors."""

from __future__ import annotations

import argparse

import pytest

from hieroaction.cli.demo import config_from_args, register
from hieroaction.demo.runner import MARKER, prepare_output
from hieroaction.errors import ConfigError, DataError


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hieroaction")
    register(parser.add_subparsers(dest="command"))
    args, extra = parser.parse_known_args(["demo", *argv])
    args.overrides = extra
    return args


def test_flags_and_overrides_set_the_config(tmp_path):
    config_file = tmp_path / "demo.yaml"
    config_file.write_text("budget_minutes: 5\nevaluation: {batch_size: 2}\n", encoding="utf-8")
    args = parse(["--out", str(tmp_path / "out"), "--seeds", "3", "--ablations", "--threads", "2",
                  "--config", str(config_file), "evaluation.test_clips=10", "--quiet", "--overwrite"])
    config = config_from_args(args)
    assert config.out_dir == str(tmp_path / "out")
    assert (config.seeds, config.ablations, config.threads) == (3, True, 2)
    assert config.budget_minutes == 5 and config.evaluation.batch_size == 2
    assert config.evaluation.test_clips == 10
    assert config.progress is False and config.overwrite is True
    # an explicit flag wins over the file
    assert config_from_args(parse(["--budget-minutes", "2", "--config", str(config_file)])).budget_minutes == 2


def test_a_bad_override_is_one_sentence():
    with pytest.raises(ConfigError, match="evaluation.no_such"):
        config_from_args(parse(["evaluation.no_such=1"]))


def test_output_folder_rules(tmp_path):
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match="is a file"):
        prepare_output(tmp_path / "file", overwrite=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(DataError, match="holds no earlier demo output"):
        prepare_output(other, overwrite=True)
    out = tmp_path / "out"
    prepare_output(out, overwrite=False)
    (out / "seed-0").mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(DataError, match="--overwrite"):
        prepare_output(out, overwrite=False)
    prepare_output(out, overwrite=True)
    assert not (out / "seed-0").exists()
    assert (out / "keep.txt").read_text(encoding="utf-8") == "mine"
    assert (out / MARKER).is_file()
