"""Typed configuration: dataclasses loaded from YAML and overridden from the command line.

Every job's settings are a (nested) dataclass. :func:`load_config` reads a YAML file into it,
applies ``--key value`` or ``key=value`` overrides (dotted keys reach nested sections), checks
every key and type, and raises :class:`~hieroaction.errors.ConfigError` with one sentence
naming the bad key otherwise.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from hieroaction.errors import ConfigError
from hieroaction.io import read_yaml_mapping

T = TypeVar("T")


def _is_optional(tp: Any) -> tuple[bool, Any]:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) != len(get_args(tp)):
            return True, args[0] if len(args) == 1 else Union[tuple(args)]  # noqa: UP007
    return False, tp


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (converting strings from the CLI)."""
    optional, inner = _is_optional(tp)
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null") and optional):
        if optional or tp is Any:
            return None
        raise ConfigError(f"config key {key!r} must not be empty")
    tp = inner
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r} must be a mapping of {tp.__name__} fields")
        return _build(tp, value, prefix=f"{key}.")
    origin = get_origin(tp)
    if origin is typing.Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"config key {key!r} must be one of {list(choices)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.strip().startswith("[") else value.split(",")
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r} must be a list, got {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"config key {key!r} must have {len(args)} items, got {value!r}")
            return tuple(_coerce(v, a, key) for v, a in zip(value, args))
        item = args[0] if args else Any
        out = [_coerce(v, item, key) for v in value]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if isinstance(value, str):
            value = yaml.safe_load(value)
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r} must be a mapping, got {value!r}")
        kt, vt = get_args(tp) or (Any, Any)
        return {_coerce(k, kt, key): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"config key {key!r} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"config key {key!r} must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"config key {key!r} must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"config key {key!r} must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"config key {key!r} must be a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"config key {key!r} must be a string, got {value!r}")
        return str(value)
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"config key {key!r} must be {tp.__name__}, got {value!r}")
    return value


def _build(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(
            f"unknown config key {prefix + unknown[0]!r}; "
            f"{cls.__name__} accepts {sorted(fields)}"
        )
    kwargs = {name: _coerce(value, hints[name], prefix + name) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{cls.__name__}: {exc}") from None


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"config key {key!r}: {part!r} is not a section")
    node[parts[-1]] = value


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """Turn ``['--lr', '1e-4', 'model.lora=true', '--a.b=2']`` into a nested mapping.

    Values are read as YAML scalars, so ``true``, ``3`` and ``[1, 2]`` keep their types.
    """
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            arg = arg[2:]
            if "=" in arg:
                key, raw = arg.split("=", 1)
            elif i + 1 < len(args):
                key, raw = arg, args[i + 1]
                i += 1
            else:
                raise ConfigError(f"override --{arg} has no value")
        elif "=" in arg:
            key, raw = arg.split("=", 1)
        else:
            raise ConfigError(f"cannot read override {arg!r}; expected --key value or key=value")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        _set_dotted(out, key.replace("-", "_"), value)
        i += 1
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


BASE_KEY = "base"


def read_recipe(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A recipe file as a mapping, with its ``base`` files merged underneath it.

    ``base`` is one file name or a list (relative to the recipe's folder), merged in order, so
    variants of one recipe share their common settings instead of copying them.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"{file}: no such config file")
    if file.resolve() in _seen:
        raise ConfigError(f"{file}: the recipe's base files include each other in a loop")
    data = read_yaml_mapping(file, what="config file", empty_ok=True)
    bases = data.pop(BASE_KEY, None) or []
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{file}: 'base' must be a file name or a list of file names")
    merged: dict[str, Any] = {}
    for name in bases:
        merged = _merge(merged, read_recipe(file.parent / name, _seen + (file.resolve(),)))
    return _merge(merged, data)


def config_from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build ``cls`` from a mapping, checking every key and type."""
    return _build(cls, data)


def load_config(
    cls: type[T],
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    defaults: dict[str, Any] | None = None,
) -> T:
    """Read ``path`` (YAML, with its ``base`` files) into the dataclass ``cls`` and apply
    command-line overrides; ``defaults`` (a mapping of the same shape) come first, under both."""
    data: dict[str, Any] = read_recipe(path) if path is not None else {}
    if defaults:
        data = _merge(copy.deepcopy(defaults), data)
    if overrides:
        data = _merge(data, parse_overrides(overrides))
    return _build(cls, data)


def load_config_with_flags(
    cls: type[T],
    path: str | Path | None,
    overrides: list[str],
    args: Any,
    flag_fields: dict[str, str],
    defaults: dict[str, Any] | None = None,
) -> T:
    """``defaults``, then the config file, then ``overrides``, then the command-line flags that
    were given.

    ``flag_fields`` maps an argparse destination to the dotted config key it sets; a flag left
    at ``None`` does not override anything.
    """
    merged = list(overrides)
    for dest, key in flag_fields.items():
        value = getattr(args, dest, None)
        if value is not None:
            merged.append(f"{key}={value}")
    return load_config(cls, path, merged, defaults)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A plain mapping of a config dataclass (for saving next to a run's outputs)."""
    return dataclasses.asdict(config)


def save_config(config: Any, path: str | Path) -> None:
    """Write a config dataclass as YAML."""
    Path(path).write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False), encoding="utf-8")
