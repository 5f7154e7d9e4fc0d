"""A hand-written reader of the synthetic clips' quality cues, used by the tests.

It measures each cue from pixels alone (given the clip's colour and step frames, which the
action label and step annotations provide): the lean of the figure at take-off, the gap
between the turning axis and the body's line, the tilt before the entry and the splash area
afterwards. If it recovers the qualities, the cues are really in the pixels.
"""

from __future__ import annotations

import math

import numpy as np

from hieroaction.synth.render import ClipSpec, RenderConfig


def colour_mask(frame: np.ndarray, colour: tuple[int, int, int], tol: int) -> np.ndarray:
    """Pixels within ``tol`` of ``colour`` in every channel."""
    return np.all(np.abs(frame.astype(int) - np.array(colour)) <= tol, axis=-1)


def principal_line(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Centroid and unit direction (x, y) of the mask's pixels, or None when too few."""
    ys, xs = np.nonzero(mask)
    if len(xs) < 10:
        return None
    points = np.stack([xs, ys], axis=1).astype(float)
    centre = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - centre, full_matrices=False)
    return centre, vt[0]


def _off_vertical_deg(direction: np.ndarray) -> float:
    return math.degrees(math.atan2(abs(direction[0]), abs(direction[1])))


def read_qualities(frames: np.ndarray, spec: ClipSpec, config: RenderConfig, tol: int
                   ) -> tuple[float, float, float, float]:
    """Estimated take-off, turns and entry qualities, and the splash area (fraction of frame)."""
    size = frames.shape[1]
    n_take, n_turn, n_entry = spec.step_frames
    top = spec.quality_max
    leans = []
    for frame in frames[:n_take]:
        fit = principal_line(colour_mask(frame, spec.colour, tol))
        if fit is not None:
            leans.append(_off_vertical_deg(fit[1]))
    gaps = []
    axis = np.array(config.ring_centre) * size
    for frame in frames[n_take:n_take + n_turn]:
        fit = principal_line(colour_mask(frame, spec.colour, tol))
        if fit is not None:
            centre, d = fit
            v = axis - centre
            gaps.append(abs(v[0] * d[1] - v[1] * d[0]) / size)
    tilts = []
    for k, frame in enumerate(frames[n_take + n_turn:]):
        if (k + 0.5) / n_entry >= config.entry_contact:
            break
        fit = principal_line(colour_mask(frame, spec.colour, tol))
        if fit is not None:
            tilts.append(_off_vertical_deg(fit[1]))
    splash = colour_mask(frames[-1], config.splash_colour, tol).sum() / size**2
    return (
        top - float(np.mean(leans)) / config.lean_deg_per_point,
        top - float(np.mean(gaps)) / config.wobble_per_point,
        top - float(np.mean(tilts)) / config.entry_tilt_deg_per_point,
        float(splash),
    )
