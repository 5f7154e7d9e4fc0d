"""``hieroaction demo``: the whole recipe end to end on a CPU, within a time budget.

- :mod:`~hieroaction.demo.config`: the settings (:class:`DemoConfig`).
- :mod:`~hieroaction.demo.budget`: the wall-clock budget shared between stages, progress lines.
- :mod:`~hieroaction.demo.runner`: the stages (:func:`run_demo`, :func:`run_seed`).
- :mod:`~hieroaction.demo.baselines`: the mean-score and difficulty-oracle references.
- :mod:`~hieroaction.demo.summary`: mean and spread over seeds, the targets.
- :mod:`~hieroaction.demo.report`: ``report.html`` and ``metrics.json``.

Heavy libraries (torch, transformers) are imported when a stage runs, not here.
"""

from hieroaction.demo.config import DemoConfig
from hieroaction.demo.runner import DemoResult, SeedRun, run_demo

__all__ = ["DemoConfig", "DemoResult", "SeedRun", "run_demo"]
