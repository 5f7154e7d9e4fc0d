from dataclasses import dataclass, field
from typing import Literal

import pytest

from hieroaction.config import load_config, parse_overrides
from hieroaction.errors import ConfigError


@dataclass
class Optim:
    lr: float = 1e-5
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class Job:
    name: str = "run"
    steps: int = 10
    bf16: bool = False
    loss: Literal["grpo", "dr_grpo", "dapo"] = "grpo"
    weights: dict[str, float] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    resume: str | None = None
    optim: Optim = field(default_factory=Optim)


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 5\nweights: {score: 1.0, format: 0.5}\noptim: {lr: 0.001}\n")
    cfg = load_config(Job, path, ["--steps", "7", "optim.betas=[0.8, 0.9]", "--bf16=true", "--loss", "dapo"])
    assert cfg.steps == 7 and cfg.bf16 is True and cfg.loss == "dapo"
    assert cfg.weights == {"score": 1.0, "format": 0.5}
    assert cfg.optim.lr == 0.001 and cfg.optim.betas == (0.8, 0.9)
    assert cfg.resume is None


@pytest.mark.parametrize(
    "overrides, needle",
    [
        (["--stepz", "3"], "unknown config key 'stepz'"),
        (["--steps", "many"], "'steps' must be an integer"),
        (["--bf16", "maybe"], "'bf16' must be true or false"),
        (["--loss", "ppo"], "'loss' must be one of"),
        (["--optim.lr", "fast"], "'optim.lr' must be a number"),
        (["--optim.momentum", "0.9"], "unknown config key 'optim.momentum'"),
        (["--steps"], "has no value"),
    ],
)
def test_bad_overrides_are_one_sentence(overrides, needle):
    with pytest.raises(ConfigError, match=needle):
        load_config(Job, None, overrides)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(Job, tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load_config(Job, tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("steps: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Job, tmp_path / "broken.yaml")


def test_override_values_keep_yaml_types():
    assert parse_overrides(["a.b=3", "--c", "true", "--d=[1, 2]", "e=text"]) == {
        "a": {"b": 3}, "c": True, "d": [1, 2], "e": "text"
    }


def test_recipes_merge_their_base_files(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "a.yaml").write_text("steps: 3\noptim: {lr: 0.1, betas: [0.5, 0.6]}\nname: a\n")
    (tmp_path / "base" / "b.yaml").write_text("optim: {lr: 0.2}\n")
    (tmp_path / "r.yaml").write_text("base: [base/a.yaml, base/b.yaml]\nname: r\n")
    cfg = load_config(Job, tmp_path / "r.yaml", ["--steps", "4"])
    assert (cfg.name, cfg.steps, cfg.optim.lr, cfg.optim.betas) == ("r", 4, 0.2, (0.5, 0.6))
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="in a loop"):
        load_config(Job, tmp_path / "loop.yaml")


def test_defaults_come_first_then_the_file_then_overrides(tmp_path):
    from hieroaction.inference import InferenceConfig

    recipe = tmp_path / "inference.yaml"
    recipe.write_text("frames: {num_frames: 12}\nbatch_size: 2\n")
    defaults = {"frames": {"num_frames": 4, "strategy": "fps"}, "domain": "synth", "batch_size": 8}
    config = load_config(InferenceConfig, recipe, ["domain=diving"], defaults)
    # nested mappings merge key by key: the file's num_frames, the defaults' strategy
    assert config.frames == {"num_frames": 12, "strategy": "fps"}
    assert (config.batch_size, config.domain) == (2, "diving")
    assert defaults["frames"] == {"num_frames": 4, "strategy": "fps"}  # not modified


def test_a_model_folders_inference_settings_are_checked(tmp_path):
    from hieroaction.inference.saved import SETTINGS_FILE, read_settings

    assert read_settings(tmp_path) == {} and read_settings("Qwen/Qwen2.5-VL-7B-Instruct") == {}
    (tmp_path / SETTINGS_FILE).write_text("- a list\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        read_settings(tmp_path)
    (tmp_path / SETTINGS_FILE).write_text("frames: {num_frames: [\n")
    with pytest.raises(ConfigError, match="cannot read the model's inference settings"):
        read_settings(tmp_path)
