"""The bounds of every configurable size and option, and their checks (no torch).

``config.validate`` is the one validation layer; it reads its limits from here:
``BOUNDS`` (integer sizes), ``REALS`` (real numbers), ``FAMILY_OPTIONS`` and
``LEARNER_OPTIONS`` (the registered families' and learners' options). Every
check raises ``ValueError`` with one line naming the key, the problem and what
is accepted.
"""
from __future__ import annotations

import math
from typing import Any

from trajviz.spec.names import BIRTH_STATISTICS

# Every size a config can ask for: key -> (lowest, highest), both inclusive.
BOUNDS: dict[str, tuple[int, int]] = {
    "inner.steps": (1, 5_000),
    "inner.batch_size": (0, 10_000),  # 0 = full batch
    "outer.meta_steps": (1, 100_000),
    "outer.meta_batch": (1, 1_024),
    "outer.eval_every": (1, 100_000),
    "outer.eval_tasks": (1, 256),
    "heldout_tasks": (1, 256),
    "slices.resolution": (2, 500),  # points per axis; surface.py accepts no more either
    "meta_path_points": (2, 10_001),
    "seed": (0, 2**63 - 1),
    "birthmap.grid": (2, 201),  # points per axis of a birth map (checked by check_birthmap)
    "birthmap.tasks": (1, 256),
}
MAX_GRID_POINTS = BOUNDS["slices.resolution"][1] ** 2  # a surface's A·B, wherever it comes from
# Real numbers: key -> (lowest, highest, whether the lowest itself is accepted).
REALS: dict[str, tuple[float, float, bool]] = {
    "inner.lr": (0.0, 1e6, False),
    "inner.momentum": (0.0, 1.0, True),
    "inner.beta1": (0.0, 1.0, True),
    "inner.beta2": (0.0, 1.0, True),
    "inner.eps": (0.0, 1.0, False),
    "outer.lr": (0.0, 1e6, False),
    "slices.margin": (0.0, 10.0, True),
    "inner.divergence_factor": (1.0, 1e300, False),
}
MAX_LAYERS = 8
MAX_WIDTH = 4_096
MAX_SHOTS = 10_000
# Options of the registered task families: kind and bounds. ``int``/``float``: (lo, hi);
# ``widths``: a list of 1..MAX_LAYERS layer widths in (lo, hi); ``range``: two finite
# numbers lo <= hi; ``choice``: the accepted strings. tests/test_config.py keeps this
# in step with the family dataclasses.
FAMILY_OPTIONS: dict[str, dict[str, tuple]] = {
    "sinusoid": {"shots": ("int", 1, MAX_SHOTS), "query_shots": ("int", 1, MAX_SHOTS),
                 "hidden": ("widths", 1, MAX_WIDTH), "amplitude": ("range",),
                 "phase": ("range",), "x_range": ("range",)},
    "linear2d": {"shots": ("int", 1, MAX_SHOTS), "query_shots": ("int", 1, MAX_SHOTS),
                 "angle_deg": ("range",), "radius": ("range",), "noise": ("float", 0.0, 1e3),
                 "fixed": ("bool",)},
    "quadratic": {"dim": ("int", 1, 2_000), "condition": ("float", 1.0, 1e12),
                  "spread": ("float", 0.0, 1e6), "init_scale": ("float", 0.0, 1e6)},
    "digits": {"ways": ("int", 2, 10), "shots": ("int", 1, 116), "query_shots": ("int", 1, 116),
               "net": ("choice", "mlp", "conv"), "hidden": ("int", 1, MAX_WIDTH)},
}
# Options of the learners (all true/false); tests keep this in step with the dataclasses.
LEARNER_OPTIONS: dict[str, tuple[str, ...]] = {
    "leap": ("norm", "loss", "stabilizer"), "maml": ("first_order",),
}


def family_options(family: str, options: dict[str, Any]) -> dict[str, Any]:
    """A registered family's options checked against ``FAMILY_OPTIONS`` and resolved
    (ints for integer options, floats for real ones, tuples for lists); a plugin's
    options are passed on as given, once every number in them is known to be finite."""
    if family not in FAMILY_OPTIONS:
        finite(f"family_options of {family!r}", options)
        return dict(options)
    schema = FAMILY_OPTIONS[family]
    unknown = sorted(set(options) - set(schema))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for family {family!r}; "
                         f"accepted: {sorted(schema)}")
    return {key: _family_option(f"family {family!r} option {key!r}", value, schema[key])
            for key, value in options.items()}


def _family_option(where: str, value: Any, rule: tuple) -> Any:
    kind = rule[0]
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if kind == "choice":
        if value not in rule[1:]:
            raise ValueError(f"{where}: unknown value {value!r}; accepted: {sorted(rule[1:])}")
        return value
    if kind == "widths":
        low, high = rule[1:]
        if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= MAX_LAYERS or not all(
                isinstance(v, int) and not isinstance(v, bool) and low <= v <= high for v in value):
            raise ValueError(f"{where} must be a list of 1 to {MAX_LAYERS} layer widths, each an "
                             f"integer in {low}..{high}, got {value!r}")
        return tuple(value)
    if kind == "range":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ValueError(f"{where} must be a pair [low, high] of numbers, got {value!r}")
        low, high = (_family_option(where, v, ("float", -1e12, 1e12)) for v in value)
        if low > high:
            raise ValueError(f"{where} must have low <= high, got {value!r}")
        return (low, high)
    low, high = rule[1:]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where} must be a number, got {value!r}")
    if kind == "int" and not (math.isfinite(value) and value == int(value)):
        raise ValueError(f"{where} must be an integer, got {value!r}")
    if kind == "int" and not low <= value <= high:
        raise ValueError(f"{where} must be an integer in {low}..{high}, got {value!r}")
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{where} must be a finite number in [{low:g}, {high:g}], got {value!r}")
    return int(value) if kind == "int" else float(value)


def finite(where: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} holds {value!r}; accepted: finite numbers")
    for item in value.values() if isinstance(value, dict) else (
            value if isinstance(value, (list, tuple)) else ()):
        finite(where, item)


def check_birthmap(grid: int, tasks: int, statistic: str, quantile: float, prefix: str = "") -> None:
    """Bounds of a birth map's settings (config keys and ``trajviz birthmap`` flags)."""
    for key, value in (("grid", grid), ("tasks", tasks)):
        low, high = BOUNDS[f"birthmap.{key}"]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{prefix}{key} must be an integer in {low}..{high}, got {value!r}")
    if statistic not in BIRTH_STATISTICS:
        raise ValueError(f"{prefix}statistic: unknown value {statistic!r}; accepted: {list(BIRTH_STATISTICS)}")
    if isinstance(quantile, bool) or not isinstance(quantile, (int, float)) or not 0 < quantile <= 1:
        raise ValueError(f"{prefix}quantile must be a fraction in (0, 1], got {quantile!r}")
