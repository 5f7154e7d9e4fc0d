"""Progress lines for the demo: ``[demo seed 0 | 3/8 SFT (labelled part)] text (4:12 in)``.

The demo's work is a fixed number of steps and clips (:class:`~hieroaction.demo.config.WorkConfig`),
so its results do not depend on the machine's speed; :class:`Clock` only says how long it took.
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
    """Time since a seed started (the demo's work is fixed; the clock only reports).

    Args:
        now: the time source (tests pass a fake one).
    """

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.now = now
        self.started = now()

    def elapsed(self) -> float:
        """Seconds since the clock started."""
        return self.now() - self.started


class Progress:
    """Progress lines: ``[demo seed 0 | 3/8 SFT (labelled part)] text (4:12 in)``.

    Args:
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
        spent = f" ({format_seconds(self.clock.elapsed())} in)" if self.clock is not None else ""
        print(f"[{where}] {text}{spent}", file=self.stream, flush=True)

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
