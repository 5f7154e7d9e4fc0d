"""Training data: records -> cached clips -> chat prompts (+ SFT targets) -> model inputs.

Shared by the SFT and RL trainers. :func:`load_examples` reads a records file once, checks it
before any model is loaded (unreadable lines, missing splits, duplicate ids, unknown domains,
records a SAR target cannot be written for, clips that cannot be decoded) and makes sure every
clip is in the frame cache, so no training step decodes video. Each problem ends in one
sentence naming the file, line and record, or, with ``bad_records: skip``, the record is left
out and listed (see :attr:`LoadedData.skipped`).

An :class:`ExampleSet` hands out :class:`Example` objects (record, clip read from the cache,
prompt messages, target). :func:`encode_prompt` turns one into generation inputs (RL rollouts,
evaluation) and :func:`encode_supervised` into SFT inputs whose ``labels`` are ``-100``
everywhere except the assistant answer and its end-of-turn token.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch

from hieroaction.data.partial import has_full_labels
from hieroaction.data.records import BadLine, Record, iter_jsonl
from hieroaction.domains import get_domain
from hieroaction.errors import ConfigError, DataError, HieroActionError
from hieroaction.models.processor import collate
from hieroaction.prompts import PromptConfig, assistant_message, build_prompt
from hieroaction.sar.targets import TargetConfig, build_target
from hieroaction.video.cache import FrameCache, precompute
from hieroaction.video.sample import Clip, FrameConfig

logger = logging.getLogger("hieroaction.train")

# Label value the loss ignores (transformers' and PyTorch's cross-entropy convention).
IGNORE_INDEX = -100

# Default frame cache folder, next to the records file, when ``cache_dir`` is not set.
DEFAULT_CACHE_NAME = "frame_cache"

BadRecordPolicy = Literal["error", "skip"]


@dataclass
class DataConfig:
    """Where the training data comes from and how each example is built.

    Attributes:
        records: the unified-records JSONL file (required).
        train_split: records whose ``split`` is this are trained on.
        eval_split: records evaluated on during training (a validation split, never test);
            ``None``: no evaluation.
        cache_dir: the frame cache folder (default: ``frame_cache`` next to ``records``).
        video_root: folder that relative video paths start from (default: the records
            file's folder).
        max_train_samples: use only the first N records of the train split (smoke runs).
        max_eval_samples: use only the first N records of the eval split.
        train_labels: ``any`` trains on every record of the train split; ``full`` only on those
            holding the whole hierarchy (action, steps, final score), as SFT does in the
            partial-label setting (:mod:`hieroaction.data.partial`), while HPL trains on all.
        bad_records: ``error`` stops before training at the first bad record with one
            sentence; ``skip`` leaves bad records out, logs how many and lists them.
        decode_workers: processes that fill the frame cache before training.
        frames: frame sampling and pixel budget (keys the frame cache).
        prompt: prompt template settings.
        target: how SFT targets are written (unused by RL).
    """

    records: str = ""
    train_split: str = "train"
    eval_split: str | None = None
    cache_dir: str | None = None
    video_root: str | None = None
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    train_labels: Literal["any", "full"] = "any"
    bad_records: BadRecordPolicy = "error"
    decode_workers: int = 1
    frames: FrameConfig = field(default_factory=FrameConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    target: TargetConfig = field(default_factory=TargetConfig)

    def __post_init__(self) -> None:
        if self.bad_records not in ("error", "skip"):
            raise ConfigError(f"data.bad_records must be 'error' or 'skip', got {self.bad_records!r}")
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"config key 'data.{name}' must be at least 1 (or null), got {value}")
        if self.decode_workers < 1:
            raise ConfigError(f"config key 'data.decode_workers' must be at least 1, got {self.decode_workers}")
        fps = self.target.default_fps
        if fps is not None and fps != self.frames.default_fps:
            # The prompt states frame times with frames.default_fps; targets written with another
            # rate would contradict them for every record without its own fps.
            raise ConfigError(
                f"data.target.default_fps ({fps}) differs from data.frames.default_fps "
                f"({self.frames.default_fps}); leave target.default_fps unset to use the frame rate"
            )

    @property
    def records_path(self) -> Path:
        """The records file as a path."""
        return Path(self.records).expanduser()

    @property
    def cache_path(self) -> Path:
        """The frame cache folder."""
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        return self.records_path.parent / DEFAULT_CACHE_NAME

    @property
    def base_dir(self) -> Path:
        """Folder relative video paths start from."""
        return Path(self.video_root).expanduser() if self.video_root else self.records_path.parent

    def target_config(self) -> TargetConfig:
        """The target settings, with the frame pipeline's default fps for records without one,
        so step times in targets and frame times in prompts use the same clock."""
        if self.target.default_fps is not None:
            return self.target
        return replace(self.target, default_fps=self.frames.default_fps)


@dataclass(frozen=True)
class Skipped:
    """A record (or unreadable line) left out of training, and why."""

    line: int | None
    id: str | None
    reason: str

    def to_json(self) -> str:
        """One line of the skip list."""
        return json.dumps({"line": self.line, "id": self.id, "reason": self.reason}, ensure_ascii=False)


@dataclass
class Example:
    """One training sample: the record, its clip, the prompt and (for SFT) the target."""

    index: int
    record: Record
    clip: Clip
    messages: list[dict[str, Any]]
    target: str | None = None


class ExampleSet(torch.utils.data.Dataset):
    """The examples of one split; clips are read from the frame cache when an item is taken.

    Args:
        records: the split's records, in file order.
        targets: the SFT target of each record (``None`` entries for RL).
        cache: the frame cache holding every record's clip.
        config: the data settings (frames, prompt, target).
        name: the split's name (for messages).
    """

    def __init__(
        self,
        records: Sequence[Record],
        targets: Sequence[str | None],
        cache: FrameCache,
        config: DataConfig,
        name: str = "train",
    ) -> None:
        if len(records) != len(targets):
            raise ValueError("one target (or None) per record is needed")
        self.records = list(records)
        self.targets = list(targets)
        self.cache = cache
        self.config = config
        self.name = name

    def __len__(self) -> int:
        return len(self.records)

    @property
    def ids(self) -> list[str]:
        """Record ids, in example order."""
        return [r.id for r in self.records]

    def clip(self, index: int) -> Clip:
        """The cached clip of example ``index`` (decoded and stored if the entry went missing)."""
        return self.cache.load(self.records[index], self.config.frames)

    def __getitem__(self, index: int) -> Example:
        record = self.records[index]
        clip = self.clip(index)
        messages = build_prompt(record, clip, self.config.prompt)
        target = self.targets[index]
        if target is not None and record.video.fps is None and clip.fps != self.config.target_config().default_fps:
            # The decoder found the rate in the container: write step times on the clip's clock.
            video = record.video.model_copy(update={"fps": clip.fps})
            target = build_target(record.model_copy(update={"video": video}), self.config.target)
        return Example(index=index, record=record, clip=clip, messages=messages, target=target)


@dataclass
class LoadedData:
    """The examples of each requested split, plus what was left out."""

    splits: dict[str, ExampleSet]
    skipped: list[Skipped] = field(default_factory=list)

    def __getitem__(self, split: str) -> ExampleSet:
        return self.splits[split]


def _line_numbers(path: Path) -> dict[str, int]:
    """Record id -> line number (1-based); only read when a problem must be reported."""
    out: dict[str, int] = {}
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                rid = json.loads(line).get("id")
            except (json.JSONDecodeError, AttributeError):
                continue
            if isinstance(rid, str):
                out.setdefault(rid, number)
    return out


class _Problems:
    """Collects bad records; raises at the first one under ``error``, lists them under ``skip``."""

    def __init__(self, path: Path, policy: BadRecordPolicy) -> None:
        self.path, self.policy = path, policy
        self.items: list[Skipped] = []
        self._lines: dict[str, int] | None = None

    def line_of(self, record_id: str) -> int | None:
        if self._lines is None:
            self._lines = _line_numbers(self.path)
        return self._lines.get(record_id)

    def add(self, record_id: str | None, reason: str, line: int | None = None) -> None:
        if line is None and record_id is not None:
            line = self.line_of(record_id)
        item = Skipped(line=line, id=record_id, reason=reason.rstrip("."))
        if self.policy == "error":
            where = f"{self.path}:{line}" if line is not None else str(self.path)
            what = f"record {record_id!r}: " if record_id is not None else ""
            raise DataError(
                f"{where}: {what}{item.reason} (fix it, or set data.bad_records: skip to leave "
                "bad records out)"
            )
        self.items.append(item)


def _read_records(config: DataConfig, problems: _Problems) -> list[Record]:
    path = config.records_path
    if not config.records:
        raise ConfigError("config key 'data.records' is required (a unified-records JSONL file)")
    if not path.is_file():
        raise DataError(f"{path}: no such records file (expected a JSONL file of records)")
    bad: list[BadLine] = []
    try:
        records = list(iter_jsonl(path, bad=bad))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as a UTF-8 text file ({exc.__class__.__name__})") from None
    for line in bad:
        problems.add(None, f"not a valid record: {line.reason}", line=line.line)
    return records


def load_examples(
    config: DataConfig,
    splits: Sequence[str] | None = None,
    *,
    targets: bool = True,
    progress: bool = True,
    limits: Mapping[str, int | None] | None = None,
) -> LoadedData:
    """Read, check and cache the examples of ``splits`` (default: the train split, and the eval
    split when set), before any model is loaded.

    Args:
        config: the data settings.
        splits: the splits to load.
        targets: build SFT targets (a record without a final score is then a bad record).
        progress: show the frame-cache progress bar.
        limits: most records per split (default: ``max_train_samples`` / ``max_eval_samples``).

    Raises:
        DataError: a bad line or record under ``bad_records: error``, a split without records,
            or an unreadable file, in one sentence naming the file, line and record.
    """
    path = config.records_path
    problems = _Problems(path, config.bad_records)
    records = _read_records(config, problems)
    if splits is None:
        splits = [config.train_split] + ([config.eval_split] if config.eval_split else [])
    if limits is None:
        limits = {config.train_split: config.max_train_samples}
        if config.eval_split:
            limits = {**limits, config.eval_split: config.max_eval_samples}
    present = sorted({r.split or "(none)" for r in records})
    chosen: dict[str, list[Record]] = {}
    for split in dict.fromkeys(splits):
        rows = [r for r in records if r.split == split]
        if split == config.train_split and config.train_labels == "full":
            rows = [r for r in rows if has_full_labels(r)]
            if not rows:
                raise DataError(
                    f"{path}: no record of split {split!r} holds the whole hierarchy (action, steps, "
                    "final score), and data.train_labels is 'full'"
                )
        limit = limits.get(split)
        if limit is not None:
            rows = rows[:limit]
        if not rows:
            raise DataError(f"{path}: no records in split {split!r} (splits present: {present})")
        seen: set[str] = set()
        for r in rows:
            if r.id in seen:
                raise DataError(f"{path}: record id {r.id!r} appears twice in split {split!r}; ids must be unique")
            seen.add(r.id)
        chosen[split] = rows

    target_config = config.target_config()
    built: dict[str, dict[str, str | None]] = {}
    dropped: set[str] = set()
    for split, rows in chosen.items():
        built[split] = {}
        for r in rows:
            try:
                get_domain(r.domain)
                built[split][r.id] = build_target(r, target_config) if targets else None
            except HieroActionError as exc:
                dropped.add(r.id)
                problems.add(r.id, _strip_record_prefix(str(exc), r.id))

    wanted = [r for rows in chosen.values() for r in rows if r.id not in dropped]
    unique = list({r.id: r for r in wanted}.values())
    summary = precompute(
        unique, config.cache_path, config.frames, config.decode_workers,
        base_dir=config.base_dir, progress=progress,
    )
    logger.info("frame cache %s: %s", config.cache_path, summary)
    for failure in summary.failures:
        dropped.add(failure.id or "")
        problems.add(failure.id, f"its clip cannot be read ({failure.reason})")

    cache = FrameCache(config.cache_path, base_dir=config.base_dir)
    out: dict[str, ExampleSet] = {}
    for split, rows in chosen.items():
        kept = [r for r in rows if r.id not in dropped]
        if not kept:
            raise DataError(f"{path}: every record of split {split!r} is bad ({len(problems.items)} skipped)")
        out[split] = ExampleSet(kept, [built[split][r.id] for r in kept], cache, config, name=split)
    if problems.items:
        logger.warning(
            "skipped %d bad record(s) of %s (data.bad_records: skip); first: %s",
            len(problems.items), path, problems.items[0].to_json(),
        )
    return LoadedData(out, problems.items)


def _strip_record_prefix(message: str, record_id: str) -> str:
    # Errors from the target writer already name the record; the report names it once.
    prefix = f"record {record_id!r} "
    return message[len(prefix):] if message.startswith(prefix) else message


def write_skip_list(skipped: Sequence[Skipped], path: str | Path) -> Path:
    """Write the left-out records as JSONL (one ``{line, id, reason}`` per line)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(s.to_json() + "\n" for s in skipped), encoding="utf-8")
    return out


# ---------------------------------------------------------------------------------------------
# Model inputs
# ---------------------------------------------------------------------------------------------


def encode_prompt(processor: Any, example: Example) -> dict[str, torch.Tensor]:
    """Generation inputs of one example (batch dimension 1), ending with the assistant header."""
    return processor(example.messages, example.clip, add_generation_prompt=True)


def _answer_tokens(processor: Any, example: Example) -> tuple[list[int], list[int]]:
    """Token ids of the answer and its labels: the completion, then the chat template's end of
    the assistant turn with every token up to its end-of-turn token learned and any trailing
    text (a newline) ignored."""
    target = example.target
    prompt_text = processor.apply_chat_template(example.messages, add_generation_prompt=True)
    full_text = processor.apply_chat_template(
        list(example.messages) + [assistant_message(target)], add_generation_prompt=False
    )
    if not full_text.startswith(prompt_text + target):
        raise ConfigError(
            f"the {processor.family.name} chat template does not write an assistant turn as the "
            "generation prompt followed by the answer; SFT labels cannot be placed"
        )
    suffix = full_text[len(prompt_text) + len(target):]
    tokenizer = processor.tokenizer
    # Tokenised apart from the prompt: these are the ids the model emits after the prompt.
    answer = tokenizer(target, add_special_tokens=False)["input_ids"]
    tail = tokenizer(suffix, add_special_tokens=False)["input_ids"]
    eos = set(tokenizer.convert_tokens_to_ids(list(processor.family.eos_tokens)))
    stop = next((i for i, t in enumerate(tail) if t in eos), None)
    if stop is None:
        raise ConfigError(
            f"the {processor.family.name} chat template ends an assistant turn with {suffix!r}, "
            f"which holds none of the end-of-turn tokens {list(processor.family.eos_tokens)}"
        )
    forbidden = {processor.video_token_id, processor.image_token_id}
    if forbidden.intersection(answer):
        raise DataError(
            f"record {example.record.id!r}: the target text holds a vision placeholder token; "
            "it would be read as video input"
        )
    ids = answer + tail
    labels = answer + tail[: stop + 1] + [IGNORE_INDEX] * (len(tail) - stop - 1)
    return ids, labels


def encode_supervised(processor: Any, example: Example) -> dict[str, torch.Tensor]:
    """SFT inputs of one example (batch dimension 1): the prompt with the clip, then the answer.

    ``labels`` equal ``input_ids`` on the answer tokens and the assistant turn's end-of-turn
    token, and ``-100`` everywhere else (system and user turns, video tokens, the assistant
    header, trailing template text), so the loss is on the assistant answer only.
    """
    if example.target is None:
        raise ValueError(f"example {example.record.id!r} has no target; load it with targets=True")
    prompt = encode_prompt(processor, example)
    ids, labels = _answer_tokens(processor, example)
    prompt_ids = prompt["input_ids"]
    answer = torch.tensor([ids], dtype=prompt_ids.dtype)
    input_ids = torch.cat([prompt_ids, answer], dim=1)
    out = dict(prompt)
    out["input_ids"] = input_ids
    out["attention_mask"] = torch.ones_like(input_ids)
    out["mm_token_type_ids"] = processor.mm_token_type_ids(input_ids)
    out["labels"] = torch.cat(
        [torch.full_like(prompt_ids, IGNORE_INDEX), torch.tensor([labels], dtype=prompt_ids.dtype)], dim=1
    )
    return out


class SupervisedDataset(torch.utils.data.Dataset):
    """:func:`encode_supervised` over an :class:`ExampleSet`; each item also carries its
    ``example_index`` so trainers can log which examples made each step."""

    def __init__(self, examples: ExampleSet, processor: Any, keep_encoded: bool = False) -> None:
        self.examples = examples
        self.processor = processor
        # With keep_encoded, each item is encoded once and held in memory: the same tensors
        # as encoding it again (the encoding is deterministic), for small sets seen for many
        # epochs (SFTConfig.keep_encoded; the demo's SFT steps are 7 % faster).
        self._kept: dict[int, dict[str, torch.Tensor]] | None = {} if keep_encoded else None

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = self._kept.get(index) if self._kept is not None else None
        if item is None:
            item = encode_supervised(self.processor, self.examples[index])
            item["example_index"] = torch.tensor(index, dtype=torch.long)
            if self._kept is not None:
                self._kept[index] = item
        return dict(item)  # the collator builds new tensors; a copy keeps the kept dict whole


@dataclass
class SupervisedCollator:
    """Batches :class:`SupervisedDataset` items: token rows padded on the right (labels with
    ``-100``), video tensors concatenated in sample order, ``example_index`` stacked."""

    pad_token_id: int

    def __call__(self, samples: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        batch = collate(samples, self.pad_token_id, padding_side="right")
        if all("example_index" in s for s in samples):
            batch["example_index"] = torch.stack([s["example_index"].reshape(()) for s in samples])
        return batch


__all__ = [
    "DataConfig",
    "Example",
    "ExampleSet",
    "IGNORE_INDEX",
    "LoadedData",
    "Skipped",
    "SupervisedCollator",
    "SupervisedDataset",
    "encode_prompt",
    "encode_supervised",
    "load_examples",
    "write_skip_list",
]
