"""Dataset adapters: readers of each public AQA dataset's original annotation files.

``get_adapter(name)`` returns the :class:`~hieroaction.data.adapters.base.Adapter` for a
dataset name; each lives in its own module exporting ``ADAPTER``.
"""

from __future__ import annotations

import importlib

from hieroaction.data.adapters.base import Adapter, LoadResult, Problem, find_file, find_files
from hieroaction.errors import DataError

# dataset name -> module defining ADAPTER
_MODULES = {
    "finediving": "finediving",
    "mtl-aqa": "mtlaqa",
    "aqa-7": "aqa7",
    "jigsaws": "jigsaws",
    "fis-v": "fisv",
    "finefs": "finefs",
    "logo": "logo",
    "generic": "generic",
}

_ALIASES = {"mtlaqa": "mtl-aqa", "mtl_aqa": "mtl-aqa", "aqa7": "aqa-7", "fisv": "fis-v", "fis_v": "fis-v"}


def dataset_names() -> list[str]:
    """The dataset names ``get_adapter`` accepts."""
    return list(_MODULES)


def get_adapter(name: str) -> Adapter:
    """The adapter for dataset ``name`` (case-insensitive; ``mtlaqa`` and ``mtl-aqa`` both work)."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _MODULES:
        raise DataError(f"unknown dataset {name!r}; expected one of {dataset_names()}")
    module = importlib.import_module(f"hieroaction.data.adapters.{_MODULES[key]}")
    return module.ADAPTER


__all__ = ["Adapter", "LoadResult", "Problem", "dataset_names", "find_file", "find_files", "get_adapter"]
