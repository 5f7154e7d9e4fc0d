"""Read a SAR completion (format v1) into an :class:`Assessment` plus a list of problems.

:func:`parse_sar` never raises, whatever it is given, and runs in time linear in the length
of the text: one pass of a regular expression without nested quantifiers finds the tags (and
any other markup), and everything after works on that list of tags. Text longer than
:data:`MAX_CHARS` is cut there first (``too_long``).

No value or text read ever holds markup. Markup is a ``<`` followed by a letter, ``/`` and a
letter, ``!`` or ``?``, up to its ``>`` (or, when a ``<`` comes first, up to that ``<``): a tag of
the format is read as one; anything else (an unknown tag such as ``<think>``, or a tag whose
``>`` is missing) is ``stray_markup``. An element's value ends where markup inside it starts,
as it ends at the next tag; free text leaves the markup out. A ``<`` that starts no markup
(``a < b``, ``<3``) is kept as text.

Both modes find the same problems; they differ in which values reach the assessment:

* **strict** (the format reward): only elements that are well formed, closed and inside the
  first occurrence of their own block; an element with any problem is left out.
* **lenient** (evaluation): whatever can be read. An element missing from its block is taken
  from a repeated block or from anywhere else in the text (a ``misplaced_tag`` problem says
  so); a number surrounded by text is read (``number_with_text``); an element or block whose
  closing tag is missing is read up to the next tag; a score found nowhere else is taken from
  the last "score ... NUMBER" phrase of the text (``score_from_text``).

An element that runs into the end of the text without its closing tag may have been cut off
mid-value, so its value is only read when a newline or a cut-off tag follows it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from hieroaction.sar.assessment import MAX_ABS, Assessment, StepAssessment, normalise_label
from hieroaction.sar.markup import (
    ACTION,
    BLOCKS,
    COMPONENT,
    COMPONENT_ATTRIBUTES,
    ELEMENT_BLOCK,
    RECOGNITION,
    SCORE,
    SCORING,
    STEP,
    STEP_ATTRIBUTES,
    STEP_REQUIRED,
    SUBACTIONS,
    TAGS,
    unescape,
)


class ProblemCode(str, Enum):
    """What can be wrong with a completion (the ``code`` of a :class:`Problem`)."""

    EMPTY = "empty"  # no text at all (or not text)
    MISSING_BLOCK = "missing_block"  # a top-level block is absent
    REPEATED_BLOCK = "repeated_block"  # a top-level block occurs more than once
    BLOCK_ORDER = "block_order"  # blocks not in the order recognition, subactions, scoring
    UNCLOSED_TAG = "unclosed_tag"  # a block or element without its closing tag
    TRUNCATED = "truncated"  # the text ends inside a tag, or inside a value that may be cut
    UNEXPECTED_CLOSE = "unexpected_close"  # a closing tag with nothing open to close
    MISPLACED_TAG = "misplaced_tag"  # an element outside its block, or out of order in it
    STRAY_TEXT = "stray_text"  # text where only tags or whitespace belong
    MISSING_ELEMENT = "missing_element"  # no <action> in recognition, no <score> in scoring
    REPEATED_ELEMENT = "repeated_element"  # a second <action> or <score>
    BAD_ATTRIBUTES = "bad_attributes"  # missing, unknown, repeated, unquoted or empty attributes
    SELF_CLOSING = "self_closing"  # <tag/>: the format always writes an opening and a closing tag
    TAG_CASE = "tag_case"  # a tag name not in lower case (read anyway)
    BAD_NUMBER = "bad_number"  # no number where one belongs
    NUMBER_WITH_TEXT = "number_with_text"  # a number with other text around it
    NON_FINITE = "non_finite"  # nan or inf
    OUT_OF_RANGE = "out_of_range"  # larger in magnitude than MAX_ABS, or too many digits
    BAD_STEP_SPAN = "bad_step_span"  # a step with start > end or a negative time
    STEPS_OUT_OF_ORDER = "steps_out_of_order"  # a step starting before the previous one
    DUPLICATE_COMPONENT = "duplicate_component"  # the same component name twice
    SCORE_FROM_TEXT = "score_from_text"  # lenient last resort: score read from free text
    STRAY_MARKUP = "stray_markup"  # markup that is not a tag of the format (left out of values)
    TOO_LONG = "too_long"  # the text is longer than max_chars; only its start was read
    PARSER_ERROR = "parser_error"  # a bug in the parser; reported instead of raised


class Problem(BaseModel):
    """One thing wrong with a completion: a code, a sentence, where it was."""

    model_config = ConfigDict(frozen=True)

    code: ProblemCode
    message: str
    block: str | None = None  # the top-level block it concerns; None = outside every block
    position: int | None = None  # character offset in the text


class BlockStatus(BaseModel):
    """What the parser found of one top-level block (for the format reward)."""

    count: int = 0  # how many times the block was opened at the top level
    closed: bool = False  # the first occurrence has its closing tag
    well_formed: bool = False  # exactly once, closed, and no problem inside it
    position: int | None = None  # offset of the first opening tag


class ParseResult(BaseModel):
    """The assessment read from a completion, the problems found, and per-block flags."""

    assessment: Assessment
    problems: list[Problem]
    blocks: dict[str, BlockStatus]
    in_order: bool  # the blocks found appear in the format's order
    strict: bool
    step_tags: int  # <step> tags in the text, including those whose step was dropped

    @property
    def ok(self) -> bool:
        """True when the completion follows the format exactly (no problem at all)."""
        return not self.problems

    @property
    def codes(self) -> set[ProblemCode]:
        """The distinct problem codes."""
        return {p.code for p in self.problems}


# The longest completion parse_sar reads by default (about 25,000 tokens, far beyond any
# generation limit in use); the rest is cut off with a ``too_long`` problem. It bounds the work
# a served request can ask for: at the slowest input measured (benchmarks/bench_parse.py), well
# under a second.
MAX_CHARS = 100_000
# Each problem code is listed at most this many times; one more problem of the same code says
# how many were left out (a pathological text cannot flood the list, or the time to build it).
MAX_PROBLEMS_PER_CODE = 20

# --- tokens -------------------------------------------------------------------------------

_NAMES = "|".join(sorted(TAGS, key=len, reverse=True))
# A token is a tag of the format (groups 1-3) or a run of other markup with nothing between
# (group 4: <b><i>, or <step<step, is one token). A tag's name must be followed by whitespace,
# '/' or '>', so <scoring> is never read as <score>, nor <scores> as a tag. [^<>]* cannot run
# past the next '<', so each token, and each failed attempt, scans (at most twice, with the
# lookahead) a stretch that ends at the next '<': linear time.
# What starts markup after a '<' (ASCII letters only, whatever the case flag).
_START = r"(?-i:/?[A-Za-z]|[!?])"
_TOKEN = re.compile(
    rf"<(?:(/?)({_NAMES})(?=[\s/>])([^<>]*)>"
    rf"|({_START}[^<>]*>?(?:<(?!/?(?:{_NAMES})(?=[\s/>])[^<>]*>){_START}[^<>]*>?)*))",
    re.IGNORECASE,
)
_ATTRIBUTE = re.compile(r"""\s+([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'<>=`]+))""")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf(?:inity)?)", re.IGNORECASE)
_MARKUP_START = re.compile("<" + _START)
_SCORE_PHRASE = re.compile(r"score[^\d<>\n]{0,30}?(\d+(?:\.\d+)?)", re.IGNORECASE)
_PARTIAL_ENTITY = re.compile(r"&(?:a|am|amp|l|lt|g|gt|q|qu|quo|quot)?\Z")
# Longer numerals are out of range anyway; the cap keeps float() and the checks cheap.
_MAX_NUMERAL = 64
_BLOCK_SET = frozenset(BLOCKS)


@dataclass(slots=True)
class _Tag:
    name: str  # "" for markup that is not a tag of the format
    raw: str
    closing: bool
    attrs: str
    self_closing: bool
    start: int
    end: int
    markup: bool = False  # stray markup, not a tag of the format


@dataclass(slots=True)
class _Block:
    name: str
    open: _Tag
    content_start: int
    content_end: int = -1
    end: int = -1  # after the closing tag (or where the unclosed block stops)
    closed: bool = False
    elements: list[_Element] = field(default_factory=list)
    # Tags, elements and markup, in order: (start, end, is_markup).
    spans: list[tuple[int, int, bool]] = field(default_factory=list)


@dataclass(slots=True)
class _Element:
    name: str
    open: _Tag
    content_start: int
    content_end: int
    closed: bool
    block: _Block | None
    cut: bool = False  # ran into the end of the text: the value may be incomplete
    flawed: bool = False  # some problem concerns it; strict mode leaves it out
    holes: list[tuple[int, int, bool]] | None = None  # markup inside the content

    @property
    def span(self) -> tuple[int, int]:
        return self.open.start, self.content_end

    @property
    def value_end(self) -> int:
        """Where a value (a label or a number) ends: at the first markup inside, if any."""
        return self.holes[0][0] if self.holes else self.content_end


class _Parser:
    def __init__(self, text: str, strict: bool) -> None:
        self.text = text
        self.strict = strict
        # (code, message, block, position), in the order found; see problem_list().
        self.found: list[tuple[ProblemCode, str, str | None, int | None]] = []
        self.markup_found = 0
        self.limit = len(text)
        self.partial_tail = False
        self.tags: list[_Tag] = []

    # problems ----------------------------------------------------------------------------

    def add(
        self,
        code: ProblemCode,
        message: str,
        block: str | None = None,
        position: int | None = None,
        element: _Element | None = None,
    ) -> None:
        self.found.append((code, message, block, position))
        if element is not None:
            element.flawed = True

    def problem_list(self) -> list[Problem]:
        """The problems found, at most MAX_PROBLEMS_PER_CODE of each code, then one that
        counts the rest of that code (at the place of the first one left out)."""
        out: list[Problem | None] = []
        seen: dict[ProblemCode, int] = {}
        first_left_out: dict[ProblemCode, tuple[int, str | None, int | None]] = {}
        for code, message, block, position in self.found:
            seen[code] = seen.get(code, 0) + 1
            if seen[code] <= MAX_PROBLEMS_PER_CODE:
                out.append(Problem(code=code, message=message, block=block, position=position))
            elif seen[code] == MAX_PROBLEMS_PER_CODE + 1:
                first_left_out[code] = (len(out), block, position)
                out.append(None)
        for code, (at, block, position) in first_left_out.items():
            more = seen[code] - MAX_PROBLEMS_PER_CODE
            out[at] = Problem(
                code=code,
                message=f"{more} more {code.value} problem(s), not listed one by one",
                block=block, position=position,
            )
        return [p for p in out if p is not None]

    # text helpers ------------------------------------------------------------------------

    def text_between(self, start: int, end: int) -> str:
        """Text between two offsets; a cut-off entity at the very end of the text is dropped."""
        piece = self.text[start:end]
        if end >= len(self.text) and not self.partial_tail:
            piece = _PARTIAL_ENTITY.sub("", piece)
        return piece

    def find_partial_tail(self) -> None:
        """Stop before a tag cut off by the end of the text (``<scor``, ``<step label="A``)."""
        at = self.text.rfind("<")
        if at < 0 or ">" in self.text[at:]:
            return
        tail = self.text[at + 1 :]
        tail = tail[1:] if tail.startswith("/") else tail
        n = 0
        while n < len(tail) and tail[n].isascii() and tail[n].isalpha():
            n += 1
        name, rest = tail[:n].lower(), tail[n:]
        is_prefix = any(t.startswith(name) for t in TAGS)
        if is_prefix and (not rest or (name in TAGS and (rest[0].isspace() or rest[0] == "/"))):
            self.limit = at
            self.partial_tail = True
            self.add(ProblemCode.TRUNCATED, "the text ends inside a tag", position=at)

    def tokens(self) -> list[_Tag]:
        out = []
        append = out.append
        for m in _TOKEN.finditer(self.text, 0, self.limit):
            slash, raw, attrs, markup = m.groups()
            start, end = m.span()
            if markup is not None:
                append(_Tag("", markup, False, "", False, start, end, True))
                continue
            self_closing = False
            if attrs:
                stripped = attrs.rstrip()
                self_closing = stripped.endswith("/")
                if self_closing:
                    attrs = stripped[:-1]
            append(_Tag(raw.lower(), raw, slash == "/", attrs, self_closing, start, end))
        return out

    # structure ---------------------------------------------------------------------------

    def check_tag(self, tag: _Tag, where: str | None, element: _Element | None = None) -> None:
        """Problems any tag can have by itself: case, attributes where none belong."""
        if tag.raw != tag.name:
            self.add(
                ProblemCode.TAG_CASE,
                f"tag <{tag.raw}> should be written <{tag.name}>",
                where, tag.start, element,
            )
        takes_attributes = tag.name in (STEP, COMPONENT) and not tag.closing
        if not takes_attributes and tag.attrs.strip():
            self.add(
                ProblemCode.BAD_ATTRIBUTES,
                f"tag <{'/' if tag.closing else ''}{tag.name}> takes no attributes",
                where, tag.start, element,
            )
        if tag.self_closing and (tag.closing or tag.name in _BLOCK_SET or element is not None):
            self.add(
                ProblemCode.SELF_CLOSING,
                f"<{tag.name}/> should be written as an opening and a closing tag",
                where, tag.start, element,
            )

    def structure(
        self, tags: list[_Tag]
    ) -> tuple[list[_Block], list[_Element], list[tuple[int, int, bool]]]:
        """Pair elements with their closing tags and group everything into top-level blocks.

        Returns the blocks in text order, the elements outside every block, and the spans of
        everything outside the blocks that is a tag or markup (so it is not also reported as
        text), as ``(start, end, is_markup)``.
        """
        blocks: list[_Block] = []
        orphans: list[_Element] = []
        outside: list[tuple[int, int, bool]] = []
        current: _Block | None = None
        i, n = 0, len(tags)
        while i < n:
            tag = tags[i]
            where = current.name if current else None
            if tag.markup:
                # Left out of the text around it, like a tag; never part of a value.
                self.stray_markup(tag, where)
                (current.spans if current else outside).append((tag.start, tag.end, True))
                i += 1
                continue
            if tag.name in _BLOCK_SET and not tag.closing:
                self.check_tag(tag, tag.name)
                if current is not None:
                    self.add(
                        ProblemCode.UNCLOSED_TAG,
                        f"<{current.name}> is not closed before <{tag.name}> opens",
                        current.name, tag.start,
                    )
                    current.content_end = current.end = tag.start
                    blocks.append(current)
                current = _Block(tag.name, tag, content_start=tag.end)
                if tag.self_closing:
                    current.content_end = current.end = tag.end
                    current.closed = True
                    blocks.append(current)
                    current = None
                i += 1
                continue
            if tag.closing:
                self.check_tag(tag, where)
                if tag.name in _BLOCK_SET and current is not None and current.name == tag.name:
                    current.content_end, current.end, current.closed = tag.start, tag.end, True
                    blocks.append(current)
                    current = None
                else:
                    self.add(
                        ProblemCode.UNEXPECTED_CLOSE,
                        f"</{tag.name}> closes nothing that is open",
                        where, tag.start,
                    )
                    (current.spans if current else outside).append((tag.start, tag.end, False))
                i += 1
                continue
            # An element's content ends at the very next tag: its own closing tag, or else
            # whatever comes (then it is unclosed), so content never holds a tag. Markup on the
            # way (tags[i + 1 : j]) is part of the element: its value ends where the markup
            # starts, and its free text (a step's analysis) leaves the markup out.
            j = i + 1
            while j < n and tags[j].markup:
                j += 1
            inside = j  # tags[i + 1 : inside] is the markup inside the element
            stop = tags[i + 1].start if inside > i + 1 else None
            if tag.self_closing:
                element = _Element(tag.name, tag, tag.end, tag.end, True, current)
                element_end = tag.end
                j = i + 1
            elif j < n and tags[j].closing and tags[j].name == tag.name:
                close = tags[j]
                element = _Element(tag.name, tag, tag.end, close.start, True, current)
                self.check_tag(close, where, element)
                element_end = close.end
                j += 1
            else:
                end = tags[j].start if j < n else self.limit
                element = _Element(tag.name, tag, tag.end, end, False, current)
                element_end = end
                self.add(
                    ProblemCode.UNCLOSED_TAG, f"<{tag.name}> has no closing tag",
                    where, tag.start, element,
                )
                if j >= n and stop is None and not self.partial_tail:
                    # Only a newline shows that the value was finished before the text ended.
                    element.cut = not self.text[tag.end : end].endswith("\n")
                    if element.cut:
                        self.add(
                            ProblemCode.TRUNCATED,
                            f"the text ends inside <{tag.name}>; its value may be cut off",
                            where, tag.start, element,
                        )
            if stop is not None and not tag.self_closing:
                element.holes = [(t.start, t.end, True) for t in tags[i + 1 : inside]]
                self.stray_markup(tags[i + 1], where, element)
            i = j
            self.check_tag(tag, where, element)
            if current is not None:
                current.elements.append(element)
                current.spans.append((tag.start, element_end, False))
            else:
                orphans.append(element)
                outside.append((tag.start, element_end, False))
        if current is not None:
            current.content_end = current.end = self.limit
            self.add(
                ProblemCode.UNCLOSED_TAG,
                f"<{current.name}> is not closed before the text ends",
                current.name, current.open.start,
            )
            blocks.append(current)
        return blocks, orphans, outside

    def stray_markup(self, tag: _Tag, where: str | None, element: _Element | None = None) -> None:
        self.markup_found += 1
        if self.markup_found > MAX_PROBLEMS_PER_CODE:  # counted, not listed: skip the message
            self.add(ProblemCode.STRAY_MARKUP, "", where, tag.start, element)
            return
        shown = self.text[tag.start : min(tag.end, tag.start + 40)]
        shown += "..." if tag.end > tag.start + 40 else ""
        what = "is not a tag of the format" if tag.raw.endswith(">") else "has no closing '>'"
        inside = ""
        if element is not None and element.name == STEP:
            inside = "; left out of the step's analysis"
        elif element is not None:
            inside = f"; the value of <{element.name}> ends where it starts"
        self.add(ProblemCode.STRAY_MARKUP, f"{shown!r} {what}{inside}", where, tag.start, element)

    def pieces(self, block: _Block) -> list[tuple[int, str]]:
        """The free-text stretches of a block (between its tags), decoded, with their offsets."""
        return self.free_text(block.content_start, block.content_end, block.spans)

    def free_text(
        self, start: int, end: int, spans: list[tuple[int, int, bool]]
    ) -> list[tuple[int, str]]:
        """The stretches of text from ``start`` to ``end`` outside ``spans`` (in order), decoded
        (:func:`unescape`), with their offsets. Markup is left out without breaking the stretch
        around it (``a <b>c`` reads ``a c``); a tag or an element does break it. Each side is
        decoded by itself, so no entity is made across markup, and where joining them would
        start markup (``x<`` + ``<b>`` + ``y``) a space goes between them."""
        out: list[tuple[int, list[str]]] = []
        pos, glue, tail = start, False, ""  # glue: only markup since the last stretch
        for s, e, markup in [*spans, (end, end, False)]:
            if s > pos:
                piece = unescape(self.text_between(pos, s))
                if glue:
                    if _MARKUP_START.search(tail + piece[:2]):
                        out[-1][1].append(" ")
                        tail = " "
                    out[-1][1].append(piece)
                else:
                    out.append((pos, [piece]))
                    tail = ""
                glue = True
                tail = (tail + piece)[-2:]
            glue = glue and markup
            pos = max(pos, e)
        return [(at, "".join(parts)) for at, parts in out]

    # values ------------------------------------------------------------------------------

    def number(
        self, raw: str, what: str, where: str | None, pos: int, element: _Element
    ) -> float | None:
        """Read a number; report what is wrong with it on ``element``."""
        s = raw.strip()
        if not s:
            self.add(ProblemCode.BAD_NUMBER, f"{what} is empty", where, pos, element)
            return None
        if len(s) <= _MAX_NUMERAL and _NUMBER.fullmatch(s):
            return self.in_range(float(s), s, what, where, pos, element)
        if len(s) <= _MAX_NUMERAL and _NON_FINITE.fullmatch(s):
            self.add(
                ProblemCode.NON_FINITE, f"{what} is {s!r}, not a finite number",
                where, pos, element,
            )
            return None
        m = _NUMBER.search(s)
        if m is None:
            self.add(ProblemCode.BAD_NUMBER, f"{what} is not a number", where, pos, element)
            return None
        numeral = m.group()
        if len(numeral) > _MAX_NUMERAL:
            self.add(ProblemCode.OUT_OF_RANGE, f"{what} has too many digits", where, pos, element)
            return None
        self.add(
            ProblemCode.NUMBER_WITH_TEXT,
            f"{what} has text around its number {numeral!r}",
            where, pos, element,
        )
        return self.in_range(float(numeral), numeral, what, where, pos, element)

    def in_range(
        self, value: float, numeral: str, what: str, where: str | None, pos: int, element: _Element
    ) -> float | None:
        if len(numeral) > _MAX_NUMERAL or not math.isfinite(value) or abs(value) > MAX_ABS:
            self.add(
                ProblemCode.OUT_OF_RANGE,
                f"{what} {numeral[:20]!r} is outside [-{MAX_ABS:g}, {MAX_ABS:g}]",
                where, pos, element,
            )
            return None
        return value

    def attributes(
        self, element: _Element, allowed: tuple[str, ...], where: str | None
    ) -> dict[str, str]:
        """The attributes of an element's opening tag (the first of each name wins).

        Each kind of flaw is reported once per tag, however many attributes have it, so a
        pathological tag cannot flood the problem list.
        """
        tag, out = element.open, {}
        unquoted, single, unknown, repeated = [], [], [], []
        s, pos = tag.attrs, 0
        while True:
            m = _ATTRIBUTE.match(s, pos)
            if m is None:
                break
            name, value = m.group(1), m.group(2)
            if value is None:
                value = m.group(3)
                (single if value is not None else unquoted).append(name)
                value = m.group(4) if value is None else value
            if name not in allowed:
                unknown.append(name)
            elif name in out:
                repeated.append(name)
            else:
                out[name] = unescape(value)
            pos = m.end()
        flaws = [
            (unquoted, "has attribute values not in double quotes"),
            (single, "has attribute values in single quotes"),
            (unknown, f"has unknown attributes (expected {list(allowed)})"),
            (repeated, "gives an attribute twice"),
        ]
        for names, what in flaws:
            if names:
                shown = ", ".join(repr(n) for n in dict.fromkeys(names[:5]))
                self.add(
                    ProblemCode.BAD_ATTRIBUTES, f"<{tag.name}> {what}: {shown}",
                    where, tag.start, element,
                )
        if s[pos:].strip():
            self.add(
                ProblemCode.BAD_ATTRIBUTES,
                f"<{tag.name}> has unreadable attributes",
                where, tag.start, element,
            )
        return out

    def read_action(self, element: _Element) -> tuple[bool, str | None]:
        """(readable, label); an empty action is readable and means no label."""
        if element.cut:
            return False, None
        raw = self.text_between(element.content_start, element.value_end)
        label = normalise_label(unescape(raw))
        return True, label or None

    def read_score(self, element: _Element) -> float | None:
        where = element.block.name if element.block else None
        if element.cut:
            return None
        raw = self.text[element.content_start : element.value_end]
        return self.number(raw, "<score>", where, element.open.start, element)

    def read_component(self, element: _Element) -> tuple[str, float] | None:
        where = element.block.name if element.block else None
        attrs = self.attributes(element, COMPONENT_ATTRIBUTES, where)
        name = normalise_label(attrs.get("name", ""))
        if not name:
            self.add(
                ProblemCode.BAD_ATTRIBUTES,
                '<component> needs a non-empty name="..."',
                where, element.open.start, element,
            )
            return None
        if element.cut:
            return None
        raw = self.text[element.content_start : element.value_end]
        value = self.number(raw, f"component {name!r}", where, element.open.start, element)
        return None if value is None else (name, value)

    def read_step(self, element: _Element) -> StepAssessment | None:
        where = element.block.name if element.block else None
        pos = element.open.start
        attrs = self.attributes(element, STEP_ATTRIBUTES, where)
        missing = [a for a in STEP_REQUIRED if a not in attrs]
        if missing:
            self.add(
                ProblemCode.BAD_ATTRIBUTES,
                f"<step> lacks attribute(s) {missing}",
                where, pos, element,
            )
            return None
        label = normalise_label(attrs["label"])
        if not label:
            self.add(ProblemCode.BAD_ATTRIBUTES, "<step> has an empty label", where, pos, element)
            return None
        start = self.number(attrs["start"], f"step {label!r} start", where, pos, element)
        end = self.number(attrs["end"], f"step {label!r} end", where, pos, element)
        quality = None
        if "quality" in attrs:
            quality = self.number(attrs["quality"], f"step {label!r} quality", where, pos, element)
        if start is None or end is None:
            return None
        if not 0.0 <= start <= end:
            self.add(
                ProblemCode.BAD_STEP_SPAN,
                f"step {label!r} spans {start}..{end} s; expected 0 <= start <= end",
                where, pos, element,
            )
            return None
        pieces = self.free_text(element.content_start, element.content_end, element.holes or [])
        analysis = "\n".join(piece for _, piece in pieces)
        try:
            return StepAssessment(
                label=label, start=start, end=end, quality=quality, analysis=analysis
            )
        except ValidationError as exc:  # rounding can only narrow values; kept as a guard
            self.add(ProblemCode.BAD_STEP_SPAN, str(exc.errors()[0]["msg"]), where, pos, element)
            return None

    # the whole text ------------------------------------------------------------------------

    def run(self) -> ParseResult:
        text = self.text
        if not text.strip():
            self.add(ProblemCode.EMPTY, "the completion is empty")
        self.find_partial_tail()
        tags = self.tags = self.tokens()
        blocks, orphans, outside = self.structure(tags)

        by_name: dict[str, list[_Block]] = {name: [] for name in BLOCKS}
        for block in blocks:
            by_name[block.name].append(block)
        first = {name: found[0] for name, found in by_name.items() if found}
        for name in BLOCKS:
            count = len(by_name[name])
            if count == 0:
                self.add(ProblemCode.MISSING_BLOCK, f"no <{name}> block", name)
            elif count > 1:
                self.add(
                    ProblemCode.REPEATED_BLOCK,
                    f"<{name}> occurs {count} times; expected once",
                    name, by_name[name][1].open.start,
                )
        positions = [first[name].open.start for name in BLOCKS if name in first]
        in_order = positions == sorted(positions)
        if not in_order:
            self.add(
                ProblemCode.BLOCK_ORDER,
                f"blocks must come in the order {', '.join(BLOCKS)}",
            )
        self.check_outside(blocks, outside)

        # Elements by kind: from the block they belong in first, then repeats, then elsewhere.
        groups: dict[str, list[list[_Element]]] = {}
        everywhere = self.all_elements(blocks, orphans)
        for kind, home in ELEMENT_BLOCK.items():
            own = [e for e in first[home].elements if e.name == kind] if home in first else []
            repeats = [
                e for b in by_name[home][1:] for e in b.elements if e.name == kind
            ]
            elsewhere = [
                e for e in everywhere
                if e.name == kind and (e.block is None or e.block.name != home)
            ]
            for e in elsewhere:
                where = e.block.name if e.block else None
                self.add(
                    ProblemCode.MISPLACED_TAG,
                    f"<{kind}> belongs inside <{home}>"
                    + (f", not <{where}>" if where else ", not outside every block"),
                    where, e.open.start, e,
                )
            groups[kind] = [own, repeats, elsewhere]

        _, action = self.pick_single(ACTION, groups[ACTION], first, self.read_action)
        steps = self.pick_steps(groups[STEP], first)
        components = self.pick_components(groups[COMPONENT], first)
        score = self.pick_score(groups[SCORE], first)
        if RECOGNITION in first:
            self.check_recognition(first[RECOGNITION])
        if SUBACTIONS in first:
            self.check_subactions(first[SUBACTIONS])
        if SCORING in first:
            self.check_scoring(first[SCORING])

        recognition_text = self.reasoning(first.get(RECOGNITION))
        scoring_text = self.reasoning(first.get(SCORING))
        assessment = Assessment(
            recognition_reasoning=recognition_text,
            action=action,
            steps=steps,
            scoring_reasoning=scoring_text,
            components=components,
            score=score,
        )
        statuses = {}
        flawed_blocks = {block for _, _, block, _ in self.found}
        for name in BLOCKS:
            found = by_name[name]
            statuses[name] = BlockStatus(
                count=len(found),
                closed=bool(found) and found[0].closed,
                well_formed=len(found) == 1 and found[0].closed and name not in flawed_blocks,
                position=found[0].open.start if found else None,
            )
        return ParseResult(
            assessment=assessment,
            problems=self.problem_list(),
            blocks=statuses,
            in_order=in_order,
            strict=self.strict,
            step_tags=sum(1 for t in tags if t.name == STEP and not t.closing),
        )

    @staticmethod
    def all_elements(blocks: list[_Block], orphans: list[_Element]) -> list[_Element]:
        out = [e for b in blocks for e in b.elements] + orphans
        out.sort(key=lambda e: e.open.start)
        return out

    def check_outside(
        self, blocks: list[_Block], outside: list[tuple[int, int, bool]]
    ) -> None:
        """Nothing but whitespace (and reported tags) may stand outside the blocks."""
        covered = sorted([(b.open.start, b.end) for b in blocks] + [s[:2] for s in outside])
        pos = 0
        for start, end in [*covered, (self.limit, self.limit)]:
            if start > pos and self.text[pos:start].strip():
                self.add(ProblemCode.STRAY_TEXT, "text outside the blocks", None, pos)
                return
            pos = max(pos, end)

    def usable(self, element: _Element, first: dict[str, _Block]) -> bool:
        """In strict mode only flawless elements of the first block of their kind count."""
        if not self.strict:
            return True
        home = ELEMENT_BLOCK[element.name]
        return not element.flawed and home in first and element.block is first[home]

    def candidates(self, groups: list[list[_Element]]) -> list[list[_Element]]:
        return groups[:1] if self.strict else groups

    def pick_single(
        self,
        kind: str,
        groups: list[list[_Element]],
        first: dict[str, _Block],
        read: Callable[[_Element], tuple[bool, Any]],
    ) -> tuple[bool, Any]:
        """The value of an element that occurs once (``action``, ``score``): (found, value)."""
        home, own = ELEMENT_BLOCK[kind], groups[0]
        if home in first and not own:
            self.add(ProblemCode.MISSING_ELEMENT, f"no <{kind}> in <{home}>", home)
        for extra in own[1:]:
            self.add(
                ProblemCode.REPEATED_ELEMENT, f"more than one <{kind}>", home,
                extra.open.start, extra,
            )
        # Every element is read (so its problems are reported in both modes) before choosing.
        readings = {id(e): read(e) for group in groups for e in group}
        for group in self.candidates(groups):
            for element in group:
                readable, value = readings[id(element)]
                if readable and self.usable(element, first):
                    return True, value
        return False, None

    def pick_steps(
        self, groups: list[list[_Element]], first: dict[str, _Block]
    ) -> list[StepAssessment]:
        readings = [[(e, self.read_step(e)) for e in group] for group in groups]
        chosen: list[StepAssessment] = []
        for group in self.candidates(readings):
            read = [(e, s) for e, s in group if s is not None]
            if read:
                chosen_all = [s for _, s in read]
                self.check_step_order(chosen_all, read[0][0])
                chosen = [s for e, s in read if self.usable(e, first)]
                break
        return chosen

    def check_step_order(self, steps: list[StepAssessment], head: _Element) -> None:
        where = head.block.name if head.block else None
        late = [i for i in range(1, len(steps)) if steps[i].start < steps[i - 1].start]
        if late:
            self.add(
                ProblemCode.STEPS_OUT_OF_ORDER,
                f"{len(late)} step(s) start before the step written before them "
                f"(first: step {late[0] + 1}, {steps[late[0]].label!r})",
                where, head.open.start,
            )

    def pick_components(
        self, groups: list[list[_Element]], first: dict[str, _Block]
    ) -> dict[str, float]:
        readings = [[(e, self.read_component(e)) for e in group] for group in groups]
        for group in self.candidates(readings):
            read = [(e, c) for e, c in group if c is not None]
            if not read:
                continue
            out: dict[str, float] = {}
            seen: set[str] = set()
            for element, (name, value) in read:
                if name in seen:
                    where = element.block.name if element.block else None
                    self.add(
                        ProblemCode.DUPLICATE_COMPONENT,
                        f"component {name!r} is given more than once",
                        where, element.open.start, element,
                    )
                    continue
                seen.add(name)
                if self.usable(element, first):
                    out[name] = value
            return out
        return {}

    def pick_score(self, groups: list[list[_Element]], first: dict[str, _Block]) -> float | None:
        def read(element: _Element) -> tuple[bool, float | None]:
            value = self.read_score(element)
            return value is not None, value

        found, value = self.pick_single(SCORE, groups, first, read)
        if found:
            return value
        if self.strict:
            return None
        last = None
        # Free text only: every tag and other markup (an attribute like label="score" start="0",
        # even in a tag whose '>' is missing) is masked with "<", which the phrase cannot cross,
        # so positions stay those of the text.
        parts, pos = [], 0
        for tag in self.tags:
            parts += [self.text[pos : tag.start], "<" * (tag.end - tag.start)]
            pos = tag.end
        parts.append(self.text[pos : self.limit])
        for match in _SCORE_PHRASE.finditer("".join(parts)):
            last = match
        if last is not None and len(last.group(1)) <= _MAX_NUMERAL:
            value = float(last.group(1))
            if value <= MAX_ABS:
                self.add(
                    ProblemCode.SCORE_FROM_TEXT,
                    f"no readable <score>; took {last.group(1)} from the words around it",
                    None, last.start(),
                )
                return value
        return None

    def check_recognition(self, block: _Block) -> None:
        """Strict layout: reasoning, then the action; nothing after it."""
        actions = [e for e in block.elements if e.name == ACTION]
        if not actions:
            return
        after = actions[0].span[1]
        for pos, piece in self.pieces(block):
            if pos >= after and piece.strip():
                self.add(
                    ProblemCode.STRAY_TEXT, "text after <action> in <recognition>",
                    RECOGNITION, pos,
                )
                return

    def check_subactions(self, block: _Block) -> None:
        """Strict layout: only <step> elements."""
        for pos, piece in self.pieces(block):
            if piece.strip():
                self.add(ProblemCode.STRAY_TEXT, "text between <step> elements", SUBACTIONS, pos)
                return

    def check_scoring(self, block: _Block) -> None:
        """Strict layout: reasoning, then components, then the score last."""
        if not block.elements:
            return
        head = block.elements[0].open.start
        for pos, piece in self.pieces(block):
            if pos >= head and piece.strip():
                self.add(
                    ProblemCode.STRAY_TEXT, "text after the first element of <scoring>",
                    SCORING, pos,
                )
                break
        seen_score = False
        for element in block.elements:
            if element.name == SCORE:
                seen_score = True
            elif element.name == COMPONENT and seen_score:
                self.add(
                    ProblemCode.MISPLACED_TAG, "<component> after <score>",
                    SCORING, element.open.start, element,
                )

    def reasoning(self, block: _Block | None) -> str:
        if block is None:
            return ""
        parts = [piece.strip() for _, piece in self.pieces(block)]
        return "\n".join(p for p in parts if p)


def parse_sar(
    text: object, strict: bool = False, max_chars: int | None = MAX_CHARS
) -> ParseResult:
    """Read a SAR completion; never raises.

    ``strict=True`` (the format reward) keeps only values from flawless elements in their own
    block; ``strict=False`` (evaluation) takes whatever can be read. Both report every problem
    found; ``result.ok`` is true only for a completion in the exact format. Anything that is
    not a ``str`` (``bytes`` are decoded as UTF-8) is an ``empty`` completion.

    Only the first ``max_chars`` characters are read (default :data:`MAX_CHARS`; ``None``: no
    limit): a longer text is read as if it ended there, like an answer cut off by a generation
    limit, with a ``too_long`` problem.
    """
    if isinstance(text, (bytes, bytearray)):
        if max_chars is not None:  # UTF-8 takes at most 4 bytes a character
            text = bytes(text[: 4 * max_chars + 4])
        text = bytes(text).decode("utf-8", errors="replace")
    if not isinstance(text, str):
        text = ""
    too_long = max_chars is not None and len(text) > max(0, max_chars)
    if too_long:
        text = text[: max(0, max_chars)]
    try:
        parser = _Parser(text, strict)
        if too_long:
            parser.add(
                ProblemCode.TOO_LONG,
                f"the text is longer than {max_chars} characters; the rest was not read",
                None, len(text),
            )
        return parser.run()
    except Exception as exc:  # model output must never crash a training run
        return ParseResult(
            assessment=Assessment(),
            problems=[
                Problem(code=ProblemCode.PARSER_ERROR, message=f"parser bug: {exc!r}"),
            ],
            blocks={name: BlockStatus() for name in BLOCKS},
            in_order=False,
            strict=strict,
            step_tags=0,
        )


__all__ = [
    "MAX_CHARS",
    "MAX_PROBLEMS_PER_CODE",
    "BlockStatus",
    "ParseResult",
    "Problem",
    "ProblemCode",
    "parse_sar",
]
