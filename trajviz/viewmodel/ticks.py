"""Readable ticks for log-scale axes (view-model, no plotly).

Plotly's own log ticks label every 1-2-5 mantissa ("2, 5, 1, 2, 5": 0.2 and 2
both read "2") and every decade of a blow-up (18 labels piled up). ``log_ticks``
picks the tick values and their texts instead: whole decades, thinned to at
most ``MAX_TICKS``, or, on a range narrower than about two decades, 1-2-5 (or
1..9) mantissas, always with distinct texts.
"""
from __future__ import annotations

import math

import numpy as np

MAX_TICKS = 6


def tick_text(value: float, powers: bool = False) -> str:
    """A log tick's label: plain for 1e-3..1e4 ('0.02', '500'), else '10⁵'-style powers
    or 'm×10ᵏ' (HTML superscripts, as plotly renders them); ``powers``: powers for every
    value but 1, so one axis never mixes '10000' with '10⁶'."""
    if value <= 0 or not math.isfinite(value):
        raise ValueError(f"a log tick must be a positive finite number, got {value!r}")
    e = math.floor(math.log10(value) + 1e-9)
    m = round(value / 10 ** e, 6)
    if (-3 <= e <= 4 and not powers) or value == 1:
        return f"{value:.12g}"
    return f"10<sup>{e}</sup>" if m == 1 else f"{m:g}×10<sup>{e}</sup>"


def log_ticks(lo: float, hi: float, max_ticks: int = MAX_TICKS) -> tuple[list[float], list[str]]:
    """(tickvals, ticktext) for a log axis spanning log10 units ``lo``..``hi``.

    Decades only where at least two fit (every d-th decade, d the smallest of
    1, 2, 3, 5, 10, ... giving ≤ max_ticks labels); otherwise 1-2-5 mantissas,
    else 1..9, else two values near the ends with the fewest digits that tell them apart.
    Texts are distinct; tickvals are in data units (not log10).
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        raise ValueError(f"log_ticks needs a finite range lo < hi, got ({lo!r}, {hi!r})")
    d0, d1 = math.ceil(lo - 1e-9), math.floor(hi + 1e-9)
    if d1 - d0 + 1 >= 2:
        for step in (1, 2, 3, 5, 10, 20, 25, 50, 100):
            first = step * math.ceil(d0 / step)
            decades = list(range(first, d1 + 1, step))
            if len(decades) <= max_ticks:
                break
        vals = [10.0 ** e for e in decades]
        if len(vals) < 3 and step == 1:  # a narrow range: add 2 and 5 between decades
            vals = _mantissas(lo, hi, (1, 2, 5)) or vals
    else:
        vals = []
        for ms in ((1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
            vals = _mantissas(lo, hi, ms)
            if len(vals) >= 2:
                break
        if len(vals) < 2:
            vals = _ends(lo, hi)
    if len(vals) > max_ticks:
        vals = vals[::math.ceil(len(vals) / max_ticks)]
    powers = any(not -3 <= math.floor(math.log10(v) + 1e-9) <= 4 for v in vals) and \
        all(round(math.log10(v), 9).is_integer() for v in vals)
    texts = [tick_text(v, powers) for v in vals]
    if len(set(texts)) != len(texts):  # cannot happen with the rules above; never show twins
        keep = [i for i, t in enumerate(texts) if t not in texts[:i]]
        vals, texts = [vals[i] for i in keep], [texts[i] for i in keep]
    return vals, texts


def _ends(lo: float, hi: float) -> list[float]:
    """Two values a tenth in from each end, with the fewest significant digits (≥ 2) that
    keep them inside the range and apart."""
    for digits in range(2, 10):
        vals = sorted({float(f"{10 ** x:.{digits}g}") for x in (lo + 0.1 * (hi - lo),
                                                               hi - 0.1 * (hi - lo))})
        if len(vals) == 2 and all(lo <= math.log10(v) <= hi for v in vals):
            return vals
    return [10 ** ((lo + hi) / 2)]


def _mantissas(lo: float, hi: float, ms: tuple[int, ...]) -> list[float]:
    """m × 10^e for m in ``ms`` with log10 inside [lo, hi]."""
    out = []
    for e in range(math.floor(lo) - 1, math.ceil(hi) + 1):
        for m in ms:
            v = float(f"{m}e{e}")
            if lo - 1e-9 <= math.log10(v) <= hi + 1e-9:
                out.append(v)
    return out


def log_axis(rng: tuple[float, float]) -> dict[str, object]:
    """Axis settings for plotly (plain dict) for a log range in log10 units: tickvals and
    ticktext from ``log_ticks``, ``tickmode='array'``."""
    vals, texts = log_ticks(float(rng[0]), float(rng[1]))
    return {"tickmode": "array", "tickvals": np.asarray(vals, float).tolist(), "ticktext": texts}
