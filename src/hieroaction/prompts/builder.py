"""Build the chat prompt (system + user) that asks a VLM for a SAR assessment of one clip.

The text is data: ``prompts/templates/_base.yaml`` holds the prompt every domain starts from,
``prompts/templates/<domain>.yaml`` replaces some of its keys, and a user's file
(:attr:`PromptConfig.template`) replaces keys again. The builder fills the fields from the
domain (description, label vocabularies, score range, components) and from the clip (how many
frames the model sees and at which times). It reads nothing from a record but its domain, so
the ground truth can never reach the prompt.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from hieroaction.data.records import Record
from hieroaction.domains import Domain, get_domain
from hieroaction.errors import ConfigError
from hieroaction.io import read_yaml_mapping
from hieroaction.sar.assessment import normalise_number
from hieroaction.sar.markup import format_number
from hieroaction.sar.render import sar_skeleton

_BASE = "_base"
# Keys whose values are not text templates.
_OPTIONAL = "optional"
_SKELETON_QUALITY = "skeleton_step_quality"


@dataclass(frozen=True)
class ClipInfo:
    """What the model is shown of a clip: the time of each frame, in seconds from its start."""

    timestamps: tuple[float, ...] = ()
    duration: float | None = None

    @property
    def num_frames(self) -> int:
        """How many frames the model sees."""
        return len(self.timestamps)

    @classmethod
    def evenly_spaced(cls, num_frames: int, duration: float) -> ClipInfo:
        """``num_frames`` frames at ``i * duration / num_frames`` (a preview without video)."""
        if num_frames < 1 or not duration > 0:
            raise ConfigError(
                f"a clip needs at least 1 frame and a positive duration, got "
                f"{num_frames} frames over {duration} s"
            )
        step = duration / num_frames
        return cls(tuple(i * step for i in range(num_frames)), duration)


@dataclass
class PromptConfig:
    """Prompt settings (a section of the training and evaluation recipes)."""

    template: str | None = None  # a YAML file replacing keys of the domain's template
    include_vocabulary: bool = True  # list the domain's action and step labels
    include_timestamps: bool = True  # tell the model the time of each frame it sees


@dataclass
class _Template:
    texts: dict[str, str] = field(default_factory=dict)
    optional: dict[str, str] = field(default_factory=dict)
    step_quality: bool = False
    sources: list[str] = field(default_factory=list)

    def update(self, data: Any, source: str) -> None:
        """Replace keys with those of one template file's mapping."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: a prompt template must be a YAML mapping of texts")
        for key, value in data.items():
            key = str(key)
            if key == _OPTIONAL:
                if not isinstance(value, Mapping) or not all(
                    isinstance(v, str) for v in value.values()
                ):
                    raise ConfigError(f"{source}: 'optional' must map names to texts")
                self.optional.update({str(k): v for k, v in value.items()})
            elif key == _SKELETON_QUALITY:
                if not isinstance(value, bool):
                    raise ConfigError(f"{source}: {_SKELETON_QUALITY!r} must be true or false")
                self.step_quality = value
            elif isinstance(value, str):
                self.texts[key] = value
            else:
                raise ConfigError(f"{source}: template key {key!r} must be a text")
        self.sources.append(source)


@lru_cache(maxsize=32)
def _builtin_template(name: str) -> dict[str, Any] | None:
    ref = resources.files("hieroaction.prompts") / "templates" / f"{name}.yaml"
    if not ref.is_file():
        return None
    return read_yaml_mapping(ref, what="prompt template", name=f"prompt template {name}.yaml")


def builtin_template_names() -> list[str]:
    """Domains with a template of their own (others use the base prompt as it is)."""
    folder = resources.files("hieroaction.prompts") / "templates"
    return sorted(
        p.name[:-5]
        for p in folder.iterdir()
        if p.name.endswith(".yaml") and p.name != f"{_BASE}.yaml"
    )


def _template_file(path: Path) -> dict[str, Any]:
    """A template file's mapping, parsed once while the file stays unchanged: a prompt is built
    for every example a training step encodes, and parsing the YAML each time cost 7 % of a
    demo SFT step."""
    try:
        stat = path.stat()
    except OSError:
        # read_yaml_mapping says in one sentence what is wrong with the path
        return read_yaml_mapping(path, what="prompt template", empty_ok=True)
    return _parsed_template_file(path, str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=32)
def _parsed_template_file(path: Path, resolved: str, mtime_ns: int, size: int) -> dict[str, Any]:
    del resolved, mtime_ns, size  # the cache key only: an edited or another file is read again
    return read_yaml_mapping(path, what="prompt template", empty_ok=True)


def load_template(domain: str, override: str | Path | None = None) -> _Template:
    """The merged template for ``domain``: base, then the domain's file, then ``override``."""
    template = _Template()
    template.update(_builtin_template(_BASE), "prompt template _base.yaml")
    own = _builtin_template(domain)
    if own is not None:
        template.update(own, f"prompt template {domain}.yaml")
    if override is not None:
        path = Path(override)
        template.update(_template_file(path), str(path))
    for key in ("system", "user"):
        if key not in template.texts:
            raise ConfigError(f"{template.sources[-1]}: the prompt template has no {key!r} text")
    return template


def _as_clip(clip: Any) -> ClipInfo | None:
    """Accept a :class:`ClipInfo`, a sequence of timestamps, a mapping or an object with
    ``timestamps`` (and optionally ``duration``), e.g. the video pipeline's sampled clip."""
    if clip is None or isinstance(clip, ClipInfo):
        return clip
    if isinstance(clip, Mapping):
        timestamps, duration = clip.get("timestamps", ()), clip.get("duration")
    elif hasattr(clip, "timestamps"):
        timestamps, duration = clip.timestamps, getattr(clip, "duration", None)
    else:
        timestamps, duration = clip, None
    try:
        times = tuple(float(t) for t in timestamps)
        duration = None if duration is None else float(duration)
    except (TypeError, ValueError):
        raise ConfigError(
            "clip information must give timestamps as a sequence of seconds"
        ) from None
    return ClipInfo(times, duration)


def _num(value: float) -> str:
    try:
        return format_number(normalise_number(value))
    except ValueError:
        raise ConfigError(
            f"cannot write {value!r} in a prompt (expected a finite number)"
        ) from None


def prompt_fields(
    domain: Domain, clip: Any = None, config: PromptConfig | None = None
) -> dict[str, str]:
    """The values the templates can name; empty strings for what the domain or clip lacks."""
    config = config or PromptConfig()
    info = _as_clip(clip)
    vocabulary = config.include_vocabulary
    low, high = domain.score_range or ("", "")
    clow, chigh = domain.component_range or ("", "")
    quality = domain.extra.get("quality_range") or ("", "")
    fields = {
        "domain": domain.name,
        "domain_title": domain.name.replace("_", " "),
        "domain_description": domain.description,
        "action_labels": ", ".join(domain.action_labels) if vocabulary else "",
        "step_labels": ", ".join(domain.step_labels) if vocabulary else "",
        "components": ", ".join(domain.components),
        "score_low": _num(low) if low != "" else "",
        "score_high": _num(high) if high != "" else "",
        "component_low": _num(clow) if clow != "" else "",
        "component_high": _num(chigh) if chigh != "" else "",
        "step_quality_low": _num(quality[0]) if quality[0] != "" else "",
        "step_quality_high": _num(quality[1]) if quality[1] != "" else "",
        "num_frames": "",
        "timestamps": "",
        "duration": "",
    }
    if info is not None and info.num_frames:
        fields["num_frames"] = str(info.num_frames)
        if config.include_timestamps:
            fields["timestamps"] = ", ".join(_num(t) for t in info.timestamps)
    if info is not None and info.duration is not None:
        fields["duration"] = _num(info.duration)
    return fields


class _Renderer:
    """Fill templates that name fields and each other; optional ones vanish if a field is empty."""

    def __init__(self, template: _Template, fields: Mapping[str, str]) -> None:
        self.template = template
        self.values = dict(fields)
        self.done: dict[str, str] = {}
        self.where = " + ".join(template.sources)

    def get(self, key: str, stack: tuple[str, ...] = ()) -> str:
        if key in self.values:
            return self.values[key]
        if key in self.done:
            return self.done[key]
        if key in stack:
            raise ConfigError(
                f"{self.where}: template keys refer to each other in a loop ({key!r})"
            )
        text = self.template.texts.get(key, self.template.optional.get(key))
        if text is None:
            known = sorted({*self.values, *self.template.texts, *self.template.optional})
            raise ConfigError(
                f"{self.where}: {stack[-1] if stack else 'template'!r} names unknown field "
                f"{{{key}}}; expected one of {known}"
            )
        try:
            names = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
        except ValueError as exc:
            raise ConfigError(f"{self.where}: bad braces in {key!r} ({exc})") from None
        values = {}
        for name in names:
            if not name.isidentifier():
                raise ConfigError(
                    f"{self.where}: {key!r} names {{{name}}}; expected a plain field name"
                )
            values[name] = self.get(name, (*stack, key))
        if key in self.template.optional and any(not v.strip() for v in values.values()):
            out = ""
        else:
            try:
                out = text.format_map(values)
            except (ValueError, IndexError) as exc:
                raise ConfigError(f"{self.where}: cannot fill {key!r} ({exc})") from None
        self.done[key] = out
        return out


_BLANK_RUNS = re.compile(r"\n{3,}")


def _tidy(text: str) -> str:
    # Empty optional sentences leave blank lines and stray spaces behind.
    lines = [line.strip() for line in text.splitlines()]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def _domain_of(subject: Record | Domain | str) -> Domain:
    if isinstance(subject, Domain):
        return subject
    if isinstance(subject, Record):
        return get_domain(subject.domain)
    if isinstance(subject, str):
        return get_domain(subject)
    raise ConfigError(
        f"a prompt is built for a record, a domain or a domain name, not {type(subject).__name__}"
    )


def render_prompt(
    subject: Record | Domain | str, clip: Any = None, config: PromptConfig | None = None
) -> tuple[str, str]:
    """The (system, user) texts of the prompt for ``subject``'s domain and ``clip``.

    ``subject`` is a record (only its ``domain`` is read), a :class:`Domain` or a domain name.
    ``clip`` is a :class:`ClipInfo`, a sequence of frame times in seconds, or any object with
    ``timestamps`` (and optionally ``duration``); ``None`` leaves frame details out.
    """
    config = config or PromptConfig()
    domain = _domain_of(subject)
    template = load_template(domain.name, config.template)
    fields = prompt_fields(domain, clip, config)
    fields["sar_skeleton"] = sar_skeleton(domain.components, template.step_quality)
    renderer = _Renderer(template, fields)
    return _tidy(renderer.get("system")), _tidy(renderer.get("user"))


def build_prompt(
    subject: Record | Domain | str,
    clip: Any = None,
    config: PromptConfig | None = None,
    video: Any = None,
) -> list[dict[str, Any]]:
    """Chat messages in the transformers multimodal format.

    ``[{"role": "system", "content": [{"type": "text", ...}]}, {"role": "user", "content":
    [{"type": "video"}, {"type": "text", ...}]}]``; ``video`` (frames, a path, ...) is put in
    the video entry as ``"video"`` when given. See :func:`render_prompt` for the arguments.
    """
    system, user = render_prompt(subject, clip, config)
    video_entry: dict[str, Any] = {"type": "video"}
    if video is not None:
        video_entry["video"] = video
    return [
        {"role": "system", "content": [{"type": "text", "text": system}]},
        {"role": "user", "content": [video_entry, {"type": "text", "text": user}]},
    ]


def assistant_message(completion: str) -> dict[str, Any]:
    """The assistant turn holding a SAR completion (append it to a prompt for SFT)."""
    return {"role": "assistant", "content": [{"type": "text", "text": completion}]}


__all__ = [
    "ClipInfo",
    "PromptConfig",
    "assistant_message",
    "build_prompt",
    "builtin_template_names",
    "load_template",
    "prompt_fields",
    "render_prompt",
]
