"""Generate the synthetic benchmark: sample clips, render them in parallel, write the records.

Each clip is sampled from its own random stream, seeded by ``(seed, index)``, so clip ``i`` is
the same whatever ``n`` is and however many workers render it; the split assignment is a
seeded permutation. Quality is sampled per clip as a skill level plus per-step noise, judges
score the mean step quality with a little noise, and the final score follows the domain
formula (difficulty x execution).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from importlib import resources
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import yaml

from hieroaction.config import config_to_dict
from hieroaction.data.partial import check_fraction, partial_labels
from hieroaction.data.records import Action, Record, Score, Step, VideoRef, write_jsonl
from hieroaction.errors import ConfigError, DataError, HieroActionError
from hieroaction.synth.grammar import ActionType, Grammar, load_grammar
from hieroaction.synth.render import (
    ClipSpec,
    RenderConfig,
    VideoConfig,
    pick_codec,
    render_clip,
    write_video,
)

DATASET_NAME = "synth"
RECORDS_FILE = "records.jsonl"
VIDEOS_DIR = "videos"
SUMMARY_FILE = "synth.json"  # also marks a folder as this generator's output
_OWN_FILES = (RECORDS_FILE, SUMMARY_FILE, "README.md", "domain.yaml", "synth_config.yaml")


@dataclass
class TimingConfig:
    """Clip timing: frame rate and the frame count of each step (sampled per clip)."""

    fps: float = 12.0
    takeoff_frames: tuple[int, int] = (7, 12)  # inclusive range
    entry_frames: tuple[int, int] = (7, 12)
    turn_base_frames: int = 4  # turns step: base + per_turn x count +- jitter
    turn_frames_per_turn: int = 6
    turn_jitter: int = 2


@dataclass
class QualityConfig:
    """How execution quality and judge scores are sampled."""

    # A clip's skill is uniform in this range; each step's quality is skill plus Gaussian noise.
    skill_range: tuple[float, float] = (3.0, 9.5)
    step_spread: float = 1.0
    quality_step: float = 0.5  # step qualities are rounded to this grid
    judge_noise: float = 0.3  # standard deviation of each judge around the mean quality


@dataclass
class SynthConfig:
    """Everything ``hieroaction synth`` needs besides the output folder."""

    n: int = 2000
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    workers: int = 0  # 0: one per CPU core
    # Below this many clips one process renders them all: starting workers costs seconds.
    parallel_min_clips: int = 100
    absolute_paths: bool = True  # False: video paths relative to the records file's folder
    # The paper's partial-label setting (hieroaction.data.partial): the fraction of training
    # clips that keep every label; the rest keep the final score, and the action label for the
    # fraction action_labels of them. 1.0: every clip fully labelled.
    full_labels: float = 1.0
    action_labels: float = 1.0
    timing: TimingConfig = field(default_factory=TimingConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    video: VideoConfig = field(default_factory=VideoConfig)


def validate_config(config: SynthConfig) -> None:
    """Raise :class:`ConfigError` naming the first setting that cannot work."""
    if isinstance(config.n, bool) or not isinstance(config.n, int) or config.n <= 0:
        raise ConfigError(f"n must be a positive number of clips, got {config.n!r}")
    for name in ("val_fraction", "test_fraction"):
        value = getattr(config, name)
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{name} must be in [0, 1), got {value}")
    if config.val_fraction + config.test_fraction >= 1.0:
        raise ConfigError(
            f"val_fraction + test_fraction must leave clips for training, got "
            f"{config.val_fraction} + {config.test_fraction}"
        )
    if config.workers < 0:
        raise ConfigError(f"workers must be >= 0 (0: one per CPU core), got {config.workers}")
    check_fraction("full_labels (the fraction of fully labelled training clips)", config.full_labels)
    check_fraction("action_labels (the fraction of the other training clips that keep the action)",
                   config.action_labels, zero_ok=True)
    t = config.timing
    if not (math.isfinite(t.fps) and t.fps > 0):
        raise ConfigError(f"timing.fps must be a positive number, got {t.fps}")
    for name in ("takeoff_frames", "entry_frames"):
        low, high = getattr(t, name)
        if not 1 <= low <= high:
            raise ConfigError(f"timing.{name} must be a range 1 <= low <= high, got {(low, high)}")
    if t.turn_base_frames + t.turn_frames_per_turn - t.turn_jitter < 1:
        raise ConfigError("timing: a one-turn step could get no frames; raise turn_base_frames")
    q = config.quality
    if not 0.0 <= q.skill_range[0] <= q.skill_range[1]:
        raise ConfigError(f"quality.skill_range must be 0 <= low <= high, got {q.skill_range}")
    if q.quality_step <= 0 or q.step_spread < 0 or q.judge_noise < 0:
        raise ConfigError("quality: quality_step must be > 0 and the noises >= 0")


@dataclass(frozen=True)
class ClipSample:
    """One sampled clip: its action, what decides its pixels, and its judges' scores."""

    index: int
    action: ActionType
    spec: ClipSpec
    judges: tuple[float, ...]

    @property
    def execution(self) -> float:
        """The sum of the judges' scores."""
        return float(sum(self.judges))

    @property
    def final(self) -> float:
        """Difficulty x execution, rounded to the hundredths a scoreboard shows."""
        return round(self.action.difficulty * self.execution, 2)


def _round_to(value: float, step: float) -> float:
    return float(round(value / step) * step)


def sample_clip(index: int, seed: int, config: SynthConfig, grammar: Grammar | None = None
                ) -> ClipSample:
    """Sample clip ``index`` of the dataset seeded with ``seed`` (independent of ``n``)."""
    grammar = grammar or load_grammar()
    rng = np.random.default_rng((seed, 0, index))
    t, q = config.timing, config.quality
    action = grammar.actions[int(rng.integers(len(grammar.actions)))]
    turn_frames = (
        t.turn_base_frames + t.turn_frames_per_turn * action.turns.count
        + int(rng.integers(-t.turn_jitter, t.turn_jitter + 1))
    )
    step_frames = (
        int(rng.integers(t.takeoff_frames[0], t.takeoff_frames[1] + 1)),
        turn_frames,
        int(rng.integers(t.entry_frames[0], t.entry_frames[1] + 1)),
    )
    q_low, q_high = grammar.quality_range
    skill = rng.uniform(*q.skill_range)
    qualities = tuple(
        min(q_high, max(q_low, _round_to(skill + rng.normal(0.0, q.step_spread), q.quality_step)))
        for _ in range(3)
    )
    overall = sum(qualities) / 3
    j_low, j_high = grammar.judge_range
    judges = tuple(
        min(j_high, max(j_low, _round_to(overall + rng.normal(0.0, q.judge_noise),
                                         grammar.judge_step)))
        for _ in range(grammar.judges)
    )
    spec = ClipSpec(
        colour=action.takeoff.colour,
        turns=action.turns.count,
        head_first=action.entry.name == "head",
        step_frames=step_frames,
        qualities=qualities,  # type: ignore[arg-type]
        swing_side=1 if rng.random() < 0.5 else -1,
        tilt_sign=1 if rng.random() < 0.5 else -1,
        quality_max=q_high,
    )
    return ClipSample(index=index, action=action, spec=spec, judges=judges)


def commentary(sample: ClipSample, grammar: Grammar | None = None) -> str:
    """A one-line description of the execution, from the domain's commentary bands."""
    grammar = grammar or load_grammar()
    q = sample.spec.qualities
    return (
        f"Take-off: {grammar.describe('takeoff', q[0])}. "
        f"Turns: {grammar.describe('turns', q[1])}. "
        f"Entry: {grammar.describe('entry', q[2])}."
    )


def build_record(sample: ClipSample, split: str | None, video_path: str, fps: float,
                 grammar: Grammar | None = None) -> Record:
    """The unified record of a sampled clip."""
    grammar = grammar or load_grammar()
    steps, start = [], 0
    for label, count, quality in zip(sample.action.step_labels, sample.spec.step_frames,
                                     sample.spec.qualities):
        steps.append(Step(label=label, start_frame=start, end_frame=start + count - 1,
                          score=quality))
        start += count
    return Record(
        id=clip_id(sample.index),
        dataset=DATASET_NAME,
        domain=grammar.domain.name,
        split=split,
        video=VideoRef(path=video_path, start_frame=0, end_frame=sample.spec.num_frames - 1,
                       fps=fps),
        action=Action(label=sample.action.label, attributes=sample.action.attributes()),
        steps=steps,
        score=Score(
            final=sample.final,
            components={"difficulty": sample.action.difficulty, "execution": sample.execution},
            judges=list(sample.judges),
            range=grammar.domain.score_range,
        ),
        commentary=commentary(sample, grammar),
    )


def clip_id(index: int) -> str:
    """A clip's id: its index only, so ids and file names say nothing about the labels."""
    return f"synth-{index:06d}"


def assign_splits(n: int, seed: int, val_fraction: float, test_fraction: float) -> list[str]:
    """Split names for clips ``0..n-1``: a seeded permutation cut into test, val and train."""
    n_test, n_val = round(n * test_fraction), round(n * val_fraction)
    order = np.random.default_rng((seed, 1)).permutation(n)
    splits = ["train"] * n
    for rank, index in enumerate(order):
        if rank < n_test:
            splits[index] = "test"
        elif rank < n_test + n_val:
            splits[index] = "val"
    return splits


def reference_correlations(records: Iterable[Record], split: str | None = "test"
                           ) -> dict[str, float | None]:
    """Spearman rho of two reference predictors against the true final score.

    ``difficulty_oracle`` knows the action's difficulty but not the execution (its ranking is
    that of difficulty x any constant execution); ``quality_reader`` also reads each step's
    quality perfectly and predicts difficulty x judges x mean step quality. ``None`` when the
    split has fewer than three clips or no spread.
    """
    # Imported here: scipy.stats costs a second to import in every rendering worker.
    from scipy.stats import spearmanr

    rows = [r for r in records if split is None or r.split == split]
    if len(rows) < 3:
        return {"difficulty_oracle": None, "quality_reader": None, "clips": len(rows)}
    truth = np.array([r.score.final for r in rows], dtype=float)
    difficulty = np.array([r.score.components["difficulty"] for r in rows], dtype=float)
    reading = np.array([np.mean([s.score for s in r.steps]) * len(r.score.judges) for r in rows],
                       dtype=float)

    def rho(pred: np.ndarray) -> float | None:
        if np.ptp(pred) == 0 or np.ptp(truth) == 0:
            return None
        return round(float(spearmanr(pred, truth).statistic), 4)

    return {"difficulty_oracle": rho(difficulty), "quality_reader": rho(difficulty * reading),
            "clips": len(rows)}


@dataclass
class SynthSummary:
    """What a generation run wrote and how long it took."""

    out_dir: str
    records_path: str
    n: int
    seed: int
    splits: dict[str, int]
    codec: str
    workers: int
    frames: int
    seconds: float
    reference_rho: dict[str, float | None]
    complete: bool = True

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _prepare_out_dir(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: is a file; expected a folder (new or empty) for the benchmark")
    if out.is_dir() and any(out.iterdir()):
        if not (out / SUMMARY_FILE).is_file():
            raise DataError(
                f"{out}: folder is not empty and holds no earlier synth output; "
                "expected a new or empty folder"
            )
        if not overwrite:
            raise DataError(
                f"{out}: holds an earlier synth output; pass --overwrite to replace it"
            )
        # Only what this generator writes is removed, never the user's other files.
        shutil.rmtree(out / VIDEOS_DIR, ignore_errors=True)
        for name in _OWN_FILES:
            (out / name).unlink(missing_ok=True)
    try:
        (out / VIDEOS_DIR).mkdir(parents=True, exist_ok=True)
        # Marks the folder as ours at once, so --overwrite can clear an interrupted run.
        (out / SUMMARY_FILE).write_text('{"complete": false}\n', encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{out}: cannot create the output folder ({exc.strerror})") from None


# Worker state, set once per process so that each task carries only its clip's spec.
_worker_config: tuple[RenderConfig, VideoConfig, str, float] | None = None


def _init_worker(render: RenderConfig, video: VideoConfig, codec: str, fps: float) -> None:
    global _worker_config
    _worker_config = (render, video, codec, fps)


def _render_one(task: tuple[ClipSpec, str]) -> int:
    assert _worker_config is not None
    render, video, codec, fps = _worker_config
    spec, path = task
    frames = render_clip(spec, render)
    write_video(frames, path, fps, codec, video)
    return len(frames)


def _worker_count(config: SynthConfig) -> int:
    if config.n < config.parallel_min_clips:
        return 1
    if hasattr(os, "sched_getaffinity"):
        available = len(os.sched_getaffinity(0))
    else:
        available = os.cpu_count() or 1
    return max(1, min(config.workers or available, config.n))


def generate(
    out_dir: str | Path,
    config: SynthConfig | None = None,
    *,
    n: int | None = None,
    seed: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> SynthSummary:
    """Generate the benchmark in ``out_dir``; ``n`` and ``seed`` override the config's.

    Writes ``videos/*.mp4``, ``records.jsonl`` (written last and atomically, so it never points
    to missing videos), a ``README.md``, a copy of the domain file, the settings used and
    ``synth.json`` (this summary). Raises :class:`~hieroaction.errors.HieroActionError` for a
    bad setting or output folder. Several workers run as spawned processes, so a script that
    calls this needs the usual ``if __name__ == "__main__":`` guard.
    """
    start_time = time.perf_counter()
    config = dataclasses.replace(config or SynthConfig())
    if n is not None:
        config.n = n
    if seed is not None:
        config.seed = seed
    validate_config(config)
    out = Path(out_dir).expanduser().absolute()
    _prepare_out_dir(out, overwrite)
    grammar = load_grammar()
    codec = pick_codec(config.video.codecs)
    fps = float(config.timing.fps)

    samples = [sample_clip(i, config.seed, config, grammar) for i in range(config.n)]
    paths = [out / VIDEOS_DIR / f"{clip_id(s.index)}.mp4" for s in samples]
    tasks = [(s.spec, str(p)) for s, p in zip(samples, paths)]
    workers = _worker_count(config)
    frames = _render_all(tasks, workers, config, codec, fps, progress)

    splits = assign_splits(config.n, config.seed, config.val_fraction, config.test_fraction)
    records = [
        build_record(s, split, str(p) if config.absolute_paths else p.relative_to(out).as_posix(),
                     fps, grammar)
        for s, split, p in zip(samples, splits, paths)
    ]
    if config.full_labels < 1.0:
        records, _ = partial_labels(records, config.full_labels, action_fraction=config.action_labels,
                                    seed=config.seed)
    records_path = out / RECORDS_FILE
    write_jsonl(records, records_path)
    counts = {name: splits.count(name) for name in ("train", "val", "test")}
    summary = SynthSummary(
        out_dir=str(out), records_path=str(records_path), n=config.n, seed=config.seed,
        splits=counts, codec=codec, workers=workers, frames=frames,
        seconds=round(time.perf_counter() - start_time, 2),
        reference_rho=reference_correlations(records, "test"),
    )
    _write_side_files(out, config, grammar, summary)
    return summary


def _render_all(tasks: Sequence[tuple[ClipSpec, str]], workers: int, config: SynthConfig,
                codec: str, fps: float, progress: bool) -> int:
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc="synth", unit="clip")
    total = 0
    try:
        if workers == 1:
            _init_worker(config.render, config.video, codec, fps)
            results: Iterable[int] = map(_render_one, tasks)
        else:
            # spawn, not fork: the caller may hold threads (torch) that fork would copy mid-lock.
            pool = ProcessPoolExecutor(
                max_workers=workers, mp_context=get_context("spawn"), initializer=_init_worker,
                initargs=(config.render, config.video, codec, fps),
            )
            results = pool.map(_render_one, tasks, chunksize=max(1, len(tasks) // (workers * 8)))
        for count in results:
            total += count
            if bar is not None:
                bar.update(1)
    except BrokenProcessPool:
        raise HieroActionError(
            "a rendering worker process stopped; a script that calls generate() must guard its "
            "code with `if __name__ == '__main__':` (workers are spawned), or use workers=1"
        ) from None
    finally:
        if workers > 1:
            pool.shutdown(cancel_futures=True)
        if bar is not None:
            bar.close()
    return total


def _write_side_files(out: Path, config: SynthConfig, grammar: Grammar,
                      summary: SynthSummary) -> None:
    domain_text = (resources.files("hieroaction.domains") / "data" / "synth.yaml").read_text(
        encoding="utf-8")
    (out / "domain.yaml").write_text(domain_text, encoding="utf-8")
    (out / "synth_config.yaml").write_text(
        yaml.safe_dump(config_to_dict(config), sort_keys=False), encoding="utf-8")
    (out / "README.md").write_text(_readme(config, grammar, summary), encoding="utf-8")
    # Last: until now it said the output was incomplete.
    (out / SUMMARY_FILE).write_text(json.dumps(summary.as_dict(), indent=2) + "\n",
                                    encoding="utf-8")


def _readme(config: SynthConfig, grammar: Grammar, summary: SynthSummary) -> str:
    domain = grammar.domain
    t = config.timing
    return f"""# Synthetic AQA benchmark (`hieroaction synth`)

{domain.description}

- clips: {summary.n} (train {summary.splits['train']}, val {summary.splits['val']}, test \
{summary.splits['test']}), seed {summary.seed}
- videos: `{VIDEOS_DIR}/<id>.mp4`, {config.render.size}x{config.render.size} px, {t.fps:g} fps, \
{summary.codec}; each record's `video.path` is {'absolute' if config.absolute_paths else
'relative to this folder'}
- records: `{RECORDS_FILE}` (the unified HieroAction record format), one line per clip
- actions: {len(grammar.actions)} labels `<takeoff>-<turns>-<entry>`; steps: take-off, turns,
  entry, each with its quality (0-10) as the step score
- score: final = difficulty x execution, execution = sum of {grammar.judges} judge scores
  (range {domain.score_range[0]:g} to {domain.score_range[1]:g})
- settings: `synth_config.yaml`; domain description: `domain.yaml`; summary: `{SUMMARY_FILE}`

Reference Spearman rho on the test split: difficulty oracle \
{summary.reference_rho['difficulty_oracle']}, perfect quality reader \
{summary.reference_rho['quality_reader']}.
"""
