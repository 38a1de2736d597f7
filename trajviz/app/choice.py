"""What the page asks to be drawn: its controls' raw values as one record, and the panels
of the chosen set. Shared by the draw callback (``draw``) and the what-if's fast route
(``whatif_fast``), so both draw the same choice.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trajviz.viewmodel.selection import PANEL_GROUPS, PANEL_KEYS, PANELS


@dataclass(frozen=True)
class PageChoice:
    """What the page asks the inner-loop tab to show (its controls' raw values).

    run_id, view (slice), task ("mean" or an index), learners, mode ("2d"/"3d"), frame
    (inner step), zoom ("fit", "all", "full"), shown (the what-if drawn, ``whatif.shown_run``;
    None: the stored run), group (the panel set, ``PANEL_GROUPS``; None: every panel)."""

    run_id: Any = None
    view: Any = None
    task: Any = "mean"
    learners: Any = None
    mode: Any = "2d"
    frame: Any = 0
    zoom: Any = "fit"
    shown: Any = None
    group: Any = None


def shown_keys(group: Any) -> tuple[str, ...]:
    """The panels of set ``group`` (PANELS order); every panel for None or an unknown set."""
    if group not in {g for g, _ in PANEL_GROUPS}:
        return PANEL_KEYS
    return tuple(p.key for p in PANELS if group in p.groups)


__all__ = ["PageChoice", "shown_keys"]
