"""Look shared by every figure: palette, surface colours, fonts, sizes, base layout.

Nothing here draws; ``base_layout`` only sets a figure's template, fonts and margins.
"""
from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from trajviz.viewmodel.palette import EXTRA_COLOURS, PALETTE, learner_colour  # noqa: F401 - re-exported

#: The surface: light for low loss, slate for high, so coloured paths stay readable.
#: Low loss white, high loss slate: a relative luminance range of 1.0 .. 0.16 (the old
#: scale's 0.97 .. 0.28 washed out on a projector); one hue, so the learners' colours
#: stay the only colours on the plane (tests/test_page.py checks the range).
SURFACE_SCALE = [[0.0, "#FFFFFF"], [0.2, "#E6EDF4"], [0.5, "#B3C3D4"], [0.8, "#7C93AB"],
                 [1.0, "#5B728A"]]
FONT_FAMILY = "Helvetica, Arial, 'Liberation Sans', 'DejaVu Sans', sans-serif"
APP_FONT = {"family": FONT_FAMILY, "size": 12, "color": "#1f2933"}
PAPER_FONT = {"family": FONT_FAMILY, "size": 10, "color": "#000000"}
#: Paper figure sizes in CSS pixels (96 per inch): 7.5 in wide, a two-column page.
PAPER_WIDTH = 720
CURSOR_COLOUR = "#323F4B"
GRID_COLOUR = "#eef1f4"


@functools.lru_cache(maxsize=1)
def _template() -> dict:
    """plotly's "simple_white" template as the plain dict a figure's JSON carries."""
    return pio.templates["simple_white"].to_plotly_json()


def _base(paper: bool) -> dict:
    """The base layout: template, font (app or paper), white background, margins."""
    return {"template": copy.deepcopy(_template()), "font": dict(PAPER_FONT if paper else APP_FONT),
            "paper_bgcolor": "white", "plot_bgcolor": "white", "hovermode": "closest",
            "margin": {"l": 60, "r": 20, "t": 56, "b": 48}}


def base_layout(fig: Any, paper: bool) -> None:
    """Template, font (app or paper), white background and default margins."""
    layout = _base(paper)
    fig.layout.template = layout.pop("template")  # replaced, not merged into the default
    fig.update_layout(**layout)


#: Trace constructors without plotly's per-property validation (7x quicker; ``new_figure``
#: says why and which test checks them).
Scatter = functools.partial(go.Scatter, _validate=False)
Scatter3d = functools.partial(go.Scatter3d, _validate=False)
Surface = functools.partial(go.Surface, _validate=False)
Contour = functools.partial(go.Contour, _validate=False)


def new_figure(traces: Sequence[Any] = (), paper: bool = False) -> go.Figure:
    """A figure of ``traces`` with the base layout (``base_layout``), built without
    plotly's per-property validation: validating the template alone costs ~60 ms a figure,
    and the page draws a dozen figures per input. Validation still runs where traces are
    built (``go.Scatter(...)``); tests/test_figure_build.py rebuilds every figure validated
    and checks the JSON is the same."""
    return go.Figure(data=list(traces), layout=_base(paper), _validate=False)


def clean(values: np.ndarray) -> np.ndarray:
    """float32-rounded copy with non-finite values as NaN (plotly draws gaps there)."""
    v = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(v), v, np.nan).astype(np.float32)


def tint(hex_colour: str, alpha: float = 0.18) -> str:
    """'#RRGGBB' as a translucent 'rgba(r,g,b,alpha)'."""
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def wrap(text: str, width: int) -> str:
    """``text`` broken into lines of at most ``width`` characters, joined by <br>."""
    words, lines, line = text.split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    return "<br>".join(lines)


def step_dtick(steps: int) -> int:
    """At most about seven step ticks: the panels are narrow, and more get rotated."""
    for d in (1, 2, 5, 10, 20, 50, 100, 200, 500):
        if steps / d <= 6:
            return d
    return 1000
