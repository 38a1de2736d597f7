"""The spectrum panel: the Hessian's eigenvalue density at the cursor's step.

Trace order (the contract ``playback.spectrum_frame`` hands to ``assets/playback.js``):
one density curve per learner in the selection's order, then the step label (a
text trace). The browser swaps each curve's ``y`` for the row of the kept step
the cursor is at (``SpectrumView.index``) and the label's text: no server call
per frame. The eigenvalue axis and the (log) density axis are fixed.
"""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from trajviz.figures.style import GRID_COLOUR, Scatter, clean, learner_colour, new_figure
from trajviz.viewmodel.diagnosis import NOT_RECORDED
from trajviz.viewmodel.selection import Selection


def spectrum_traces(sel: Selection, k: int) -> list[Any]:
    """The curves and the label of the contract above, at inner step ``k``."""
    view = sel.spectrum
    row = int(view.index[k])
    traces: list[Any] = []
    for n in sel.learners:
        colour = learner_colour(n)
        y = view.density.get(n)
        traces.append(Scatter(
            x=clean(view.grid), y=clean(y[row]) if y is not None else [], mode="lines", name=n,
            showlegend=False, line={"color": colour, "width": 2, "shape": "spline"},
            hovertemplate=f"{n}<br>eigenvalue %{{x:.3g}}<br>density %{{y:.3g}}<extra></extra>"))
    traces.append(Scatter(
        x=[float(view.grid[-1])], y=[view.label_y()], mode="text", text=[view.label(k)],
        textposition="bottom left", name="step", showlegend=False, hoverinfo="skip",
        textfont={"color": "#52606d"}))
    return traces


def spectrum_figure(sel: Selection, frame: int | None = None, paper: bool = False) -> go.Figure:
    """The spectrum panel at ``frame`` (a "not recorded" note when the run kept no density)."""
    k = sel.frame(frame)
    view = sel.spectrum
    fig = new_figure(spectrum_traces(sel, k) if view is not None else [], paper)
    fig.update_layout(margin={"l": 44, "r": 10, "t": 8, "b": 24}, showlegend=False,
                      meta={"key": sel.key, "frame": k}, uirevision=sel.key)
    if view is None:
        fig.add_annotation(text=NOT_RECORDED.capitalize(), xref="paper", yref="paper",
                           x=0.5, y=0.5, showarrow=False, font={"color": "#52606d", "size": 12})
        fig.update_xaxes(visible=False, range=[0, 1], autorange=False)
        fig.update_yaxes(visible=False, range=[0, 1], autorange=False)
        return fig
    fig.update_xaxes(range=[float(view.grid[0]), float(view.grid[-1])], autorange=False,
                     showgrid=True, gridcolor=GRID_COLOUR, zeroline=True, zerolinecolor="#9aa5b1",
                     zerolinewidth=1.5)
    fig.update_yaxes(type="log", range=list(view.y_range), autorange=False, showgrid=True,
                     gridcolor=GRID_COLOUR, exponentformat="power", dtick=2)
    return fig


def spectrum_axes(sel: Selection) -> dict[str, Any]:
    """The spectrum panel's fixed axes as ``Plotly.relayout`` keys (for ``restyle``)."""
    view = sel.spectrum
    if view is None:
        return {"yaxis.type": "linear", "yaxis.range": [0.0, 1.0], "yaxis.tickvals": None}
    return {"yaxis.type": "log", "yaxis.range": [float(v) for v in view.y_range],
            "yaxis.tickvals": None, "xaxis.range": [float(view.grid[0]), float(view.grid[-1])]}
