"""Settings of ``hieroaction demo``: the time budget, how it is shared, and the recipes it runs.

The demo itself is configured here; what it trains is configured by ordinary SFT and HPL
recipes (``configs/demo/*.yaml``), the same files a user runs with ``hieroaction train``. Every
number below can be changed from a YAML file (``--config``) or as ``key=value`` overrides.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from hieroaction.errors import ConfigError

# Recipe files, relative to the repository's configs/ folder (or to the working directory).
DEFAULT_SFT_RECIPE = "configs/demo/sft.yaml"
DEFAULT_HPL_RECIPE = "configs/demo/hpl.yaml"
DEFAULT_ABLATION_RECIPE = "configs/demo/hpl_score_only.yaml"


@dataclass
class RecipeFiles:
    """The SFT and HPL recipes the demo runs (paths are tried as given, then from the
    repository root, so the demo also starts outside the source folder of an editable install)."""

    sft: str = DEFAULT_SFT_RECIPE
    hpl: str = DEFAULT_HPL_RECIPE
    ablation: str = DEFAULT_ABLATION_RECIPE  # GRPO with the final-score reward only


@dataclass
class DemoDataConfig:
    """The synthetic benchmark: ``clips_per_minute`` x the budget clips (within bounds), and the
    paper's partial-label setting (:mod:`hieroaction.data.partial`).

    ``full_labels``: the fraction F of training clips that keep every label (SFT trains on
    them); the rest keep the final score, and the action label for the fraction
    ``action_labels`` of them (HPL trains on all). ``sft_all_labels`` is SFT with every clip
    fully labelled: what full annotation buys.
    """

    clips_per_minute: float = 130.0
    min_clips: int = 160
    max_clips: int = 2000
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    full_labels: float = 0.25
    action_labels: float = 1.0

    def __post_init__(self) -> None:
        from hieroaction.data.partial import check_fraction

        check_fraction("data.full_labels", self.full_labels)
        check_fraction("data.action_labels", self.action_labels, zero_ok=True)

    def clips(self, budget_minutes: float) -> int:
        """The number of clips for a budget."""
        return int(min(self.max_clips, max(self.min_clips, round(self.clips_per_minute * budget_minutes))))


@dataclass
class WorkConfig:
    """The demo's fixed amount of work at ``reference_minutes`` of budget: step counts and clip
    counts, never the wall clock, so the same seed gives the same numbers on an idle and a
    loaded machine (one torch thread); ``--budget-minutes`` scales the step counts.

    Timed on the 2-core development machine: an SFT step of the tiny model (batch 8) takes about
    0.18 s, a GRPO step (2 prompts x G 8) about 1.2 s, a validation of the 195 validation clips
    (greedy and sampled answers, 8 clips per generate call) about 30 s.
    """

    reference_minutes: float = 15.0
    sft_steps: int = 2400  # each of the two SFT runs (labelled part; every clip fully labelled)
    hpl_steps: int = 180  # each GRPO run (HPL, the shuffled control, the ablation)
    hpl_validations: int = 4  # validations after the start's, evenly spaced, the last at the end
    val_clips: int = 0  # validation clips each HPL validation answers (best/ is chosen on them; 0: all)
    sft_evaluations: int = 3  # validation-loss points on the SFT learning curve
    progress_seconds: float = 15.0  # at most one training line per this many seconds

    def __post_init__(self) -> None:
        for name in ("sft_steps", "hpl_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"work.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("hpl_validations", "sft_evaluations", "val_clips"):
            if getattr(self, name) < 0:
                raise ConfigError(f"work.{name} must be >= 0, got {getattr(self, name)}")
        if not (math.isfinite(self.reference_minutes) and self.reference_minutes > 0):
            raise ConfigError(f"work.reference_minutes must be positive, got {self.reference_minutes}")

    def steps(self, steps: int, budget_minutes: float) -> int:
        """``steps`` scaled from the reference budget to ``budget_minutes`` (at least 1)."""
        return max(1, round(steps * budget_minutes / self.reference_minutes))


@dataclass
class DemoEvalConfig:
    """Evaluation on the test split.

    Every model and baseline is scored on the same clips: the first ``test_clips`` of the test
    split in file order, never chosen by result.
    """

    batch_size: int = 8
    max_new_tokens: int | None = None  # None: the HPL recipe's max_completion_length
    test_clips: int | None = 200  # the first N clips of the test split (None: all of it)
    bootstrap_resamples: int = 1000
    examples: int = 3  # example assessments with their frames in the report


@dataclass
class DemoCalibrationConfig:
    """Calibrated score intervals for the HPL model (``hieroaction.inference.calibrate``) on the
    validation split, and the difficulty oracle calibrated the same way for comparison."""

    enabled: bool = True
    coverage: float = 0.9
    samples: int = 1  # 1: the absolute error; N > 1: normalised by the spread of N sampled scores

    def __post_init__(self) -> None:
        if not 0 < self.coverage < 1:
            raise ConfigError(f"calibration.coverage must be in (0, 1), got {self.coverage}")
        if self.samples < 1:
            raise ConfigError(f"calibration.samples must be at least 1, got {self.samples}")


@dataclass
class TargetsConfig:
    """The issue's targets for the default demo, checked in the report (never asserted)."""

    action_accuracy: float = 0.9  # at least
    step_sequence_accuracy: float = 0.8  # at least
    parse_failure_rate: float = 0.01  # at most
    spearman: float = 0.8  # at least, and above the difficulty oracle's
    gap_recovered: float = 0.5  # HPL recovers at least this share of the rho gap sft -> sft_all_labels
    coverage_tolerance: float = 0.03  # test coverage of HPL's intervals within this of the nominal


@dataclass
class DemoConfig:
    """Every setting of ``hieroaction demo``."""

    out_dir: str = "runs/demo"
    budget_minutes: float = 15.0  # scales the step counts of `work` (15: the reference amount)
    seeds: int = 1
    first_seed: int = 0
    ablations: bool = False
    family: str = "qwen2_5_vl"
    # "tiny" learns far more per CPU minute than "small" here (docs/demo.md, "What we changed to make it learn").
    model_size: str = "tiny"
    threads: int = 1  # torch threads; one is fastest on a busy 2-core machine (docs/demo.md)
    # processes at once (0: as many as the cores allow at `threads` each): seeds, each in its
    # own process, and within a seed the independent training runs (the two SFT runs, then the
    # GRPO runs) with the processes left over; the numbers are the same either way, only the
    # time changes
    jobs: int = 0
    overwrite: bool = False
    progress: bool = True
    recipes: RecipeFiles = field(default_factory=RecipeFiles)
    data: DemoDataConfig = field(default_factory=DemoDataConfig)
    work: WorkConfig = field(default_factory=WorkConfig)
    evaluation: DemoEvalConfig = field(default_factory=DemoEvalConfig)
    calibration: DemoCalibrationConfig = field(default_factory=DemoCalibrationConfig)
    targets: TargetsConfig = field(default_factory=TargetsConfig)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.budget_minutes) and self.budget_minutes > 0):
            raise ConfigError(f"budget_minutes must be a positive number, got {self.budget_minutes}")
        if self.seeds < 1:
            raise ConfigError(f"seeds must be at least 1, got {self.seeds}")
        if self.threads < 1:
            raise ConfigError(f"threads must be at least 1, got {self.threads}")
        if self.jobs < 0:
            raise ConfigError(f"jobs must be >= 0 (0: as many as the cores allow), got {self.jobs}")

    def total_jobs(self) -> int:
        """How many processes run at once: ``jobs``, or (0) the cores over ``threads``."""
        return self.jobs or max(1, (os.cpu_count() or 1) // self.threads)

    def seed_jobs(self) -> int:
        """How many seeds run at once: :meth:`total_jobs`, at most ``seeds``."""
        return max(1, min(self.total_jobs(), self.seeds))

    def stage_jobs(self) -> int:
        """How many independent training runs of one seed run at once (each in a process of its
        own): the processes :meth:`seed_jobs` leaves over, at least 1 (at most the runs there
        are: the demo caps it)."""
        return max(1, self.total_jobs() // self.seed_jobs())


def find_recipe(path: str) -> Path:
    """A recipe file: ``path`` as given, else relative to the repository root (the folder that
    holds ``configs/``, found from this package's location in a source checkout)."""
    given = Path(path).expanduser()
    if given.is_file():
        return given.resolve()
    if not given.is_absolute():
        root = Path(__file__).resolve().parents[3]
        candidate = root / given
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"{path}: no such recipe file (run the demo from the repository root, or give the "
        "recipe's path with recipes.sft= / recipes.hpl= / recipes.ablation=)"
    )


def resolve_recipe_path(value: str | None, recipe: Path) -> str | None:
    """A file named inside a recipe (a prompt template, a phrase file): as given when it exists
    (relative to the working directory, as every recipe path is), else relative to the
    repository root the recipe lives in."""
    if value is None:
        return None
    given = Path(value).expanduser()
    if given.exists() or given.is_absolute():
        return str(given)
    # configs/demo/x.yaml -> the repository root is two folders up
    for root in recipe.parents:
        candidate = root / given
        if candidate.exists():
            return str(candidate)
    return str(given)
