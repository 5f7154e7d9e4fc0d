"""Calibrated scores: a split-conformal interval around every predicted score.

``calibrate(model_dir, records, split="val", samples=1, coverage=0.9)`` answers the clips of a
validation split with the model (the :class:`~hieroaction.inference.Assessor`, batched), measures
how far each predicted score lies from the true one, and stores the result, a
:class:`Calibration`, in the model folder as ``hieroaction_calibration.json`` (next to
``hieroaction_inference.yaml``, written atomically). From then on every assessment of that model
(``Assessor``, ``hieroaction assess``, ``serve``, ``evaluate --model``) carries a
:class:`ScoreInterval`: "78.2, 90 % interval 74.1-81.9".

Two methods (the math is :mod:`hieroaction.inference.conformal`):

- ``absolute`` (``samples=1``): the nonconformity score of a clip is ``|y - yhat|``, ``yhat`` the
  greedy answer's score; every interval has the same width.
- ``normalised`` (``samples=N > 1``): the model also samples ``N`` answers per clip (at
  ``temperature``); the score is ``|y - yhat| / (sigma + floor)`` with ``sigma`` the spread (std
  or MAD) of the sampled answers' scores, so clips on which the model hesitates get wider
  intervals. The same ``N`` answers are sampled for every later assessment, which also says how
  often they agree with the shown answer on the action and on the step sequence.

A clip without a predicted score (an unreadable answer, a video that could not be read), and for
``normalised`` a clip with fewer than two sampled scores, counts as an infinite error: never
covered, so the stored coverage is honest. With too many of them the quantile is infinite and
intervals are unbounded (the domain's score range, where it has one).

A calibration belongs to one set of weights: it stores their fingerprint
(:func:`weights_fingerprint`), and a model folder whose weights changed since refuses its old
calibration in one sentence.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hieroaction.inference.conformal as conformal
from hieroaction.domains import get_domain
from hieroaction.errors import ConfigError
from hieroaction.io import read_json_object, write_json_atomic

CALIBRATION_FILE = "hieroaction_calibration.json"
FORMAT = "hieroaction-calibration"
VERSION = 1
MIN_CLIPS = 20
# The levels of the reliability plot of ``hieroaction evaluate``.
RELIABILITY_LEVELS = (0.5, 0.8, 0.9, 0.95)

# Weight files a fingerprint covers, by kind, the first kind present wins.
_WEIGHT_PATTERNS = (("*.safetensors",), ("*.bin", "*.pt", "*.pth"))
_MIB = 1 << 20


# ---------------------------------------------------------------------------------------------
# Which weights
# ---------------------------------------------------------------------------------------------


def weights_fingerprint(folder: str | Path) -> str:
    """``sha256:<hex>`` of a checkpoint folder's weight files.

    The files are the folder's ``*.safetensors`` (a LoRA adapter's ``adapter_model.safetensors``
    included), or where there is none its ``*.bin`` / ``*.pt`` / ``*.pth``, in name order; for
    each, its name, its size in bytes, its first MiB and its last MiB go into one SHA-256. That
    reads at most 2 MiB a file, so a 15 GB checkpoint is fingerprinted in milliseconds, and any
    retraining changes it (a safetensors file starts with its header, which names every tensor
    with its offsets, and the tensors' bytes change at both ends). Two folders holding the same
    weights have the same fingerprint.
    """
    folder = Path(folder)
    files: list[Path] = []
    for patterns in _WEIGHT_PATTERNS:
        files = sorted({p for pattern in patterns for p in folder.glob(pattern) if p.is_file()})
        if files:
            break
    if not files:
        raise ConfigError(f"{folder}: holds no weight files (*.safetensors, *.bin), so a calibration cannot be tied to them")
    digest = hashlib.sha256()
    for path in files:
        size = path.stat().st_size
        digest.update(f"{path.name}\0{size}\0".encode())
        with open(path, "rb") as fh:
            digest.update(fh.read(_MIB))
            if size > _MIB:
                fh.seek(max(_MIB, size - _MIB))
                digest.update(fh.read(_MIB))
    return "sha256:" + digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# What an assessment carries
# ---------------------------------------------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:.1f}"


@dataclass
class ScoreInterval:
    """The conformal interval of one predicted score.

    Attributes:
        low, high: the bounds (``-inf``/``inf`` when unbounded; cut to the domain's score range
            where it has one); both ``None`` when there is no interval (``reason`` says why).
        coverage: the nominal coverage (0.9: the true score lies inside for at least 90 % of
            clips like the calibration clips).
        method: ``absolute`` or ``normalised``.
        unbounded: the calibration's quantile is infinite (too few calibration clips with a
            score for this coverage): the interval says nothing beyond the score range.
        reason: why ``low`` and ``high`` are missing.
    """

    low: float | None
    high: float | None
    coverage: float
    method: str = "absolute"
    unbounded: bool = False
    reason: str | None = None

    @property
    def width(self) -> float | None:
        """``high - low`` (``inf`` unbounded, ``None`` without an interval)."""
        if self.low is None or self.high is None:
            return None
        return self.high - self.low

    def text(self) -> str:
        """``90 % interval 74.1-81.9`` (or why there is none)."""
        level = f"{100 * self.coverage:g} % interval"
        if self.low is None or self.high is None:
            return f"no {level} ({self.reason})" if self.reason else f"no {level}"
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return f"{level} unbounded (the calibration has too few clips with a score for this coverage)"
        # one decimal, more for an interval narrower than 1 (so its two ends differ)
        width = self.high - self.low
        decimals = 1 if width >= 1 or width <= 0 else min(4, 1 - math.floor(math.log10(width)))
        text = f"{level} {self.low:.{decimals}f}-{self.high:.{decimals}f}"
        if self.unbounded:
            text += " (the whole score range: the calibration has too few clips with a score for this coverage)"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (an infinite bound is ``null`` with ``unbounded`` true)."""
        finite = [v if v is not None and math.isfinite(v) else None for v in (self.low, self.high)]
        return {
            "low": finite[0], "high": finite[1], "coverage": self.coverage, "method": self.method,
            "unbounded": self.unbounded or (self.low is not None and finite[0] is None),
            "reason": self.reason, "text": self.text(),
        }


@dataclass
class SampleAgreement:
    """What ``n`` sampled answers to the same clip say about the shown (greedy) answer.

    Attributes:
        n: sampled answers.
        scores: the scores read from them (an unreadable one gives none).
        spread: their spread (``spread_kind``), ``None`` with fewer than two scores.
        action_agree: how many give the shown answer's action (``None`` when it has none).
        steps_agree: how many give its step sequence (labels in order; ``None`` when it has none).
        temperature: the sampling temperature.
    """

    n: int
    scores: list[float] = field(default_factory=list)
    spread: float | None = None
    action_agree: int | None = None
    steps_agree: int | None = None
    temperature: float = 1.0
    spread_kind: str = "std"

    @property
    def action_share(self) -> float | None:
        return None if self.action_agree is None or not self.n else self.action_agree / self.n

    @property
    def steps_share(self) -> float | None:
        return None if self.steps_agree is None or not self.n else self.steps_agree / self.n

    def text(self) -> str:
        """``8 sampled answers: 7 give this action, 5 this step sequence; their 8 scores spread 2.3 (std)``."""
        parts = []
        if self.action_agree is not None:
            parts.append(f"{self.action_agree} give this action")
        if self.steps_agree is not None:
            parts.append(f"{self.steps_agree} this step sequence")
        if self.spread is not None:
            parts.append(f"their {len(self.scores)} scores spread {_number(self.spread)} ({self.spread_kind})")
        else:
            parts.append(f"{len(self.scores)} of them gave a score")
        return f"{self.n} sampled answers (temperature {self.temperature:g}): " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n, "scores": list(self.scores), "spread": self.spread, "spread_kind": self.spread_kind,
            "action_agree": self.action_agree, "action_share": self.action_share,
            "steps_agree": self.steps_agree, "steps_share": self.steps_share,
            "temperature": self.temperature, "text": self.text(),
        }


@dataclass
class Sampling:
    """How an :class:`~hieroaction.inference.Assessor` samples extra answers per clip: ``n``
    answers at ``temperature`` (the full distribution: no top-k or top-p), seeded per batch so a
    rerun gives the same answers; their spread is measured as ``spread`` (``std`` or ``mad``)."""

    n: int
    temperature: float = 1.0
    spread: str = "std"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ConfigError(f"samples must be at least 1, got {self.n}")
        if not (isinstance(self.temperature, (int, float)) and self.temperature > 0):
            raise ConfigError(f"temperature must be positive, got {self.temperature!r}")
        conformal.spread([], self.spread)  # checks the kind


def agreement(shown: Any, sampled: Sequence[Any], sampling: Sampling) -> SampleAgreement:
    """:class:`SampleAgreement` of the sampled answers (parsed ``Assessment`` objects, ``None``
    for an unreadable one) with the shown answer ``shown``."""
    scores = [a.score for a in sampled if a is not None and a.score is not None]
    action = shown.action if shown is not None else None
    labels = [s.label for s in shown.steps] if shown is not None else []
    return SampleAgreement(
        n=len(sampled),
        scores=[float(s) for s in scores],
        spread=conformal.spread(scores, sampling.spread),
        action_agree=None if action is None else sum(a is not None and a.action == action for a in sampled),
        steps_agree=None if not labels else sum(
            a is not None and [s.label for s in a.steps] == labels for a in sampled
        ),
        temperature=sampling.temperature,
        spread_kind=sampling.spread,
    )


# ---------------------------------------------------------------------------------------------
# The calibration
# ---------------------------------------------------------------------------------------------


@dataclass
class Calibration:
    """A model's split-conformal calibration (the content of ``hieroaction_calibration.json``).

    Attributes:
        method: ``absolute`` (``samples`` 1) or ``normalised`` (``samples`` > 1).
        coverage: the nominal coverage of the intervals.
        quantile: the conformal quantile of ``scores`` at ``coverage`` (``inf``: unbounded).
        n: calibration clips (with a true score).
        samples: answers sampled per clip (1: the greedy answer only).
        scores: the clips' nonconformity scores, sorted (``inf`` for a clip without a predicted
            score, or without a spread); ``evaluate`` refits the quantile at other levels from
            them.
        fingerprint: :func:`weights_fingerprint` of the model the calibration was made for.
        created: when (ISO 8601, UTC).
        missing: clips with an infinite score: without a predicted score, or (``normalised``)
            with fewer than two sampled scores.
        temperature, spread, seed: the sampling (``normalised``).
        floor: added to the spread: ``|y - yhat| / (sigma + floor)``.
        split, data, model: where the calibration clips came from.
        path: the file it was read from or written to (not stored).
    """

    method: str
    coverage: float
    quantile: float
    n: int
    samples: int
    scores: list[float]
    fingerprint: str
    created: str
    missing: int = 0
    temperature: float = 1.0
    spread: str = "std"
    floor: float = 0.0
    seed: int = 0
    split: str | None = None
    data: str | None = None
    model: str | None = None
    path: Path | None = field(default=None, compare=False, repr=False)

    @property
    def sampling(self) -> Sampling | None:
        """The sampling every assessment with this calibration needs (``None`` for ``absolute``)."""
        if self.samples <= 1:
            return None
        return Sampling(self.samples, self.temperature, self.spread, self.seed)

    def quantile_at(self, coverage: float) -> float:
        """The conformal quantile refitted from the stored scores at another coverage."""
        return conformal.conformal_quantile(self.scores, coverage)

    def nonconformity(self, true: float, pred: float | None, spread: float | None = None) -> float:
        """The nonconformity score of one clip under this calibration's method."""
        return conformal.nonconformity(true, pred, spread, self.floor, self.method)

    def interval(self, pred: float | None, spread: float | None = None, domain: str | None = None,
                 samples: int | None = None) -> ScoreInterval | None:
        """The interval around the predicted score ``pred`` (``None`` without one), cut to the
        score range of ``domain`` where it has one; ``spread`` is the sampled answers' spread
        (``normalised``) and ``samples`` how many were sampled (for the reason)."""
        if pred is None or not math.isfinite(pred):
            return None
        bounds = get_domain(domain).score_range if domain is not None else None
        unbounded = not math.isfinite(self.quantile)
        span = conformal.interval(pred, self.quantile, spread, self.floor, self.method, bounds)
        if span is None:
            n = samples if samples is not None else self.samples
            return ScoreInterval(
                None, None, self.coverage, self.method,
                reason=f"fewer than two of the {n} sampled answers gave a score, so their spread is unknown",
            )
        return ScoreInterval(span[0], span[1], self.coverage, self.method, unbounded=unbounded)

    def summary(self) -> str:
        """One sentence: the method, the quantile, the clips."""
        level = f"{100 * self.coverage:g} %"
        if not math.isfinite(self.quantile):
            what = (f"no finite {level} interval: only {self.n - self.missing} of the {self.n} clips had a "
                    f"usable predicted score (needs {conformal.conformal_rank(self.n, self.coverage)})")
        elif self.method == "absolute":
            what = f"{level} interval: score +/- {_number(self.quantile)}"
        else:
            what = (f"{level} interval: score +/- {_number(self.quantile)} x (spread of {self.samples} sampled "
                    f"scores + {_number(self.floor)})")
        missing = f", {self.missing} without a usable predicted score" if self.missing else ""
        return f"{what} ({self.method}; {self.n} clips of split {self.split}{missing})"

    def to_dict(self) -> dict[str, Any]:
        """The file's content (infinities become ``null``)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "method": self.method,
            "coverage": self.coverage,
            "quantile": self.quantile,
            "n": self.n,
            "missing": self.missing,
            "samples": self.samples,
            "temperature": self.temperature,
            "spread": self.spread,
            "floor": self.floor,
            "seed": self.seed,
            "fingerprint": self.fingerprint,
            "created": self.created,
            "split": self.split,
            "data": self.data,
            "model": self.model,
            "scores": list(self.scores),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], name: str = CALIBRATION_FILE) -> Calibration:
        """Read :meth:`to_dict`'s content back; :class:`ConfigError` (one sentence) when it is not one."""
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ConfigError(f"{name}: not a hieroaction calibration (format {FORMAT!r}, version {VERSION})")

        def number(key: str, default: Any = ...) -> float:
            value = data.get(key, default)
            if value is None:
                return math.inf
            if value is ... or isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{name}: {key!r} must be a number")
            return float(value)

        scores = data.get("scores")
        if not isinstance(scores, list) or any(
            s is not None and (isinstance(s, bool) or not isinstance(s, (int, float))) for s in scores
        ):
            raise ConfigError(f"{name}: 'scores' must be a list of numbers (null for an infinite one)")
        method = data.get("method")
        if method not in conformal.METHODS:
            raise ConfigError(f"{name}: 'method' must be one of {list(conformal.METHODS)}, got {method!r}")
        fingerprint = data.get("fingerprint")
        if not isinstance(fingerprint, str) or not fingerprint:
            raise ConfigError(f"{name}: no 'fingerprint' of the weights it was made for")
        try:
            coverage = conformal.check_coverage(data.get("coverage"))
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc}") from None
        return cls(
            method=method,
            coverage=coverage,
            quantile=number("quantile"),
            n=int(number("n")),
            samples=int(number("samples", 1)),
            scores=sorted(math.inf if s is None else float(s) for s in scores),
            fingerprint=fingerprint,
            created=str(data.get("created", "")),
            missing=int(number("missing", 0)),
            temperature=number("temperature", 1.0),
            spread=str(data.get("spread", "std")),
            floor=number("floor", 0.0),
            seed=int(number("seed", 0)),
            split=data.get("split"),
            data=data.get("data"),
            model=data.get("model"),
        )


def read_calibration(folder: str | Path, *, check: bool = True) -> Calibration | None:
    """The calibration kept in a model folder (``None`` when it has none).

    With ``check`` (the default), a calibration made for other weights (its fingerprint differs
    from :func:`weights_fingerprint` of ``folder``) is refused with one :class:`ConfigError`
    sentence: its intervals would describe another model.
    """
    path = Path(folder) / CALIBRATION_FILE
    if not path.is_file():
        return None
    calibration = read_calibration_file(path)
    if check:
        actual = weights_fingerprint(folder)
        if actual != calibration.fingerprint:
            raise ConfigError(
                f"{path}: the calibration was made for other weights (fingerprint "
                f"{calibration.fingerprint[:19]}..., this model's is {actual[:19]}...); run "
                "hieroaction calibrate again, or delete the file"
            )
    return calibration


def read_calibration_file(path: str | Path) -> Calibration:
    """A calibration file on its own, without its model folder (``hieroaction evaluate
    --predictions --calibration FILE``), so without the fingerprint check of
    :func:`read_calibration`; :class:`ConfigError` (one sentence) when it is not one."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(
            f"{path}: a folder, not a calibration file (a calibrated model folder keeps it as "
            f"{path / CALIBRATION_FILE})"
        )
    calibration = Calibration.from_dict(read_json_object(path, name=str(path)), name=str(path))
    calibration.path = path
    return calibration


def write_calibration(folder: str | Path, calibration: Calibration) -> Path:
    """Write ``calibration`` into the model folder, atomically; returns the path."""
    path = write_json_atomic(Path(folder) / CALIBRATION_FILE, calibration.to_dict())
    calibration.path = path
    return path


__all__ = [
    "CALIBRATION_FILE",
    "MIN_CLIPS",
    "RELIABILITY_LEVELS",
    "Calibration",
    "SampleAgreement",
    "Sampling",
    "ScoreInterval",
    "agreement",
    "read_calibration",
    "read_calibration_file",
    "weights_fingerprint",
    "write_calibration",
]
