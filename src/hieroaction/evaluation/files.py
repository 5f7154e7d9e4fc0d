"""Old home of the atomic writers, now in :mod:`hieroaction.io`.

Kept only while ``evaluation/commands.py`` and ``inference/commands.py`` import from here; new
code imports :mod:`hieroaction.io`.
"""

from __future__ import annotations

from hieroaction.io import dumps_json, json_ready, write_atomic, write_json_atomic, write_jsonl_atomic

__all__ = ["dumps_json", "json_ready", "write_atomic", "write_json_atomic", "write_jsonl_atomic"]
