"""The vocabulary of the SAR format v1, shared by the renderer, the parser and the prompts.

Tag and attribute names, the order of the blocks, how numbers are written and how the
characters that would break a tag are escaped (``&``, ``<``, ``>`` and, inside attribute
values, ``"``; the same entities as XML, which models have seen countless times).
"""

from __future__ import annotations

import re

from hieroaction.sar.assessment import DECIMALS

RECOGNITION = "recognition"
SUBACTIONS = "subactions"
SCORING = "scoring"
# The three top-level blocks, in the order a completion must give them.
BLOCKS: tuple[str, ...] = (RECOGNITION, SUBACTIONS, SCORING)

ACTION = "action"
STEP = "step"
COMPONENT = "component"
SCORE = "score"
# Elements inside the blocks, with the block each one belongs to.
ELEMENT_BLOCK: dict[str, str] = {
    ACTION: RECOGNITION,
    STEP: SUBACTIONS,
    COMPONENT: SCORING,
    SCORE: SCORING,
}
TAGS: tuple[str, ...] = BLOCKS + tuple(ELEMENT_BLOCK)

STEP_ATTRIBUTES: tuple[str, ...] = ("label", "start", "end", "quality")
STEP_REQUIRED: tuple[str, ...] = ("label", "start", "end")
COMPONENT_ATTRIBUTES: tuple[str, ...] = ("name",)

_TEXT_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_ATTRIBUTE_ESCAPES = {**_TEXT_ESCAPES, '"': "&quot;"}
_UNESCAPES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"'}
_TEXT_SPECIAL = re.compile(r"[&<>]")
_ATTRIBUTE_SPECIAL = re.compile(r'[&<>"]')
_ENTITY = re.compile(r"&(amp|lt|gt|quot);")


def escape_text(text: str) -> str:
    """Escape free text so that it cannot open or close a tag."""
    return _TEXT_SPECIAL.sub(lambda m: _TEXT_ESCAPES[m.group()], text)


def escape_attribute(text: str) -> str:
    """Escape an attribute value (a label or a component name) for ``name="..."``."""
    return _ATTRIBUTE_SPECIAL.sub(lambda m: _ATTRIBUTE_ESCAPES[m.group()], text)


def unescape(text: str) -> str:
    """Undo :func:`escape_text` / :func:`escape_attribute` in one pass.

    Only the four entities the renderer writes are decoded; anything else (a bare ``&`` from a
    model) is kept as written.
    """
    if "&" not in text:
        return text
    return _ENTITY.sub(lambda m: _UNESCAPES[m.group(1)], text)


def format_number(value: float) -> str:
    """The compact, lossless text of a number already rounded to the format's precision.

    ``87.75`` -> ``"87.75"``, ``3.0`` -> ``"3"``; never an exponent, never ``-0``.
    """
    text = f"{value:.{DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


__all__ = [
    "ACTION",
    "BLOCKS",
    "COMPONENT",
    "COMPONENT_ATTRIBUTES",
    "ELEMENT_BLOCK",
    "RECOGNITION",
    "SCORE",
    "SCORING",
    "STEP",
    "STEP_ATTRIBUTES",
    "STEP_REQUIRED",
    "SUBACTIONS",
    "TAGS",
    "escape_attribute",
    "escape_text",
    "format_number",
    "unescape",
]
