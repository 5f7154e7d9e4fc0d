"""Attributes of an action label, per domain: what partial credit for recognition compares.

Diving labels are FINA dive numbers (group, somersaults, twists, position, ...). A domain whose
YAML has a ``label_template`` such as ``"{takeoff}-{turns}-{entry}"`` has labels split into
those named parts. Other domains have no attributes: only an exact label counts.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from hieroaction.domains import get_domain
from hieroaction.domains.diving import parse_dive_number

# The dive-number attributes that identify a dive (armstand and flying are rare refinements).
DIVING_ATTRIBUTES = ("group", "somersaults", "twists", "position")


@lru_cache(maxsize=64)
def _template_regex(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    names: list[str] = []
    pattern = ""
    for literal, name in re.findall(r"([^{}]*)(?:\{(\w+)\})?", template):
        pattern += re.escape(literal)
        if name:
            names.append(name)
            pattern += f"(?P<{name}>.+?)"
    return re.compile(f"^{pattern}$"), tuple(names)


def label_attributes(domain: str, label: str | None) -> dict[str, Any] | None:
    """The attributes encoded in ``label`` for ``domain``; None if it has none or does not fit."""
    if not label:
        return None
    if domain in ("diving", "diving_sync"):
        dive = parse_dive_number(label)
        if dive is None:
            return None
        return {name: getattr(dive, name) for name in DIVING_ATTRIBUTES}
    template = get_domain(domain).extra.get("label_template")
    if not template:
        return None
    regex, _ = _template_regex(str(template))
    match = regex.match(label.strip())
    return None if match is None else match.groupdict()


def canonical_label(domain: str, label: str | None) -> str | None:
    """The label in the domain's canonical spelling (dive numbers upper-case)."""
    if label is None:
        return None
    label = " ".join(label.split())
    if domain in ("diving", "diving_sync"):
        dive = parse_dive_number(label)
        return dive.code if dive else label.upper()
    return label
