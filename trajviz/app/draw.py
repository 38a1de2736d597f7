"""The inner-loop tab's draw: what the page's choice shows, and only the parts an input changed.

One draw callback fills the surface, the panels of the chosen set, the playback data, the
honesty card and notes. Most inputs change everything; three do not, and the page is
faster when they redraw only their part (``parts_for``): the view box (zoom) moves the
surface alone, 2D/3D the surface and the playback data, the panel set the panels shown
and the playback data. Panels of the hidden sets are not built at all (a dozen plotly
figures cost the server and the browser about a second): their cards keep what they
showed and are drawn when their set is picked. A part not drawn is Dash's ``no_update``.
"""
from __future__ import annotations

from typing import Any

from dash import no_update

from trajviz.app import ids, inputs
from trajviz.app.components import empty_figure, honesty_card, message, panel_style, surface_key
from trajviz.app.inputs import PageInputs, shown_keys
from trajviz.app.state import AppState
from trajviz.app.whatif import shown_run
from trajviz.app.whatif_fast import pick
from trajviz.figures import frame_data, panel_figure, surface_figure
from trajviz.store import RunError
from trajviz.viewmodel.selection import PANEL_KEYS, PANELS

#: The draw's parts: the surface figure and its learner key; the panels of the chosen set
#: (figures, notes, card styles); the playback data; the honesty card, notes and slider.
SURFACE, PANEL, DATA, CARDS = "surface", "panels", "data", "cards"
FULL = frozenset({SURFACE, PANEL, DATA, CARDS})


def parts_for(triggered: set[str] | frozenset[str]) -> frozenset[str]:
    """The parts to draw when the inputs ``triggered`` (component ids) changed."""
    light = {ids.ZOOM, ids.MODE, ids.PANEL_SET}
    if not triggered or set(triggered) - light:
        return FULL
    parts = set()
    if ids.ZOOM in triggered:
        parts.add(SURFACE)
    if ids.MODE in triggered:
        parts |= {SURFACE, DATA}
    if ids.PANEL_SET in triggered:
        parts |= {PANEL, DATA}
    return frozenset(parts)


def panel_styles(group: str | None) -> list[dict[str, str]]:
    """The panel cards' styles (PANELS order): shown when in the chosen set of panels."""
    return [panel_style(p, group) for p in PANELS]


def _blank(keys: tuple[str, ...], group: Any, text: str = "") -> dict[str, Any]:
    return {"main": empty_figure(), "panels": {k: empty_figure(text) for k in keys},
            "data": None, "max": 1, "honesty": [], "notes": [], "key": surface_key([]),
            "panel_notes": {k: "" for k in PANEL_KEYS}, "styles": panel_styles(group)}


def draw(state: AppState, page: PageInputs, parts: frozenset[str] = FULL) -> dict[str, Any]:
    """The inner-loop tab for ``page``: {"main" (surface figure), "key" (its learner key),
    "panels" {key: figure} (the chosen set's only), "panel_notes" {key: text} (every
    panel), "styles" (the panel cards'), "data" (playback), "max" (the slider's), "honesty",
    "notes"}; each entry of a part not in ``parts`` is ``no_update``. On a problem, empty
    figures and a note (every part)."""
    keys = shown_keys(page.group)
    try:
        run_id, view = inputs.run_id(page.run_id), inputs.text(page.view, "slice")
        learners, frame = inputs.names(page.learners), inputs.frame(page.frame)
        mode = inputs.text(page.mode, "mode")
        if run_id is None:
            return _blank(keys, page.group)
        sel = pick(state, run_id, shown_run(state, run_id, page.shown), view, page.task, learners)
    except (RunError, ValueError) as exc:
        return {**_blank(keys, page.group),
                "notes": [message("Nothing to draw", inputs.public(str(exc), state.runs_dir))]}
    three_d = mode == "3d"
    if not sel.learners:
        text = "Tick a learner on the left."
        return {**_blank(keys, page.group, text), "main": surface_figure(sel, 0, three_d),
                "notes": [message("No learner selected", text, kind="info")],
                "honesty": honesty_card(sel)}
    k = sel.frame(int(frame or 0))
    out: dict[str, Any] = {name: no_update for name in
                           ("main", "key", "data", "max", "honesty", "notes")}
    out["panels"], out["styles"] = {}, [no_update] * len(PANELS)
    out["panel_notes"] = {key: no_update for key in PANEL_KEYS}
    if SURFACE in parts:
        main = surface_figure(sel, k, three_d, zoom=page.zoom if page.zoom in ("all", "full") else "fit")
        # the page's key names the learners (layout: over the plot), so no legend under the
        # axis title to collide with it at narrow widths
        main.update_layout(showlegend=False)
        out.update(main=main, key=surface_key(sel.learners))
    if PANEL in parts:
        out["panels"] = {key: panel_figure(sel, key, k) for key in keys}
        out["panel_notes"] = {key: sel.diagnosis.lines.get(key, "") for key in PANEL_KEYS}
        out["styles"] = panel_styles(page.group)
    if DATA in parts:
        out["data"] = frame_data(sel, ids.MAIN_GRAPH, {key: ids.PANEL_GRAPH[key] for key in keys},
                                 three_d=three_d, frame=k)
    if CARDS in parts:
        out.update(max=sel.steps, honesty=honesty_card(sel),
                   notes=[message("Note", n, kind="warn") for n in sel.notes])
    return out


def values(o: dict[str, Any]) -> tuple:
    """``draw``'s result in the draw callback's output order (``callbacks.register``): the
    surface, one figure per panel (PANEL_KEYS), data, slider max, honesty, notes, one note
    per panel, the surface key, one style per panel card (PANELS)."""
    return (o["main"], *[o["panels"].get(k, no_update) for k in PANEL_KEYS], o["data"],
            o["max"], o["honesty"], o["notes"], *[o["panel_notes"][k] for k in PANEL_KEYS],
            o["key"], *o["styles"])


__all__ = ["CARDS", "DATA", "FULL", "PANEL", "SURFACE", "PageInputs", "draw", "panel_styles",
           "parts_for", "shown_keys", "values"]
