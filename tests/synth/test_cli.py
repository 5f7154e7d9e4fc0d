import functools
import json

import pytest

from hieroaction import cli
from hieroaction.data.records import read_jsonl


@pytest.fixture
def main():
    # The command is tested through the real main(); other command groups are not needed.
    return functools.partial(cli.main, groups=("synth",))


def test_synth_is_a_registered_command():
    assert "synth" in cli.GROUPS


def test_synth_command(main, tmp_path, capsys):
    out = tmp_path / "bench"
    status = main(["synth", "--out", str(out), "--n", "10", "--seed", "2", "--quiet",
                   "--val-fraction", "0.2", "--test-fraction", "0.3", "--size", "64",
                   "--fps", "16", "timing.turn_jitter=0"])
    assert status == 0
    printed = capsys.readouterr().out
    assert "wrote 10 clips" in printed and "difficulty oracle" in printed
    records = read_jsonl(out / "records.jsonl")
    assert [sum(r.split == s for r in records) for s in ("train", "val", "test")] == [5, 2, 3]
    assert all(r.video.fps == 16.0 for r in records)
    assert json.loads((out / "synth.json").read_text())["seed"] == 2
    for r in records:  # no jitter: the turns step is exactly base + per-turn x count frames
        assert r.steps[1].end_frame - r.steps[1].start_frame + 1 == 4 + 6 * r.action.attributes[
            "turns"]


def test_synth_config_file_then_flags(main, tmp_path):
    config = tmp_path / "synth.yaml"
    config.write_text("n: 4\nseed: 9\nrender: {size: 96}\n")
    out = tmp_path / "bench"
    assert main(["synth", "--out", str(out), "--config", str(config), "--seed", "3",
                 "--quiet"]) == 0
    summary = json.loads((out / "synth.json").read_text())
    assert (summary["n"], summary["seed"]) == (4, 3)
    assert "size: 96" in (out / "synth_config.yaml").read_text()
    # The saved settings reproduce the run.
    again = tmp_path / "again"
    assert main(["synth", "--out", str(again), "--config", str(out / "synth_config.yaml"),
                 "--quiet"]) == 0
    strip = str(out), str(again)
    assert (out / "records.jsonl").read_text().replace(strip[0], "") == (
        again / "records.jsonl").read_text().replace(strip[1], "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n", "0"], "n must be a positive number of clips, got 0"),
        (["--size", "33"], "render.size must be an even number"),
        (["--sed", "3"], "unknown config key 'sed'"),
        (["--n", "2", "--config", "missing.yaml"], "missing.yaml: no such config file"),
    ],
)
def test_synth_command_errors(main, tmp_path, capsys, args, message):
    assert main(["synth", "--out", str(tmp_path / "o"), "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hieroaction: error:") and message in err
    assert "Traceback" not in err


def test_out_is_a_file_through_the_full_command_line(tmp_path, capsys):
    target = tmp_path / "x.jsonl"
    target.write_text("")
    assert cli.main(["synth", "--out", str(target), "--n", "2", "--quiet"]) == 2
    assert "is a file" in capsys.readouterr().err
