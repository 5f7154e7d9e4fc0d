"""``hieroaction calibrate`` as Python: answer a split's clips and fit split-conformal intervals.

:func:`calibrate` runs the :class:`~hieroaction.inference.assessor.Assessor` on the clips of a
validation split that have a true score and stores a
:class:`~hieroaction.inference.calibration.Calibration` in the model folder; the Assessor reads
it back (so this module sits above both).
"""

from __future__ import annotations

import datetime as _dt
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hieroaction.inference.conformal as conformal
from hieroaction.data.records import BadLine, Record, read_jsonl
from hieroaction.domains import get_domain
from hieroaction.errors import ConfigError, DataError
from hieroaction.inference.calibration import (
    CALIBRATION_FILE,
    MIN_CLIPS,
    Calibration,
    Sampling,
    weights_fingerprint,
    write_calibration,
)

# ---------------------------------------------------------------------------------------------
# Calibrating
# ---------------------------------------------------------------------------------------------


def calibration_records(records: Sequence[Record], split: str | None, name: str = "the records") -> list[Record]:
    """The records of ``split`` that have a true score; :class:`DataError` (one sentence) when the
    split is absent, none has a true score, or fewer than :data:`MIN_CLIPS` do."""
    if split is not None:
        chosen = [r for r in records if r.split == split]
        if not chosen:
            present = ", ".join(sorted({str(r.split) for r in records}))
            raise DataError(f"{name}: no record has split {split!r} (splits present: {present})")
    else:
        chosen = list(records)
    where = f"split {split!r} of {name}" if split is not None else name
    scored = [r for r in chosen if r.score.final is not None]
    if not scored:
        raise DataError(f"{where}: no clip has a true score, so there is nothing to calibrate against")
    if len(scored) < MIN_CLIPS:
        raise DataError(
            f"{where}: only {len(scored)} clip(s) have a true score; a calibration needs at least "
            f"{MIN_CLIPS} (the conformal quantile of fewer says almost nothing)"
        )
    return scored


def _default_floor(true: Sequence[float]) -> float:
    """1 % of the calibration clips' true score range (0.01 when they all agree)."""
    span = max(true) - min(true)
    return 0.01 * span if span > 0 else 0.01


def calibrate(
    model_dir: str | Path,
    records: str | Path | Sequence[Record],
    split: str | None = "val",
    samples: int = 1,
    coverage: float = 0.9,
    *,
    temperature: float = 1.0,
    spread: str = "std",
    floor: float | None = None,
    seed: int = 0,
    config: Any = None,
    assessor: Any = None,
    base_dir: str | Path | None = None,
    frames_cache: str | Path | None = None,
    progress: bool = False,
    write: bool = True,
) -> Calibration:
    """Calibrate the model of ``model_dir`` on the clips of ``split`` and store the result there.

    Args:
        model_dir: the model folder (the calibration is written into it; a Hub id is refused:
            copy the model to a folder first).
        records: a records JSONL file (relative video paths are relative to its folder) or
            :class:`~hieroaction.data.records.Record` objects.
        split: the records' split to use (``None``: all of them). Never the test split.
        samples: answers per clip: 1 gives the ``absolute`` method; ``N > 1`` samples ``N``
            answers besides the greedy one and gives ``normalised``.
        coverage: the nominal coverage, strictly between 0 and 1.
        temperature: the sampling temperature (``samples > 1``).
        spread: ``std`` or ``mad`` of the sampled scores.
        floor: added to the spread (default: 1 % of the clips' true score range).
        seed: seed of the sampling.
        config: :class:`~hieroaction.inference.InferenceConfig` (default: the folder's own).
        assessor: an already loaded model of ``model_dir`` (its sampling is set for the call
            and restored after).
        base_dir: folder of relative video paths (default: the records file's folder).
        frames_cache: a frame cache folder (``hieroaction data frames``).
        progress: a progress bar on stderr.
        write: store the calibration in ``model_dir`` (the default).

    Raises:
        HieroActionError: (one sentence, nothing written) a coverage outside (0, 1), a split
            without true scores or with fewer than 20 clips, a bad setting or model folder.
    """
    coverage = conformal.check_coverage(coverage)
    if isinstance(samples, bool) or not isinstance(samples, int):
        raise ConfigError(f"samples must be a whole number, got {samples!r}")
    sampling = Sampling(samples, temperature, spread, seed)
    if floor is not None and not (math.isfinite(floor) and floor >= 0):
        raise ConfigError(f"floor must be a number >= 0, got {floor}")
    folder = Path(model_dir).expanduser()
    if not folder.is_dir():
        raise ConfigError(
            f"model {model_dir}: not a local folder; calibrate writes {CALIBRATION_FILE} into the "
            "model folder, so download or copy the model to one first"
        )
    fingerprint = weights_fingerprint(folder)
    data_name = None
    if isinstance(records, (str, Path)):
        data_name = str(records)
        bad: list[BadLine] = []
        loaded = read_jsonl(records, bad=bad)
        if not loaded:
            first = f" (first problem: {bad[0]})" if bad else ""
            raise DataError(f"{records}: holds no readable record{first}")
        base_dir = base_dir if base_dir is not None else Path(records).parent
        records = loaded
    chosen = calibration_records(list(records), split, data_name or "the records")
    for domain in sorted({r.domain for r in chosen}):
        get_domain(domain)

    from hieroaction.inference.assessor import Assessor
    from hieroaction.video import FrameCache

    if assessor is None:
        assessor = Assessor.from_pretrained(folder, config, calibrated=False)
    cache = FrameCache(frames_cache, base_dir=base_dir) if frames_cache is not None else None
    saved = assessor.sampling, assessor.calibration
    assessor.sampling, assessor.calibration = (sampling if samples > 1 else None), None
    results = []
    try:
        from tqdm import tqdm

        with tqdm(total=len(chosen), desc="calibrate", unit="clip", disable=not progress, file=sys.stderr) as bar:
            for result in assessor.assess_records(chosen, cache=cache, base_dir=base_dir):
                results.append(result)
                bar.update(1)
    finally:
        assessor.sampling, assessor.calibration = saved

    method = "normalised" if samples > 1 else "absolute"
    true = [float(r.score.final) for r in chosen]  # type: ignore[arg-type]
    floor = _default_floor(true) if floor is None else float(floor)
    scores = []
    for result, y in zip(results, true):
        pred = result.assessment.score if result.assessment is not None else None
        sigma = result.agreement.spread if result.agreement is not None else None
        scores.append(conformal.nonconformity(y, pred, sigma, floor, method))
    scores.sort()
    missing = sum(not math.isfinite(s) for s in scores)
    calibration = Calibration(
        method=method,
        coverage=coverage,
        quantile=conformal.conformal_quantile(scores, coverage),
        n=len(chosen),
        samples=samples,
        scores=scores,
        fingerprint=fingerprint,
        created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        missing=missing,
        temperature=float(temperature),
        spread=spread,
        floor=floor if method == "normalised" else 0.0,
        seed=seed,
        split=split,
        data=data_name,
        model=str(model_dir),
    )
    if write:
        write_calibration(folder, calibration)
    return calibration


__all__ = ["calibrate", "calibration_records"]
