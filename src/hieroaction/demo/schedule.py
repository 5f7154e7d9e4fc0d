"""SFT on a wall clock: the recipe's learning-rate schedule run over a stage's seconds.

A step count planned from a few timed steps is fragile on a shared machine: the demo's first
runs planned 52 SFT steps from steps timed during a load spike and then finished with half of
the stage's time unused. Here the schedule's shape comes from the recipe (``warmup`` fraction,
``lr_scheduler`` cosine / linear / constant) and its progress is the fraction of the stage's
time spent, so training ends, with the rate annealed, when the time is up, however fast the
machine turns out to be. The same callback triggers the validation-loss points and stops the
trainer before the deadline, keeping room for the final validation and the save.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

from hieroaction.errors import ConfigError

SHAPES = ("cosine", "linear", "constant", "constant_with_warmup")


def schedule_factor(shape: str, progress: float, warmup: float) -> float:
    """The learning-rate multiplier at ``progress`` (0 to 1) of the run: a linear warm-up over
    the first ``warmup`` fraction, then ``shape`` (cosine and linear decay to 0 at 1)."""
    if shape not in SHAPES:
        raise ConfigError(f"lr_scheduler {shape!r} cannot run on a wall clock; expected one of {list(SHAPES)}")
    p = min(max(progress, 0.0), 1.0)
    if warmup > 0 and p < warmup:
        return p / warmup
    if shape.startswith("constant"):
        return 1.0
    q = (p - warmup) / (1.0 - warmup) if warmup < 1 else 1.0
    if shape == "linear":
        return 1.0 - q
    return 0.5 * (1.0 + math.cos(math.pi * q))


class WallClockSchedule(TrainerCallback):
    """Runs the learning-rate schedule over ``[train start, stop_at]`` and stops in time.

    Args:
        stop_at: the stage's deadline (``now()`` clock).
        shape: the recipe's ``lr_scheduler``.
        warmup: the recipe's ``warmup`` as a fraction of the run (values >= 1 are steps).
        evaluations: validation points spread over the run (the last one at the stop); 0: none.
        on_log: called with ``(step, logs)`` for every log entry (progress lines).
        now: the time source.
        margin_s: seconds kept free at the end for the save (the final validation's measured
            time is added once known).

    The trainer must use a ``LambdaLR`` schedule (``lr_scheduler: constant``): its lambda is
    replaced by this callback's time-based factor, so the logged learning rate is the one applied.
    """

    def __init__(
        self,
        stop_at: float,
        shape: str = "cosine",
        warmup: float = 0.0,
        evaluations: int = 0,
        on_log: Callable[[int, dict[str, Any]], None] | None = None,
        now: Callable[[], float] = time.monotonic,
        margin_s: float = 3.0,
    ) -> None:
        schedule_factor(shape, 0.0, 0.0)  # an unsupported shape fails before training
        self.stop_at = stop_at
        self.shape = shape
        self.warmup_fraction = warmup if warmup < 1 else 0.0
        self.warmup_steps = int(warmup) if warmup >= 1 else 0
        self.evaluations = evaluations
        self.on_log_fn = on_log
        self.now = now
        self.margin_s = margin_s
        self.step_times: list[float] = []
        self.eval_seconds: float | None = None
        self.stopped_by_deadline = False
        self.lr_history: list[tuple[int, float]] = []
        self._started = 0.0
        self._step_began = 0.0
        self._eval_began: float | None = None
        self._evaluated = 0
        self._global_step = 0

    # -- the schedule --------------------------------------------------------------------------

    def end(self) -> float:
        """When the schedule reaches 0: the deadline less the final validation and the save."""
        return self.stop_at - self.margin_s - (self.eval_seconds or 0.0)

    def progress(self) -> float:
        """Fraction of the run's time spent."""
        span = self.end() - self._started
        return 1.0 if span <= 0 else (self.now() - self._started) / span

    def factor(self, _step: int = 0) -> float:
        """The multiplier of the base learning rate now (a ``LambdaLR`` lambda)."""
        value = schedule_factor(self.shape, self.progress(), self.warmup_fraction)
        if self.warmup_steps:
            value *= min(1.0, (self._global_step + 1) / self.warmup_steps)
        return value

    # -- trainer events ------------------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, optimizer: Any = None,
                       lr_scheduler: Any = None, **kwargs: Any) -> None:
        import torch

        self._started = self.now()
        if not isinstance(lr_scheduler, torch.optim.lr_scheduler.LambdaLR):
            raise ConfigError("the wall-clock schedule needs lr_scheduler: constant in the SFT run")
        lr_scheduler.lr_lambdas = [self.factor] * len(lr_scheduler.lr_lambdas)
        for group, base in zip(optimizer.param_groups, lr_scheduler.base_lrs):
            group["lr"] = base * self.factor()
        lr_scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]

    def on_step_begin(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kwargs: Any) -> None:
        self._step_began = self.now()
        if optimizer is not None:
            self.lr_history.append((state.global_step + 1, float(optimizer.param_groups[0]["lr"])))

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        finished = self.now()
        self.step_times.append(finished - self._step_began)
        self._global_step = state.global_step
        step = statistics.median(self.step_times[-5:])
        if finished + step > self.end():
            # The next step would end after the schedule: stop now (the trainer then saves).
            self.stopped_by_deadline = True
            control.should_training_stop = True
            if self.evaluations:
                control.should_evaluate = True
        elif self.evaluations > 1 and self.progress() >= (self._evaluated + 1) / self.evaluations:
            control.should_evaluate = True
        if control.should_evaluate:
            self._eval_began = self.now()

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._evaluated += 1
        if self._eval_began is not None:
            seconds = self.now() - self._eval_began
            self.eval_seconds = max(self.eval_seconds or 0.0, seconds)
            self._eval_began = None

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if self.on_log_fn is not None and logs:
            self.on_log_fn(state.global_step, dict(logs))
