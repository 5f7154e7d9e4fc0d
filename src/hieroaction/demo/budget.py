"""Wall-clock budgets and progress lines for the demo.

A :class:`Clock` holds one seed's deadline and shares the time left between the stages still to
run, by weight: a stage that overruns shortens the later ones rather than making the demo late.
:class:`Progress` prints one line per event with the stage and the time left.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO


def format_seconds(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``); negative times print as ``0:00``."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Clock:
    """One seed's time budget.

    Args:
        budget_s: seconds from now until the deadline.
        weights: stage name -> weight, for the stages whose time is shared (see :meth:`share`).
        reserve_s: seconds kept back at the end (writing the report).
        now: the time source (tests pass a fake one).
    """

    def __init__(
        self,
        budget_s: float,
        weights: Mapping[str, float],
        reserve_s: float = 0.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.now = now
        self.started = now()
        self.budget_s = float(budget_s)
        self.deadline = self.started + self.budget_s
        self.weights = dict(weights)
        self.reserve_s = float(reserve_s)
        self.done: set[str] = set()
        self.spent: dict[str, float] = {}

    def elapsed(self) -> float:
        """Seconds since the clock started."""
        return self.now() - self.started

    def left(self) -> float:
        """Seconds until the deadline (negative once it has passed)."""
        return self.deadline - self.now()

    def share(self, stage: str) -> float:
        """Seconds for ``stage``: the time left (less the reserve) times its weight over the
        weights of the stages not yet finished. Never negative."""
        pending = {s: w for s, w in self.weights.items() if s not in self.done}
        if stage not in pending:
            raise KeyError(f"stage {stage!r} has no weight or is already finished")
        total = sum(pending.values())
        if total <= 0:
            return 0.0
        return max(0.0, (self.left() - self.reserve_s) * pending[stage] / total)

    def finish(self, stage: str, seconds: float) -> None:
        """Mark ``stage`` as done (its weight no longer takes part in :meth:`share`)."""
        self.done.add(stage)
        self.spent[stage] = self.spent.get(stage, 0.0) + seconds


class Progress:
    """Progress lines: ``[demo seed 0 | 3/7 SFT cold start] text (12:04 left)``.

    Args:
        clock: the seed's clock (for the time left), or None before one exists.
        enabled: print at all.
        stream: where to print (default stderr, so stdout keeps only the results).
    """

    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        # Taken now: the stages send what libraries print to log files by replacing sys.stderr.
        self.stream = stream or sys.stderr
        self.clock: Clock | None = None
        self.prefix = "demo"
        self.stage_name = ""
        self.stage_index = 0
        self.stage_count = 0
        self._last_throttled = float("-inf")  # time.monotonic() of the last line(every=...) printed

    def start_seed(self, clock: Clock, label: str, stage_count: int) -> None:
        """Begin a seed: its clock and the number of stages it runs."""
        self.clock = clock
        self.prefix = f"demo {label}"
        self.stage_index = 0
        self.stage_count = stage_count

    def stage(self, name: str, detail: str = "") -> None:
        """Begin the next stage (and say what it will do)."""
        self.stage_index += 1
        self.stage_name = name
        self._last_throttled = float("-inf")
        self.line(detail or "starting")

    def line(self, text: str, every: float = 0.0) -> None:
        """One progress line for the current stage; with ``every``, only if no other such line
        was printed in the stage during the last ``every`` seconds (per-step lines)."""
        if not self.enabled:
            return
        if every > 0:
            now = time.monotonic()
            if now - self._last_throttled < every:
                return
            self._last_throttled = now
        where = self.prefix
        if self.stage_name:
            where += f" | {self.stage_index}/{self.stage_count} {self.stage_name}"
        left = f" ({format_seconds(self.clock.left())} left)" if self.clock is not None else ""
        print(f"[{where}] {text}{left}", file=self.stream, flush=True)

    def note(self, text: str) -> None:
        """A line outside any stage (start and end of the demo)."""
        if self.enabled:
            print(f"[demo] {text}", file=self.stream, flush=True)


def format_metrics(metrics: Mapping[str, Any], keys: Mapping[str, str]) -> str:
    """``name value`` pairs of the ``keys`` present in ``metrics`` (3 significant digits)."""
    parts = []
    for key, name in keys.items():
        value = metrics.get(key)
        if isinstance(value, (int, float)):
            parts.append(f"{name} {value:.3g}")
    return ", ".join(parts)
