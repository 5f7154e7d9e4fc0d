"""Read the datasets' pickled annotation files without running code from them.

Unpickling calls whatever global a pickle names, so a crafted file can run any command. The
annotation pickles of the AQA datasets only hold plain containers, numbers, strings and numpy
arrays or scalars, so :func:`load_pickle` admits exactly the globals those need and refuses
every other one with :class:`~hieroaction.errors.UnsafePickleError` before it is called.

Pickles written by numpy 1.x name ``numpy.core.*`` and those written by numpy 2.x name
``numpy._core.*``; both resolve to the installed numpy's functions, so either loads under
either numpy. Python 2 pickles (MTL-AQA's are old) are read with ``encoding="latin1"``, the
encoding numpy documents for arrays pickled by Python 2: it turns their byte strings into the
raw array data numpy expects.
"""

from __future__ import annotations

import builtins
import codecs
import collections
import importlib
import io
import math
import numbers
import pickle
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from hieroaction.errors import DataError, UnsafePickleError

# Builtins that rebuild plain data. Python 2 pickles and protocol-2 pickles written by
# Python 3 spell the module ``__builtin__``. Nothing here can reach code: no eval, exec,
# getattr, __import__, open, type or object.
_SAFE_BUILTINS = frozenset(
    {"set", "frozenset", "list", "dict", "tuple", "bytes", "bytearray", "str", "int", "float",
     "complex", "bool"}
)

# (module, name) of the numpy functions and types that rebuild arrays, dtypes and scalars, under
# the names numpy 1.x (``numpy.core``) and numpy 2.x (``numpy._core``) write into pickles.
# ``_frombuffer`` is what numpy writes for arrays under pickle protocol 5.
_NUMPY_GLOBALS = {
    ("multiarray", "_reconstruct"),
    ("multiarray", "scalar"),
    ("numeric", "_frombuffer"),
}
_NUMPY_TYPES = frozenset({"ndarray", "dtype"})


@lru_cache(maxsize=None)
def _numpy_global(submodule: str, name: str) -> Any:
    """The installed numpy's ``<core>.<submodule>.<name>``, whichever core package it has."""
    for package in ("numpy._core", "numpy.core"):
        try:
            with warnings.catch_warnings():
                # numpy 2 keeps numpy.core only as a deprecated alias; we never need the warning.
                warnings.simplefilter("ignore", DeprecationWarning)
                module = importlib.import_module(f"{package}.{submodule}")
                return getattr(module, name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"numpy has no {submodule}.{name}")


def _admitted(module: str, name: str) -> Any | None:
    """The object a pickle may name as ``module.name``, or ``None`` if it is refused."""
    if module in ("builtins", "__builtin__"):
        return getattr(builtins, name) if name in _SAFE_BUILTINS else None
    if module == "_codecs" and name == "encode":
        # Python 3 writes bytes as _codecs.encode(text, "latin1") under protocols < 3.
        return codecs.encode
    if module == "collections" and name in ("OrderedDict", "defaultdict"):
        # defaultdict's factory is itself a global and goes through this same check.
        return getattr(collections, name)
    if module == "numpy" and name in _NUMPY_TYPES:
        import numpy

        return getattr(numpy, name)
    for prefix in ("numpy.core.", "numpy._core."):
        if module.startswith(prefix) and (module[len(prefix):], name) in _NUMPY_GLOBALS:
            return _numpy_global(module[len(prefix):], name)
    return None


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` admits only the globals of :func:`_admitted`."""

    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        obj = _admitted(module, name)
        if obj is None:
            raise UnsafePickleError(
                f"{self._source}: refused to load the global {module}.{name}; annotation "
                "pickles may only hold plain containers, numbers, strings and numpy arrays"
            )
        return obj


def load_pickle(path: str | Path) -> Any:
    """Unpickle ``path``, admitting only plain containers, scalars and numpy arrays.

    Raises :class:`UnsafePickleError` naming the file and the refused global if the pickle asks
    for anything else, and :class:`DataError` if the file is missing, truncated or not a pickle.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected a pickle file)")
    try:
        with path.open("rb") as fh:
            return _RestrictedUnpickler(fh, str(path)).load()
    except UnsafePickleError:
        raise
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    except Exception as exc:  # noqa: BLE001 - any failure inside the unpickler means a bad file
        # A cut-off or foreign file fails in many ways (EOFError, UnpicklingError, ValueError,
        # a numpy TypeError on mangled array state ...); all mean the same to the user.
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise DataError(f"{path}: truncated or not a pickle ({reason})") from None


def load_pickled(path: str | Path, expected: type | tuple[type, ...], what: str) -> Any:
    """:func:`load_pickle`, then check the top-level container is ``expected``.

    ``what`` describes the expected content for the error, e.g. ``"a dict of (video, dive) ->
    annotation"``.
    """
    obj = load_pickle(path)
    if not isinstance(obj, expected):
        raise DataError(f"{path}: expected {what}, got a {type(obj).__name__}")
    return obj


# Values read from pickles come as Python or numpy scalars depending on the tool that wrote
# them; the helpers below accept both and raise ValueError naming the field otherwise, which
# adapters report as an unreadable record.


def to_int(value: Any, what: str) -> int:
    """``value`` as an int (Python or numpy integer, or an integral float)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if math.isfinite(float(value)) and float(value).is_integer():
        return int(value)
    raise ValueError(f"{what} must be an integer, got {value!r}")


def to_float(value: Any, what: str) -> float:
    """``value`` as a finite float (Python or numpy number)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return out


def to_float_list(value: Any, what: str) -> list[float]:
    """A list, tuple or 1-D numpy array of numbers as a list of floats."""
    import numpy

    if isinstance(value, numpy.ndarray):
        if value.ndim != 1:
            raise ValueError(f"{what} must be a 1-D array, got shape {value.shape}")
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{what} must be a list of numbers, got {value!r}")
    return [to_float(v, what) for v in value]


def to_str(value: Any, what: str) -> str:
    """``value`` as a str (Python 2 byte strings arrive as latin-1 text already)."""
    if isinstance(value, bytes):
        return value.decode("latin1")
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {value!r}")
    return value


def to_key(raw: Any, parts: Sequence[tuple[str, Callable[[Any, str], Any]]]) -> tuple:
    """A pickled tuple key as typed values.

    ``parts`` names each item and converts it, e.g. ``[("video_name", to_str), ("instance_id",
    to_int)]`` for FineDiving's ``('FINADivingWorldCup2021_Men3m_final_r1', 8)``.
    """
    names = ", ".join(name for name, _ in parts)
    if not isinstance(raw, (tuple, list)) or len(raw) != len(parts):
        raise ValueError(f"key {raw!r} is not a ({names}) {'pair' if len(parts) == 2 else 'tuple'}")
    return tuple(convert(value, name) for value, (name, convert) in zip(raw, parts))


def entry_error(exc: Exception) -> str:
    """Why one pickled annotation entry could not be read, in one line, for a problem report."""
    if isinstance(exc, KeyError):
        return f"the annotation has no {exc.args[0]!r} field"
    errors = getattr(exc, "errors", None)  # pydantic's ValidationError, without importing it
    if callable(errors):
        first = errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(exc)


__all__ = ["entry_error", "load_pickle", "load_pickled", "to_float", "to_float_list", "to_int",
           "to_key", "to_str"]
