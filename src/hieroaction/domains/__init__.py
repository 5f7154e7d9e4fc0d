"""Domain knowledge as data: score formulas, label vocabularies and score ranges per domain.

Each domain is a YAML file in ``domains/data/``; other packages (the synthetic benchmark, a
user's own domain) can add one with :func:`register_domain`. Diving's number grammar and judge
rules live in :mod:`hieroaction.domains.diving`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from hieroaction.errors import ConfigError
from hieroaction.io import read_yaml_mapping

_FORMULA_KINDS = ("product", "signed_sum", "identity")


@dataclass(frozen=True)
class Formula:
    """How a domain's final score follows from its components.

    ``product``: ``scale * prod(factors)``; ``signed_sum``: ``sum(plus) - sum(minus)``;
    ``identity``: the score has no components.
    """

    kind: str
    factors: tuple[str, ...] = ()
    scale: float = 1.0
    plus: tuple[str, ...] = ()
    minus: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in _FORMULA_KINDS:
            raise ConfigError(
                f"unknown score formula kind {self.kind!r}; expected one of {_FORMULA_KINDS}"
            )

    @property
    def inputs(self) -> tuple[str, ...]:
        """The component names the formula reads."""
        return self.factors if self.kind == "product" else self.plus + self.minus

    def apply(self, components: dict[str, float]) -> float | None:
        """The final score from ``components``; ``None`` if one is missing or not finite."""
        if self.kind == "identity":
            return None
        values = {}
        for name in self.inputs:
            value = components.get(name)
            if value is None or not math.isfinite(float(value)):
                return None
            values[name] = float(value)
        if self.kind == "product":
            return self.scale * math.prod(values[n] for n in self.factors)
        return sum(values[n] for n in self.plus) - sum(values[n] for n in self.minus)


@dataclass(frozen=True)
class Domain:
    """What the model is told about a domain and how its answers are checked."""

    name: str
    description: str
    formula: Formula
    components: tuple[str, ...] = ()
    score_range: tuple[float, float] | None = None
    component_range: tuple[float, float] | None = None
    action_labels: tuple[str, ...] = ()
    step_labels: tuple[str, ...] = ()
    # Largest difference between a stored final score and the formula before a record is
    # reported by the validator (scores are published with two decimals).
    score_tolerance: float = 0.011
    extra: dict[str, Any] = field(default_factory=dict)

    def final_score(self, components: dict[str, float]) -> float | None:
        """The final score the domain formula gives for ``components`` (None if it cannot)."""
        return self.formula.apply(components)

    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str = "<mapping>") -> Domain:
        """Build a domain from a parsed YAML mapping; raises :class:`ConfigError` on bad keys."""
        known = {
            "name", "description", "formula", "components", "score_range",
            "component_range", "action_labels", "step_labels", "score_tolerance",
        }
        try:
            formula = data.get("formula") or {"kind": "identity"}
            formula = Formula(
                kind=formula["kind"],
                factors=tuple(formula.get("factors", ())),
                scale=float(formula.get("scale", 1.0)),
                plus=tuple(formula.get("plus", ())),
                minus=tuple(formula.get("minus", ())),
            )
            rng = data.get("score_range")
            crng = data.get("component_range")
            return cls(
                name=str(data["name"]),
                description=str(data.get("description", "")).strip(),
                formula=formula,
                components=tuple(data.get("components") or ()),
                score_range=(float(rng[0]), float(rng[1])) if rng else None,
                component_range=(float(crng[0]), float(crng[1])) if crng else None,
                action_labels=tuple(str(x) for x in data.get("action_labels") or ()),
                step_labels=tuple(str(x) for x in data.get("step_labels") or ()),
                score_tolerance=float(data.get("score_tolerance", 0.011)),
                extra={k: v for k, v in data.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ConfigError(f"{source}: not a valid domain description ({exc})") from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> Domain:
        """Load a domain description file."""
        return cls.from_mapping(read_yaml_mapping(path, what="domain file"), source=str(path))


_registered: dict[str, Domain] = {}


@lru_cache(maxsize=None)
def _builtin(name: str) -> Domain | None:
    ref = resources.files("hieroaction.domains") / "data" / f"{name}.yaml"
    if not ref.is_file():
        return None
    return Domain.from_mapping(read_yaml_mapping(ref, what="domain file"), source=str(ref))


def builtin_domain_names() -> list[str]:
    """Names of the domain files shipped with the package."""
    folder = resources.files("hieroaction.domains") / "data"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def register_domain(domain: Domain) -> None:
    """Make ``domain`` available to :func:`get_domain` under its name."""
    _registered[domain.name] = domain


_NAME = re.compile(r"[A-Za-z0-9_]+")


def get_domain(name: str) -> Domain:
    """The domain called ``name`` (registered first, then the built-in files)."""
    if name in _registered:
        return _registered[name]
    # a name is never a path: "../x" must not reach a YAML file outside the domain folder
    domain = _builtin(name) if isinstance(name, str) and _NAME.fullmatch(name) else None
    if domain is None:
        known = sorted(set(builtin_domain_names()) | set(_registered))
        raise ConfigError(f"unknown domain {name!r}; expected one of {known}")
    return domain


__all__ = ["Domain", "Formula", "builtin_domain_names", "get_domain", "register_domain"]
