"""Settings of ``hieroaction demo``: the time budget, how it is shared, and the recipes it runs.

The demo itself is configured here; what it trains is configured by ordinary SFT and HPL
recipes (``configs/demo/*.yaml``), the same files a user runs with ``hieroaction train``. Every
number below can be changed from a YAML file (``--config``) or as ``key=value`` overrides.
"""

from __future__ import annotations

import math
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
    """How many synthetic clips are generated: ``clips_per_minute`` x the budget, within bounds.

    More clips cost generation and frame-cache time (about 60 ms per clip on a busy 2-core
    machine) but let SFT see fresh clips instead of repeating epochs.
    """

    clips_per_minute: float = 130.0
    min_clips: int = 160
    max_clips: int = 2000
    val_fraction: float = 0.1
    test_fraction: float = 0.2

    def clips(self, budget_minutes: float) -> int:
        """The number of clips for a budget."""
        return int(min(self.max_clips, max(self.min_clips, round(self.clips_per_minute * budget_minutes))))


@dataclass
class BudgetConfig:
    """How the time left after data generation and model building is shared.

    ``weights`` share the remaining time between the stages still to run, so a stage that runs
    over its share shortens the later ones instead of the whole demo running late. With
    ``--ablations`` the ablation's weights are added and the budget grows by their sum (the
    main recipe keeps its time).
    """

    weights: dict[str, float] = field(
        default_factory=lambda: {"sft": 0.70, "hpl": 0.22, "evaluation": 0.08}
    )
    ablation_weights: dict[str, float] = field(
        default_factory=lambda: {"ablation": 0.22, "evaluation": 0.04}
    )
    report_seconds: float = 10.0  # kept back for writing the report
    progress_seconds: float = 15.0  # at most one training-loss line per this many seconds
    sft_evaluations: int = 3  # validation-loss points on the SFT learning curve (the last at the end)
    # Fraction of the HPL share given to its training loop (max_seconds); the rest loads the
    # model and runs the final validation.
    hpl_loop_fraction: float = 0.78

    def __post_init__(self) -> None:
        for name, weights in (("weights", self.weights), ("ablation_weights", self.ablation_weights)):
            for stage, value in weights.items():
                if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                    raise ConfigError(f"budget.{name}.{stage} must be a number >= 0, got {value!r}")
        missing = {"sft", "hpl", "evaluation"} - set(self.weights)
        if missing:
            raise ConfigError(f"budget.weights must give every stage a weight; missing {sorted(missing)}")
        if not 0.0 < self.hpl_loop_fraction <= 1.0:
            raise ConfigError(f"budget.hpl_loop_fraction must be in (0, 1], got {self.hpl_loop_fraction}")
        if self.sft_evaluations < 0:
            raise ConfigError(f"budget.sft_evaluations must be >= 0, got {self.sft_evaluations}")


@dataclass
class DemoEvalConfig:
    """Evaluation on the test split.

    The number of test clips is set from the measured answer time so that every model fits the
    evaluation share; all models and baselines are scored on the same clips (the first N of
    the test split in file order, never chosen by result).
    """

    batch_size: int = 8
    max_new_tokens: int | None = None  # None: the HPL recipe's max_completion_length
    calibration_clips: int = 8  # answered once with the SFT model to time an answer
    min_clips: int = 24
    max_clips: int | None = None  # None: the whole test split
    bootstrap_resamples: int = 1000
    examples: int = 3  # example assessments with their frames in the report


@dataclass
class TargetsConfig:
    """The issue's targets for the default demo, checked in the report (never asserted)."""

    action_accuracy: float = 0.9  # at least
    step_sequence_accuracy: float = 0.8  # at least
    parse_failure_rate: float = 0.01  # at most
    spearman: float = 0.8  # at least, and above the difficulty oracle's


@dataclass
class DemoConfig:
    """Every setting of ``hieroaction demo``."""

    out_dir: str = "runs/demo"
    budget_minutes: float = 15.0  # per seed, for the main recipe (the ablation adds its share)
    seeds: int = 1
    first_seed: int = 0
    ablations: bool = False
    family: str = "qwen2_5_vl"
    # "tiny" learns far more per CPU minute than "small" here (docs/demo.md, "What we changed to make it learn").
    model_size: str = "tiny"
    threads: int = 1  # torch threads; one is fastest on a busy 2-core machine (docs/demo.md)
    overwrite: bool = False
    progress: bool = True
    recipes: RecipeFiles = field(default_factory=RecipeFiles)
    data: DemoDataConfig = field(default_factory=DemoDataConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    evaluation: DemoEvalConfig = field(default_factory=DemoEvalConfig)
    targets: TargetsConfig = field(default_factory=TargetsConfig)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.budget_minutes) and self.budget_minutes > 0):
            raise ConfigError(f"budget_minutes must be a positive number, got {self.budget_minutes}")
        if self.seeds < 1:
            raise ConfigError(f"seeds must be at least 1, got {self.seeds}")
        if self.threads < 1:
            raise ConfigError(f"threads must be at least 1, got {self.threads}")

    @property
    def stage_weights(self) -> dict[str, float]:
        """The weights of the stages after set-up (with the ablation's when it runs)."""
        weights = dict(self.budget.weights)
        if self.ablations:
            for stage, value in self.budget.ablation_weights.items():
                weights[stage] = weights.get(stage, 0.0) + value
        return weights

    @property
    def seconds_per_seed(self) -> float:
        """The wall-clock budget of one seed, with the ablation's extra share."""
        base = sum(self.budget.weights.values())
        total = sum(self.stage_weights.values())
        return 60.0 * self.budget_minutes * (total / base if base > 0 else 1.0)


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
