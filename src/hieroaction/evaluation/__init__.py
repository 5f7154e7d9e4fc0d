"""Evaluation: AQA metrics, scoring predictions against the truth, and ``hieroaction evaluate``.

- :mod:`~hieroaction.evaluation.metrics`: the metric definitions (SPEC section 6).
- :mod:`~hieroaction.evaluation.predictions`: reading prediction and truth files (any system's).
- :mod:`~hieroaction.evaluation.scoring`: matching by id, every metric with bootstrap intervals.
- :mod:`~hieroaction.evaluation.runner`: running a model over records, writing the results
  atomically with :mod:`hieroaction.io` (no partial ``metrics.json``).

Nothing is imported here: the rewards import the metrics, and this package's other modules
import the rewards, so eager imports would make a cycle.
"""
