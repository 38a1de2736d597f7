"""Fixed axis ranges of the view-model (no plotly): every panel and curve keeps one
range for the whole playback, so the figures never rescale and the browser's
cursor lines know their ends."""
from __future__ import annotations

from typing import Any

from trajviz.viewmodel.honesty import honesty
from trajviz.viewmodel.selection import (
    META_CURVES,
    MetaSelection,
    Selection,
    panel_spec,
    use_log,
    value_range,
)


def panel_axis(sel: Selection, key: str) -> dict[str, Any]:
    """A panel's fixed y range (log10 units on a log axis), whether it is log, the cursor
    line's ends in data units (``cursor``), and ``on_plane`` for a residual panel whose
    residuals are all rounding noise."""
    values = [sel.series[key][n] for n in sel.learners]
    spec = panel_spec(key)
    log = False
    on_plane = key == "residual" and honesty(sel).on_plane
    if key in ("loss", "straight"):
        both = values + [sel.plane[n] for n in sel.learners] if key == "loss" else \
            values + [sel.series["loss"][n] for n in sel.learners] + list(sel.straight.plane.values())
        log = use_log(both)
        rng = value_range(both, log=log)
    elif spec.diagnostic is not None:
        both = values + [[t] for t in [sel.diagnosis.thresholds.get(key)] if t is not None]
        err = sel.diagnosis.errors.get(key, {})
        both += [sel.series[key][n] + s * err[n] for n in err for s in (-1, 1)]
        both += [[0.0]] if spec.zero_line else []  # the zero line is always in view
        log = use_log(both)
        rng = value_range(both, log=log, floor=None if log else 0.0)
    elif spec.fixed is not None:
        rng = spec.fixed
    elif on_plane:  # rounding noise only: show a plain 0 line
        rng = (-0.05, 1.0)
    else:
        rng = value_range(values, floor=0.0)
    lo, hi = (10 ** rng[0], 10 ** rng[1]) if log else rng
    return {"range": tuple(rng), "log": log, "cursor": (float(lo), float(hi)),
            "on_plane": on_plane}


def meta_curve_ranges(meta: MetaSelection) -> list[tuple[float, float]]:
    """The fixed y range of each META_CURVES plot (from 0, over every learner's evals)."""
    ranges = []
    for m, _ in META_CURVES:
        ys = [meta.evals[n][m][1] for n in meta.learners if m in meta.evals[n]]
        ranges.append(value_range(ys, floor=0.0))
    return ranges


def meta_step_range(meta: MetaSelection) -> list[float]:
    """The meta-step axis range: the recorded meta-steps plus 2% each side."""
    last = float(meta.steps[-1]) if len(meta.steps) else 1.0
    return [-0.02 * last, 1.02 * last]


def meta_cursor_x(meta: MetaSelection, k: int) -> float:
    """The meta-step at frame ``k`` (where the curves' cursor stands)."""
    return float(meta.steps[k]) if len(meta.steps) else 0.0


__all__ = ["meta_curve_ranges", "meta_cursor_x", "meta_step_range", "panel_axis"]
