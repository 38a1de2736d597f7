"""The what-if's fast redraw, server side: the selection the page draws, and only the
path data a what-if changed (``trajviz.figures.restyle``), for ``assets/whatif.js``.

``pick`` is the one place a page state becomes a ``Selection`` (``callbacks.draw`` uses
it too), so the fast update and the full draw always agree on learners and order.
"""
from __future__ import annotations

from typing import Any

from trajviz.app import ids, inputs
from trajviz.app.inputs import PageInputs, shown_keys
from trajviz.data.run import Run
from trajviz.figures.restyle import restyle_data
from trajviz.viewmodel.selection import Selection, select


def pick(state, run_id: str, run: Run, view: Any, task: Any,
         learners: list[str] | None) -> Selection:
    """The selection of the page's choice over ``run`` (the stored run or a what-if of it),
    with the run's latest click-to-launch added as a learner; ValueError (one line) if bad."""
    run, learners = state.launches.over(run_id, run, learners or [])
    view = view if view in run.views else None
    return select(run, view, inputs.task(task), [n for n in learners if n in run.learners])


def fast_update(state, run_id: str, run: Run, page: PageInputs) -> dict[str, Any]:
    """``restyle_data`` for the page's graphs (the surface and the panels of the chosen set)
    over ``run``; ValueError for a bad choice or no learner."""
    view, learners = inputs.text(page.view, "slice"), inputs.names(page.learners)
    sel = pick(state, run_id, run, view, page.task, learners)
    if not sel.learners:
        raise ValueError("no learner selected")
    panels = {key: ids.PANEL_GRAPH[key] for key in shown_keys(page.group)}
    return restyle_data(sel, ids.MAIN_GRAPH, panels, inputs.frame(page.frame))


__all__ = ["fast_update", "pick"]
