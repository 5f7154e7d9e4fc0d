"""``hieroaction demo`` as Python: the whole recipe, end to end, as a fixed amount of work.

Per seed, in ``DIR/seed-<s>/``, in the paper's partial-label setting:

1. ``data/``: the synthetic benchmark (:func:`hieroaction.synth.generate`), fully labelled in
   ``records.jsonl``, and ``records_partial.jsonl`` where only a seeded fraction of the training
   clips keeps every label and the rest keep the final score and the action
   (:mod:`hieroaction.data.partial`); one frame cache for both;
2. ``model/``: the small random model (:func:`hieroaction.models.build_tiny`);
3. ``sft/``: SFT cold start (:func:`hieroaction.train.sft.train_sft`) on the fully labelled part;
4. ``sft_all_labels/``: the same SFT with every training clip fully labelled (what full
   annotation buys);
5. ``hpl/``: HPL from ``sft/`` on every training clip, each reward where its truth exists,
   selecting ``best/`` on validation;
6. ``hpl_shuffled/``: the same HPL with each batch's rewards permuted among its completions
   (the null control: what the GRPO step does without the rewards' information);
7. ``hpl_score_only/`` (``--ablations``): GRPO with the final-score reward only, same start;
8. ``eval/<model>/``: :func:`hieroaction.evaluation.runner.evaluate_model` on the same test
   clips for every model, plus the two reference baselines (:mod:`hieroaction.demo.baselines`).

Step and clip counts are fixed (:class:`~hieroaction.demo.config.WorkConfig`, scaled by
``--budget-minutes``), so a seed's numbers do not depend on the machine's load.
``DIR/report.html`` and ``DIR/metrics.json`` are rewritten after every seed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hieroaction.config import config_from_dict, config_to_dict, read_recipe
from hieroaction.data.records import Record, read_jsonl, write_jsonl
from hieroaction.demo.baselines import score_baselines
from hieroaction.demo.budget import Clock, Progress, format_metrics, format_seconds
from hieroaction.demo.config import DemoConfig, find_recipe, resolve_recipe_path
from hieroaction.demo.summary import MODEL_TITLES
from hieroaction.errors import DataError

MARKER = "demo.json"  # marks a folder as a demo output (and says whether the run completed)
REPORT = "report.html"
METRICS = "metrics.json"
TEST_SPLIT = "test"
PARTIAL_RECORDS = "records_partial.jsonl"


@dataclass
class SeedRun:
    """What one seed did and measured (everything here goes to ``metrics.json``)."""

    seed: int
    folder: str
    data: dict[str, Any] = field(default_factory=dict)
    sft: dict[str, Any] = field(default_factory=dict)
    sft_all_labels: dict[str, Any] = field(default_factory=dict)
    hpl: dict[str, Any] = field(default_factory=dict)
    hpl_shuffled: dict[str, Any] = field(default_factory=dict)
    ablation: dict[str, Any] | None = None
    calibration: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    # HTML cards of example assessments (report only; not written to metrics.json)
    examples_html: list[str] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready content (without the example cards)."""
        out = dataclasses.asdict(self)
        out.pop("examples_html")
        return out


@dataclass
class DemoResult:
    """The demo's outcome: every seed, the summary over seeds, and the files written."""

    config: DemoConfig
    seeds: list[SeedRun]
    summary: dict[str, Any]
    report: Path
    metrics: Path
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Output folder and recipes
# ---------------------------------------------------------------------------------------------


def prepare_output(out: Path, overwrite: bool) -> None:
    """Create ``out`` or, with ``overwrite``, clear an earlier demo output there; refuse a file,
    or a non-empty folder that is not a demo output."""
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: is a file; expected a folder (new or empty) for the demo")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise DataError(
                f"{out}: folder is not empty and holds no earlier demo output; choose another --out"
            )
        if not overwrite:
            raise DataError(f"{out}: holds an earlier demo output; pass --overwrite to replace it")
        # Only what the demo writes is removed, never the user's other files.
        for child in out.iterdir():
            if child.is_dir() and child.name.startswith("seed-"):
                shutil.rmtree(child)
        for name in (MARKER, REPORT, METRICS):
            (out / name).unlink(missing_ok=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / MARKER).write_text('{"complete": false}\n', encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{out}: cannot create the output folder ({exc.strerror})") from None


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def load_recipe(cls: type, path: Path, settings: dict[str, Any], model: tuple[str, str] | None = None) -> Any:
    """Read a recipe (with its ``base`` files), set ``settings`` (dotted keys), resolve the
    prompt template and phrase file it names, and build ``cls`` with every key checked. With
    ``model`` (family, size), the frame grid and pixel budget the recipe leaves out are the
    demo model's: its family's grid and the budget its processor is built with
    (``models/data/tiny_sizes.yaml``), so the frames are decoded once, before the model exists."""
    data = read_recipe(path)
    for key, value in settings.items():
        _set(data, key, value)
    section = data.get("data", {})
    for key in ("prompt", "target"):
        sub = section.get(key) or {}
        name = "template" if key == "prompt" else "phrases"
        if sub.get(name):
            sub[name] = resolve_recipe_path(sub[name], path)
    config = config_from_dict(cls, data)
    if model is not None:
        from hieroaction.models.tiny import tiny_spec

        spec = tiny_spec(*model)
        config.data.frames = config.data.frames.fit(
            model[0], min_pixels=spec.min_pixels, max_pixels=spec.max_pixels
        )
    return config


def sft_recipe(path: Path, *, model: Path, output_dir: Path, records: str, seed: int,
               family: str = "qwen2_5_vl", size: str = "tiny") -> Any:
    """The demo's SFT recipe for one seed (model, output, data and seed filled in; frames fitted
    to the ``family`` model of ``size``)."""
    from hieroaction.train.sft import SFTConfig

    return load_recipe(SFTConfig, path, {
        "model": str(model), "output_dir": str(output_dir), "data.records": records, "seed": seed,
        "resume": None,
    }, model=(family, size))


def hpl_recipe(path: Path, *, model: Path, output_dir: Path, records: str, seed: int,
               steps: int, validations: int, val_clips: int, shuffle_rewards: bool = False,
               family: str = "qwen2_5_vl", size: str = "tiny") -> Any:
    """The demo's HPL recipe for one seed: ``steps`` GRPO steps, validated at the start and
    ``validations`` times after it (the last at the end) on ``val_clips`` clips. The demo prints
    its own progress, so the trainer's per-step console lines are turned off (``metrics.jsonl``
    still gets every step)."""
    from hieroaction.train.hpl import HPLConfig

    return load_recipe(HPLConfig, path, {
        "model": str(model), "output_dir": str(output_dir), "data.records": records, "seed": seed,
        "max_steps": steps, "max_seconds": None, "logging_steps": 10**9, "resume": False,
        "eval_steps": max(1, steps // validations) if validations else 0, "eval_samples": val_clips,
        "shuffle_rewards": shuffle_rewards,
    }, model=(family, size))


# ---------------------------------------------------------------------------------------------
# Training with budgets
# ---------------------------------------------------------------------------------------------


def run_sft(config: Any, clock: Clock, progress: Progress, work: Any, steps: int) -> dict[str, Any]:
    """SFT for ``steps`` steps with the recipe's learning-rate schedule; returns what the report
    needs."""
    from transformers import TrainerCallback

    from hieroaction.train.sft import train_sft

    began = clock.now()

    class ProgressLines(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            logs = logs or {}
            text = format_metrics(logs, {"loss": "loss", "eval_loss": "validation loss", "learning_rate": "lr"})
            if text:  # validation points always; training losses at most every progress_seconds
                every = 0.0 if "eval_loss" in logs else work.progress_seconds
                progress.line(f"step {state.global_step}/{steps}: {text}", every=every)

    evaluations = work.sft_evaluations if config.data.eval_split else 0
    run_config = dataclasses.replace(
        config, max_steps=steps, eval_steps=max(1, steps // evaluations) if evaluations else None,
    )
    if not evaluations:
        run_config = dataclasses.replace(run_config, data=dataclasses.replace(config.data, eval_split=None))
    progress.line(
        f"{steps} steps, {config.lr_scheduler} schedule with {config.warmup:g} warm-up, "
        f"batch {config.batch_size}, peak learning rate {config.learning_rate:g}"
    )
    result = train_sft(run_config, callbacks=[ProgressLines()], progress=False)
    seconds = clock.now() - began
    return {
        "steps": result.global_step,
        "seconds_per_step": seconds / max(1, result.global_step),
        "batch_size": config.batch_size,
        "examples_seen": result.global_step * config.batch_size * config.gradient_accumulation_steps,
        "train_examples": result.train_examples,
        "train_labels": config.data.train_labels,
        "train_loss": result.train_loss,
        "learning_rate": config.learning_rate,
        "lr_schedule": f"{config.lr_scheduler}, warm-up {config.warmup:g}, over {steps} steps",
        "seconds": seconds,
        "output_dir": str(result.output_dir),
        "log_history": [
            {k: v for k, v in entry.items() if isinstance(v, (int, float))}
            for entry in result.log_history
        ],
    }


def _hpl_trainer_class() -> type:
    from hieroaction.train.hpl import HPLTrainer

    class ProgressHPLTrainer(HPLTrainer):
        """The HPL trainer with the demo's progress lines (an override point of HPLTrainer)."""

        progress: Progress
        progress_seconds: float = 0.0

        def train_step(self) -> dict[str, Any]:
            out = super().train_step()
            metrics = out["metrics"]
            self.progress.line(f"step {metrics['step']}: " + format_metrics(metrics, {
                "reward/total": "reward", "reward/format": "format",
                "reward/recognition": "recognition", "reward/sequence": "sequence",
                "reward/score": "score", "kl": "kl", "completion_length": "length",
                "step_seconds": "s/step",
            }), every=self.progress_seconds)
            return out

        def evaluate(self) -> dict[str, float]:
            metrics = super().evaluate()
            if metrics:
                self.progress.line(f"validation at step {self.step}: " + format_metrics(metrics, {
                    "val/reward": "reward", "val/reward_sampled": "sampled reward",
                    "val/spearman": "rho", "val/rl2_x100": "R-l2 x100",
                    "val/action_accuracy": "action acc", "val/parse_failure_rate": "parse failures",
                }))
            return metrics

    return ProgressHPLTrainer


def run_hpl(config: Any, clock: Clock, progress: Progress, progress_seconds: float = 0.0) -> dict[str, Any]:
    """HPL as configured; returns its history and models."""
    began = clock.now()
    trainer = _hpl_trainer_class()(config)
    trainer.progress = progress
    trainer.progress_seconds = progress_seconds
    out = trainer.train()
    history = [
        {k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        for row in trainer.history
    ]
    return {
        "steps": out.global_step,
        "best": str(out.best_dir),
        "final": str(out.output_dir),
        "best_metrics": out.best_metrics,
        "final_eval": out.final_eval,
        "max_steps": config.max_steps,
        "shuffle_rewards": config.shuffle_rewards,
        "group_size": config.group_size,
        "prompts_per_step": config.prompts_per_step,
        "seconds": clock.now() - began,
        "history": history,
    }


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics.json entry of one model: every metric and interval, without id lists."""
    return {k: v for k, v in metrics.items() if k not in ("ids", "problems", "per_class")}


def inference_config(data_config: Any, config: DemoConfig, max_new_tokens: int, domain: str) -> Any:
    """How the demo's models answer (evaluation and calibration alike): the training frames and
    prompt, on the CPU in fp32."""
    from hieroaction.inference import InferenceConfig

    return InferenceConfig(
        frames=data_config.frames.to_dict(), prompt=data_config.prompt, max_new_tokens=max_new_tokens,
        batch_size=config.evaluation.batch_size, device="cpu", dtype="float32", domain=domain,
    )


def calibrate_hpl(model: Path, loaded: Any, data_config: Any, config: DemoConfig, max_new_tokens: int,
                  progress: Progress) -> dict[str, Any]:
    """Calibrate the HPL model's score intervals on the validation split (written into its
    folder, so evaluation reports their test coverage), and the difficulty oracle the same way."""
    from hieroaction.demo.baselines import calibrated_oracle
    from hieroaction.inference import calibrate

    val_split = data_config.eval_split or "val"
    val = loaded[val_split].records
    settings = config.calibration
    calibration = calibrate(
        model, val, split=val_split, samples=settings.samples, coverage=settings.coverage,
        config=inference_config(data_config, config, max_new_tokens, val[0].domain),
        frames_cache=data_config.cache_path, base_dir=data_config.base_dir, seed=0,
    )
    progress.line(calibration.summary())
    oracle = calibrated_oracle(loaded[data_config.train_split].records, val,
                               loaded[TEST_SPLIT].records[: config.evaluation.test_clips], settings.coverage)
    return {"hpl": {"quantile": calibration.quantile, "n": calibration.n, "missing": calibration.missing,
                    "method": calibration.method, "coverage": calibration.coverage},
            "difficulty_oracle": oracle}


def evaluate_models(
    models: dict[str, Path],
    test: list[Record],
    train: list[Record],
    data_config: Any,
    folder: Path,
    config: DemoConfig,
    max_new_tokens: int,
    clock: Clock,
    progress: Progress,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any], list[str]]:
    """Every model and baseline on the same test clips (the first ``evaluation.test_clips``).

    Returns (metrics per model, what was evaluated, HTML cards of example assessments of the
    last model).
    """
    from hieroaction.evaluation.predictions import truth_from_record
    from hieroaction.evaluation.runner import EvalConfig, evaluate_model
    from hieroaction.evaluation.scoring import BootstrapConfig, ScoringConfig
    from hieroaction.inference import Assessor
    from hieroaction.reports import ReportConfig, assessment_html, choose_examples
    from hieroaction.video import FrameCache

    began = clock.now()
    settings = config.evaluation
    inference = inference_config(data_config, config, max_new_tokens, test[0].domain)
    eval_config = EvalConfig(
        inference=inference,
        scoring=ScoringConfig(bootstrap=BootstrapConfig(n_resamples=settings.bootstrap_resamples)),
        report=ReportConfig(examples=settings.examples),
    )
    cache_dir = data_config.cache_path
    cache = FrameCache(cache_dir, base_dir=data_config.base_dir)

    names = list(models)
    n = len(test) if settings.test_clips is None else min(settings.test_clips, len(test))
    subset = test[:n]
    progress.line(f"{n} of {len(test)} test clips for {len(names)} models")
    eval_dir = folder / "eval"
    subset_file = eval_dir / "test_subset.jsonl"
    write_jsonl(subset, subset_file)

    metrics: dict[str, dict[str, Any]] = {}
    scores: dict[str, list[list[Any]]] = {}
    examples: list[str] = []
    by_id = {r.id: r for r in subset}
    for index, name in enumerate(names):
        progress.line(f"answering {n} test clips with {MODEL_TITLES.get(name, name)}")
        assessor = Assessor.from_pretrained(models[name], inference)
        run = evaluate_model(
            models[name], subset_file, eval_dir / name, config=eval_config,
            frames_cache=cache_dir, progress=False, assessor=assessor,
        )
        metrics[name] = _headline(run.evaluation.metrics)
        # per-clip (id, true, scored prediction): the paired bootstrap of the summary
        scores[name] = [[i, t, p] for i, t, p, _ in run.evaluation.scores]
        progress.line(f"{name}: " + format_metrics(run.evaluation.metrics, {
            "spearman": "rho", "rl2_x100": "R-l2 x100", "action_accuracy": "action acc",
            "step_sequence_accuracy": "step seq acc", "parse_failure_rate": "parse failures",
        }))
        if index == len(names) - 1 and settings.examples:
            results = {r.record_id: r for r in run.results}
            for row_id, why in choose_examples(run.evaluation, settings.examples):
                result, record = results[row_id], by_id[row_id]
                if result.error is None:
                    result.clip = assessor.load_clip(record, cache)
                truth = truth_from_record(record, default_fps=result.fps)
                examples.append(
                    f'<p class="muted">{why} ({MODEL_TITLES.get(name, name)})</p>'
                    + assessment_html(result, truth, eval_config.report)
                )
                result.clip = None
        del assessor
    truths = [truth_from_record(r) for r in subset]
    for name, evaluation in score_baselines(train, subset, truths, eval_config.scoring).items():
        metrics[name] = _headline(evaluation.metrics)
    info = {
        "test_clips": n,
        "test_split_clips": len(test),
        "scores": scores,
        "max_new_tokens": max_new_tokens,
        "subset_file": str(subset_file),
        "seconds": clock.now() - began,
    }
    return metrics, info, examples


# ---------------------------------------------------------------------------------------------
# One seed, all seeds
# ---------------------------------------------------------------------------------------------


def _load() -> float:
    return round(os.getloadavg()[0], 2)


class _Stage:
    """Times a stage, records the machine's load average at its start and end, and sends what
    the libraries print (trainer log dicts, progress bars, warnings) to ``logs/<stage>.log``,
    so the console shows the demo's own progress lines."""

    def __init__(self, run: SeedRun, clock: Clock, progress: Progress, name: str, title: str,
                 detail: str = "") -> None:
        self.run, self.clock, self.name = run, clock, name
        progress.stage(title, detail)
        self._log = Path(run.folder) / "logs" / f"{name}.log"
        self._redirect: contextlib.ExitStack | None = None

    def __enter__(self) -> _Stage:
        self.began = self.clock.now()
        self.load = _load()
        self._log.parent.mkdir(parents=True, exist_ok=True)
        stack = contextlib.ExitStack()
        handle = stack.enter_context(self._log.open("a", encoding="utf-8"))
        stack.enter_context(contextlib.redirect_stdout(handle))
        stack.enter_context(contextlib.redirect_stderr(handle))
        self._redirect = stack
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._redirect is not None:
            self._redirect.close()
        seconds = self.clock.now() - self.began
        self.run.timings.append({"stage": self.name, "seconds": round(seconds, 2),
                                 "load_start": self.load, "load_end": _load()})


@dataclass
class _TrainingStage:
    """One training run of a seed that needs nothing from the others of its group.

    ``name`` is its :class:`SeedRun` field, its ``logs/<name>.log`` and its ``timings`` entry;
    ``work(clock, progress)`` returns what it measured (a partial of a module-level function,
    so it can run in another process)."""

    name: str
    title: str
    detail: str
    work: Callable[[Clock, Progress], dict[str, Any]]


def _run_stage(stage: _TrainingStage, run: SeedRun, clock: Clock, progress: Progress) -> None:
    with _Stage(run, clock, progress, stage.name, stage.title, stage.detail):
        setattr(run, stage.name, stage.work(clock, progress))


@contextlib.contextmanager
def _stage_pool(config: DemoConfig, most: int, jobs: int | None = None) -> Iterator[Any]:
    """Processes for a seed's independent training runs: ``jobs`` (default
    :meth:`DemoConfig.stage_jobs`), at most ``most`` (the largest group), each spawned (a clean
    torch) and kept for every group, so each loads the libraries once; ``None`` when there is
    one, and the runs stay in this process."""
    processes = min(jobs or config.stage_jobs(), most)
    if processes <= 1:
        yield None
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                             initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        yield pool


def _run_stages(stages: list[_TrainingStage], run: SeedRun, clock: Clock, progress: Progress,
                config: DemoConfig, pool: Any) -> None:
    """Independent training runs of a seed, their outcomes and timings recorded in ``run`` in the
    order given: one after the other in this process (``pool`` None), or at once in the
    processes of ``pool`` (:func:`_stage_pool`), each with ``config.threads`` torch threads.
    Their work is fixed, so where they run changes the time, not the numbers. The first failure
    stops the demo."""
    if pool is None:
        for stage in stages:
            _run_stage(stage, run, clock, progress)
        return
    from concurrent.futures import as_completed

    futures = [
        pool.submit(_run_stage_process, stage, run.seed, run.folder, clock,
                    progress.stage_index + 1 + i, progress.stage_count, config)
        for i, stage in enumerate(stages)
    ]
    try:
        for future in as_completed(futures):
            future.result()
    finally:
        for future in futures:
            future.cancel()
    progress.stage_index += len(stages)
    for stage, future in zip(stages, futures):
        outcome, timing = future.result()
        setattr(run, stage.name, outcome)
        run.timings.append(timing)


def _run_stage_process(stage: _TrainingStage, seed: int, folder: str, clock: Clock, index: int,
                       stage_count: int, config: DemoConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """One training run in a worker process of :func:`_run_stages`: its outcome and its timing
    (its progress lines say the seed and the stage, ``index`` of ``stage_count``)."""
    _prepare_process(config)
    progress = Progress(config.progress)
    progress.start_seed(clock, f"seed {seed}", stage_count)
    progress.stage_index = index - 1
    run = SeedRun(seed=seed, folder=folder)
    _run_stage(stage, run, clock, progress)
    return getattr(run, stage.name), run.timings[0]


def run_seed(seed: int, config: DemoConfig, folder: Path, progress: Progress,
             stage_jobs: int | None = None) -> SeedRun:
    """The whole recipe for one seed: a fixed amount of work (``config.work``); ``stage_jobs``
    of its training runs at once (default :meth:`DemoConfig.stage_jobs`)."""
    from hieroaction.data.partial import partial_labels
    from hieroaction.models import build_tiny
    from hieroaction.synth import SynthConfig, generate
    from hieroaction.train.data import load_examples

    clock = Clock()
    work = config.work
    sft_steps = work.steps(work.sft_steps, config.budget_minutes)
    hpl_steps = work.steps(work.hpl_steps, config.budget_minutes)
    grpo_runs = [("hpl", "hpl", "HPL", False), ("hpl_shuffled", "hpl_shuffled", "HPL, shuffled rewards", True)]
    if config.ablations:
        grpo_runs.append(("ablation", "hpl_score_only", "GRPO score-only ablation", False))
    progress.start_seed(clock, f"seed {seed}", 6 + len(grpo_runs) + int(config.calibration.enabled))
    run = SeedRun(seed=seed, folder=str(folder))
    sft_path = find_recipe(config.recipes.sft)
    model_kind = {"family": config.family, "size": config.model_size}

    n_clips = config.data.clips(config.budget_minutes)
    with _Stage(run, clock, progress, "data", "data", f"generating {n_clips} synthetic clips"):
        summary = generate(
            folder / "data",
            SynthConfig(n=n_clips, seed=seed, val_fraction=config.data.val_fraction,
                        test_fraction=config.data.test_fraction),
            progress=False,
        )
        full_records = summary.records_path
        records = read_jsonl(full_records)
        reduced, labels = partial_labels(records, config.data.full_labels,
                                         action_fraction=config.data.action_labels, seed=seed)
        partial_records = str(folder / "data" / PARTIAL_RECORDS)
        write_jsonl(reduced, partial_records)
        progress.line(f"{summary.n} clips in {summary.seconds:.0f} s; {labels.line()}")
        sft_config = sft_recipe(sft_path, model=folder / "model", output_dir=folder / "sft",
                                records=partial_records, seed=seed, **model_kind)
        sft_config.data.train_labels = "full"
        splits = [sft_config.data.train_split, sft_config.data.eval_split or "val", TEST_SPLIT]
        progress.line("decoding their frames into the cache")
        loaded = load_examples(dataclasses.replace(sft_config.data, records=full_records, train_labels="any"),
                               splits, targets=False, progress=False, limits={})
        run.data = {
            "clips": summary.n, "splits": summary.splits, "reference_rho": summary.reference_rho,
            "generate_seconds": summary.seconds, "records": full_records,
            "records_partial": partial_records, "labels": dataclasses.asdict(labels),
            "frames": sft_config.data.frames.to_dict(),
        }

    with _Stage(run, clock, progress, "model", "model", f"building the {config.model_size} {config.family} model"):
        build_tiny(config.family, folder / "model", size=config.model_size, seed=seed)

    # Both SFT runs start from model/, every GRPO run from sft/: each group's runs are
    # independent, so they may run at once (_run_stages).
    all_labels = sft_recipe(sft_path, model=folder / "model", output_dir=folder / "sft_all_labels",
                            records=full_records, seed=seed, **model_kind)
    with _stage_pool(config, max(2, len(grpo_runs)), stage_jobs) as pool:
        _run_stages([
            _TrainingStage("sft", "SFT (labelled part)",
                           f"{sft_steps} steps on the {labels.full} fully labelled training clips",
                           functools.partial(run_sft, sft_config, work=work, steps=sft_steps)),
            _TrainingStage("sft_all_labels", "SFT (every clip labelled)",
                           f"{sft_steps} steps on all {labels.train} training clips, fully labelled",
                           functools.partial(run_sft, all_labels, work=work, steps=sft_steps)),
        ], run, clock, progress, config, pool)

        grpo_stages = []
        for stage, out_name, title, shuffled in grpo_runs:
            recipe = find_recipe(config.recipes.ablation if stage == "ablation" else config.recipes.hpl)
            hpl_config = hpl_recipe(
                recipe, model=folder / "sft", output_dir=folder / out_name, records=partial_records,
                seed=seed, steps=hpl_steps, validations=work.hpl_validations, val_clips=work.val_clips,
                shuffle_rewards=shuffled, **model_kind,
            )
            grpo_stages.append(_TrainingStage(
                stage, title, f"{hpl_steps} GRPO steps from the SFT checkpoint on all {labels.train} training clips",
                functools.partial(run_hpl, hpl_config, progress_seconds=work.progress_seconds),
            ))
            if stage == "hpl":
                max_new_tokens = hpl_config.max_completion_length
        _run_stages(grpo_stages, run, clock, progress, config, pool)

    models = {"sft": folder / "sft", "sft_all_labels": folder / "sft_all_labels",
              "hpl_shuffled": Path(run.hpl_shuffled["best"])}
    if run.ablation is not None:
        models["grpo_score_only"] = Path(run.ablation["best"])
    models["hpl"] = Path(run.hpl["best"])  # last: its answers give the report's examples
    max_new_tokens = config.evaluation.max_new_tokens or max_new_tokens
    if config.calibration.enabled:
        with _Stage(run, clock, progress, "calibration", "calibration",
                    f"score intervals of HPL on the validation split ({config.calibration.coverage:g})"):
            from hieroaction.inference.calibration import MIN_CLIPS

            val = loaded[sft_config.data.eval_split or "val"].records
            if sum(r.score.final is not None for r in val) < MIN_CLIPS:
                reason = f"{len(val)} validation clips; a calibration needs at least {MIN_CLIPS}"
                progress.line(f"skipped: {reason}")
                run.calibration = {"skipped": reason}
            else:
                run.calibration = calibrate_hpl(models["hpl"], loaded, sft_config.data, config,
                                                max_new_tokens, progress)
    with _Stage(run, clock, progress, "evaluation", "evaluation",
                f"{len(models)} models and 2 baselines on the same test clips"):
        run.models, run.evaluation, run.examples_html = evaluate_models(
            models, loaded[TEST_SPLIT].records, loaded[sft_config.data.train_split].records,
            sft_config.data, folder, config, max_new_tokens, clock, progress,
        )
    run.seconds = clock.elapsed()
    return run


def run_demo(config: DemoConfig, progress: Progress | None = None) -> DemoResult:
    """Run the demo as configured; the Python entry point of ``hieroaction demo``.

    Raises :class:`~hieroaction.errors.HieroActionError` (one sentence) for a bad output
    folder, a missing recipe or a bad setting, before anything is trained.
    """
    from hieroaction.demo.report import write_outputs
    from hieroaction.demo.summary import summarise
    from hieroaction.train.hpl import HPLConfig
    from hieroaction.train.sft import SFTConfig

    progress = progress or Progress(config.progress)
    started = time.monotonic()
    out = Path(config.out_dir).expanduser()
    # Every recipe is read and checked before the first clip is rendered.
    for path, cls in ((config.recipes.sft, SFTConfig), (config.recipes.hpl, HPLConfig),
                      *([(config.recipes.ablation, HPLConfig)] if config.ablations else [])):
        load_recipe(cls, find_recipe(path), {"model": "placeholder", "output_dir": "placeholder",
                                             "data.records": "placeholder"})
    prepare_output(out, config.overwrite)
    _prepare_process(config)
    info = {
        "command": " ".join(["hieroaction"] + sys.argv[1:]) if sys.argv and sys.argv[0].endswith("hieroaction") else None,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpu_count": os.cpu_count(),
        "torch_threads": config.threads,
        "load_average_start": list(os.getloadavg()),
        "config": config_to_dict(config),
    }
    seeds = [config.first_seed + i for i in range(config.seeds)]
    progress.note(
        f"{len(seeds)} seed(s), each {config.work.steps(config.work.sft_steps, config.budget_minutes)} steps x 2 "
        f"SFT runs and {config.work.steps(config.work.hpl_steps, config.budget_minutes)} steps x "
        f"{2 + int(config.ablations)} GRPO runs; output in {out}"
    )
    jobs = config.seed_jobs()
    info["jobs"] = jobs
    info["stage_jobs"] = max(seed_stage_jobs(len(seeds), jobs, config.total_jobs()))
    runs: list[SeedRun] = []
    result: DemoResult | None = None
    for run in _seed_runs(seeds, config, out, progress, jobs):
        runs = sorted([*runs, run], key=lambda r: r.seed)
        info["seconds"] = time.monotonic() - started
        info["load_average_end"] = list(os.getloadavg())
        summary = summarise(runs, config)
        report, metrics = write_outputs(out, runs, summary, config, info)
        result = DemoResult(config, runs, summary, report, metrics, info["seconds"], info)
        progress.note(f"seed {run.seed} done in {format_seconds(run.seconds)}; report: {report}")
    assert result is not None
    (out / MARKER).write_text(json.dumps({"complete": True, "seconds": result.seconds}) + "\n",
                              encoding="utf-8")
    return result


def _seed_runs(seeds: list[int], config: DemoConfig, out: Path, progress: Progress,
               jobs: int) -> Iterator[SeedRun]:
    """Each seed's run as it finishes: one after the other in this process, or ``jobs`` at a
    time, each in a process of its own (spawned: a clean torch with ``config.threads`` threads).
    A seed's work is fixed, so where it runs changes its time, not its numbers. The first
    failure stops the demo; the seeds already reported are kept in ``out``."""
    if jobs <= 1:
        for seed in seeds:
            yield run_seed(seed, config, out / f"seed-{seed}", progress)
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    progress.note(f"{len(seeds)} seeds, {jobs} at a time (one process each, {config.threads} torch thread(s))")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        pending = {
            pool.submit(_run_seed_process, seed, config, out / f"seed-{seed}", stage_jobs)
            for seed, stage_jobs in zip(seeds, seed_stage_jobs(len(seeds), jobs, config.total_jobs()))
        }
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: f.result().seed if f.exception() is None else -1):
                    yield future.result()
        finally:
            for future in pending:
                future.cancel()


def seed_stage_jobs(seeds: int, jobs: int, total: int) -> list[int]:
    """How many training runs each seed runs at once when ``seeds`` seeds run ``jobs`` at a time
    on ``total`` processes: seeds start in rounds of ``jobs``, and a last round with fewer seeds
    gives each of them the processes the others leave (3 seeds on 2 cores: seeds 0 and 1 one
    run at a time each, then seed 2 its runs in pairs, not one core idle)."""
    out = []
    for i in range(seeds):
        in_round = min(jobs, seeds - (i // jobs) * jobs)
        out.append(max(1, total // in_round))
    return out


def _run_seed_process(seed: int, config: DemoConfig, folder: Path, stage_jobs: int | None = None) -> SeedRun:
    """One seed in a worker process of :func:`_seed_runs`."""
    _prepare_process(config)
    return run_seed(seed, config, folder, Progress(config.progress), stage_jobs)


def die_with_parent(parent: int) -> None:
    """A worker's first act (Linux): end when ``parent``, the process that started it, ends.

    Without it, a demo stopped by a signal to its main process (``kill``, a scheduler's time
    limit) left its seed and stage workers training on, and writing, as orphans. Ctrl-C stops
    them anyway: it signals the whole process group. Elsewhere nothing is set."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        if libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        return
    if os.getppid() != parent:  # the parent ended before the setting took hold
        os._exit(1)


def _prepare_process(config: DemoConfig) -> None:
    """What the demo's process and each of its workers set first: ``config.threads`` torch
    threads and quiet libraries."""
    import torch

    torch.set_num_threads(config.threads)
    _quiet_libraries()


def _quiet_libraries() -> None:
    """Progress bars of model saving and loading would interleave with the demo's lines."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


__all__ = [
    "DemoResult",
    "SeedRun",
    "evaluate_models",
    "hpl_recipe",
    "load_recipe",
    "prepare_output",
    "run_demo",
    "run_hpl",
    "run_seed",
    "run_sft",
    "sft_recipe",
]
