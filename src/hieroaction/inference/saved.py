"""The inference settings a trained model keeps in its own folder.

A model answers well only when it is prompted as it was trained: the same frames (number,
sampling, pixel budget), the same prompt template and options, the same domain. ``hieroaction
train sft`` and ``train hpl`` therefore write ``hieroaction_inference.yaml`` (and a copy of a
custom prompt template, ``hieroaction_prompt.yaml``) next to the weights they save, and
``Assessor.from_pretrained``, ``hieroaction assess``, ``serve`` and ``evaluate --model`` start
from those settings; a config file, ``--set``/``key=value`` and flags still override them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from hieroaction.errors import ConfigError
from hieroaction.io import read_yaml_mapping, write_atomic

SETTINGS_FILE = "hieroaction_inference.yaml"
PROMPT_FILE = "hieroaction_prompt.yaml"

# FrameConfig fields that say which frames the model saw; the patch grid and the other fields
# come from the model's processor or the machine (decoder), not from training.
_FRAME_FIELDS = ("strategy", "num_frames", "fps", "max_frames", "resize", "min_pixels", "max_pixels")

_HEADER = (
    "# How this model was trained to be prompted, written by hieroaction training. `hieroaction\n"
    "# assess/serve/evaluate --model` start from these settings (InferenceConfig fields); a config\n"
    "# file, --set / key=value and flags override them.\n"
)


def training_settings(
    data: Any, records: Iterable[Any], max_new_tokens: int | None = None
) -> dict[str, Any]:
    """The :class:`~hieroaction.inference.InferenceConfig` fields that reproduce training.

    Args:
        data: the run's ``DataConfig`` (frames and prompt).
        records: the training records (their one domain, if they share one, is kept).
        max_new_tokens: the longest answer the model was trained to write, if known.
    """
    frames = data.frames.to_dict()
    settings: dict[str, Any] = {"frames": {k: frames[k] for k in _FRAME_FIELDS}}
    if settings["frames"]["strategy"] == "steps":
        # places frames by the annotated steps, which a new clip does not have: the same number
        # of frames spread uniformly is the closest inference can do
        settings["frames"]["strategy"] = "uniform"
    prompt = data.prompt
    settings["prompt"] = {
        "template": PROMPT_FILE if prompt.template else None,
        "include_vocabulary": prompt.include_vocabulary,
        "include_timestamps": prompt.include_timestamps,
    }
    domains = {record.domain for record in records}
    if len(domains) == 1:
        settings["domain"] = domains.pop()
    if max_new_tokens is not None:
        settings["max_new_tokens"] = int(max_new_tokens)
    return settings


def write_settings(
    folder: str | Path, data: Any, records: Iterable[Any], max_new_tokens: int | None = None
) -> Path:
    """Write :func:`training_settings` (and a copy of the prompt template) into ``folder``."""
    folder = Path(folder)
    settings = training_settings(data, records, max_new_tokens)
    if data.prompt.template:
        source = Path(data.prompt.template).expanduser()
        try:
            shutil.copyfile(source, folder / PROMPT_FILE)
        except OSError as exc:
            raise ConfigError(f"{source}: cannot copy the prompt template next to the model ({exc.strerror})") from None
    return write_atomic(folder / SETTINGS_FILE, _HEADER + yaml.safe_dump(settings, sort_keys=False))


def read_settings(model: str | Path | None) -> dict[str, Any]:
    """The settings a model folder keeps (empty for a folder without them, or a Hub id).

    The prompt template is given as an absolute path into the folder, so the settings work from
    any working directory.
    """
    if model is None:
        return {}
    folder = Path(model).expanduser()
    path = folder / SETTINGS_FILE
    if not path.is_file():
        return {}
    settings = read_yaml_mapping(path, what="model's inference settings")
    prompt = settings.get("prompt")
    if isinstance(prompt, dict) and prompt.get("template"):
        template = Path(prompt["template"])
        prompt["template"] = str(template if template.is_absolute() else (folder / template).resolve())
    return settings


__all__ = ["PROMPT_FILE", "SETTINGS_FILE", "read_settings", "training_settings", "write_settings"]
