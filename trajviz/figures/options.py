"""``FigureOptions``: what to draw of a run and how, the page's choices as one value.

``figures.api.figure`` and ``figures.export.export_current`` take it (or the same names
as keywords, ``figure(run, "surface", task=0, preset="column")``): one bundle instead of
nine parameters on every function between the page and a figure. Torch-free.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class FigureOptions:
    """slice_name: the view's slice (None: the run's first); task: a held-out task index,
    None for the task mean (averaged points, not a path taken); learners: those drawn
    (None: all); frame: the step (None: the last); preset: None (the screen figure),
    "column" (3.3 in) or "page" (6.9 in) for a paper figure; title: replaces the figure's;
    three_d: the 3D surface; zoom: the surface's frame ("fit" ...); panel: which panel
    ``what="panel"`` draws."""

    slice_name: str | None = None
    task: int | None = 0
    learners: Sequence[str] | None = None
    frame: int | None = None
    preset: str | None = None
    title: str | None = None
    three_d: bool = False
    zoom: str = "fit"
    panel: str = "loss"


NAMES = tuple(f.name for f in fields(FigureOptions))


def figure_options(options: FigureOptions | None, keywords: dict[str, Any]) -> FigureOptions:
    """``options`` (default: ``FigureOptions()``) with ``keywords`` replacing its fields;
    an unknown keyword is a one-line ValueError naming the accepted ones."""
    unknown = sorted(set(keywords) - set(NAMES))
    if unknown:
        raise ValueError(f"unknown figure option(s) {unknown}; accepted: {', '.join(NAMES)}")
    return replace(options or FigureOptions(), **keywords)
