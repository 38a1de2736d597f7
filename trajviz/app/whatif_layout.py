"""The what-if strip's components: the optimiser, lr, β and K controls, the picker of kept
settings and Keep, the status line and the progress row (``app.whatif`` wires them)."""
from __future__ import annotations

from dash import dcc, html

from trajviz.app import ids
from trajviz.app.components import field, progress_row

OWN = "__own__"
LIVE = "__live__"  # the "Shown" picker's entry for a what-if on screen, not kept
SURFACE_NOTE = ("The surface is reused: it is the loss over the slice and does not depend on "
                "the inner optimiser; only the paths, panels and summary are recomputed "
                "(sharpness only when a variant is kept: it is the slow part).")
READY = "Move a control: every path, panel and the summary are recomputed (the surface is reused)."
OPTIMIZERS = [{"label": "SGD", "value": "sgd"}, {"label": "momentum", "value": "momentum"},
              {"label": "Adam", "value": "adam"}]
LR_MARKS = {e: f"1e{e}" for e in range(-4, 2)}
#: Seconds the K box waits after the last key before it recomputes (typing 16 sends 16, not 1).
STEPS_DEBOUNCE = 0.6


def whatif_box() -> html.Section:
    """The what-if controls: one strip between the player and the surface, so the surface
    stays in view while a slider moves (and in presentation mode, where the left column
    folds). The β slider shows for momentum and Adam only (``beta_style``)."""
    return html.Section(id=ids.WHATIF_BOX, className="tv-whatif", children=[
        html.Div(className="tv-whatif-row", children=[
            html.Div(className="tv-whatif-title", children=[
                html.H2("What if?"),
                html.Span("?", className="tv-q", title=(
                    "Rerun every learner's held-out inner loops from the same θ0, on the same "
                    "tasks and minibatches, with another inner optimiser, learning rate, β or "
                    "number of steps. " + SURFACE_NOTE))]),
            dcc.RadioItems(id=ids.WHATIF_OPT, options=OPTIMIZERS, value="sgd", inline=True,
                           className="tv-radio tv-whatif-opt"),
            field("lr", dcc.Slider(id=ids.WHATIF_LR, min=-4, max=1, step=0.01, value=-2,
                                   marks=LR_MARKS, updatemode="drag", allow_direct_input=False),
                  className="tv-whatif-lr"),
            field("β", dcc.Slider(id=ids.WHATIF_BETA, min=0, max=0.99, step=0.01, value=0.9,
                                  marks={0: "0", 0.5: "0.5", 0.9: "0.9"}, updatemode="drag",
                                  allow_direct_input=False),
                  id=ids.WHATIF_BETA_ROW, className="tv-whatif-beta", style=beta_style("sgd")),
            field("K", dcc.Input(id=ids.WHATIF_STEPS, type="number", min=1, max=500, step=1,
                                 value=16, debounce=STEPS_DEBOUNCE, className="tv-input"),
                  className="tv-whatif-k"),
        ]),
        html.Div(className="tv-whatif-row", children=[
            field("Shown", dcc.Dropdown(id=ids.WHATIF_PICK, options=[], value=OWN,
                                        clearable=False, searchable=False),
                  className="tv-whatif-pick"),
            html.Div(className="tv-whatif-keep", children=[
                dcc.Input(id=ids.WHATIF_NAME, type="text", placeholder="name (optional)",
                          className="tv-input"),
                html.Button("Keep this variant", id=ids.WHATIF_KEEP, className="tv-btn",
                            title="store what is on screen in the run, as a named setting")]),
            html.Div(className="tv-whatif-status", children=[
                html.Div(id=ids.WHATIF_STATUS_LIVE, className="tv-hint tv-live"),  # whatif.js
                html.Div(id=ids.WHATIF_STATUS, className="tv-hint", children=READY)]),
            progress_row(ids.WHATIF_PROGRESS),
        ]),
        dcc.Store(id=ids.WHATIF_SHOWN, data=None),
    ])


def beta_style(optimizer: str | None) -> dict[str, str]:
    """The β slider is shown for the optimisers that have a β (momentum, Adam's β1)."""
    return {} if optimizer in ("momentum", "adam") else {"display": "none"}
