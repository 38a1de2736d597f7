"""The what-if's fast redraw data (trajviz.figures.restyle): every trace it names, in the
figures the page draws for the same selection, holds the same numbers, so restyling the
drawn figures with it shows what a full draw would."""
from __future__ import annotations

import json

import numpy as np
import pytest
from app_fixtures import make_run

from trajviz import figures as F
from trajviz.figures.restyle import restyle_data

PANEL_IDS = {k: f"panel-{k}" for k in F.PANEL_KEYS}


def _close(sent, drawn) -> None:
    """JSON lists (5 significant digits, as the playback data; None for gaps) against a
    figure's float32 arrays: equal to half a unit in the 5th digit."""
    got = np.array([np.nan if v is None else v for v in sent], dtype=float)
    want = np.asarray(drawn, dtype=float)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=5.01e-5, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("task,diverge", [(1, None), (None, None), (3, "leap")])
def test_each_named_trace_matches_the_full_figures(task, diverge):
    run = make_run(n_params=3, steps=8, diverge=diverge)
    sel = F.select(run, "pca", task)
    fast = restyle_data(sel, "main", PANEL_IDS, frame=4)
    json.dumps(fast, allow_nan=False)  # the browser gets it as strict JSON
    assert fast["key"] == sel.key and fast["frames"] == sel.steps + 1
    assert fast["frame_data"] == F.frame_data(sel, "main", PANEL_IDS, frame=4)
    main = F.surface_figure(sel, 4)
    assert len(fast["main"]["traces"]) == 3 * len(sel.learners)
    for i, d in zip(fast["main"]["traces"], fast["main"]["data"]):
        _close(d["x"], main.data[i].x)
        _close(d["y"], main.data[i].y)
    for panel in fast["panels"]:
        key = panel["id"].removeprefix("panel-")
        fig = F.panel_figure(sel, key, 4)
        for i, d in zip(panel["traces"], panel["data"]):
            _close(d["y"], fig.data[i].y)
            if "x" in d:
                _close(d["x"], fig.data[i].x)
        layout = panel["layout"]
        assert layout["yaxis.type"] == (fig.layout.yaxis.type or "linear")
        np.testing.assert_allclose(layout["yaxis.range"], fig.layout.yaxis.range)
        assert layout["yaxis.tickvals"] == (list(fig.layout.yaxis.tickvals)
                                            if fig.layout.yaxis.tickvals else None)


def test_the_loss_panel_sends_both_series_and_a_threshold_panel_its_line():
    run = make_run(n_params=2, steps=6)
    sel = F.select(run, "pca", 0)
    n = len(sel.learners)
    fast = {p["id"]: p for p in restyle_data(sel, "main", PANEL_IDS)["panels"]}
    assert fast["panel-loss"]["traces"] == list(range(2 * n))  # recorded, on the slice
    assert fast["panel-length"]["traces"] == list(range(n))
    sharp = fast["panel-sharpness"]
    thr = sel.diagnosis.thresholds.get("sharpness")
    assert sharp["traces"][-1] == F.PANELS[[p.key for p in F.PANELS].index("sharpness")] \
        .traces_per_learner * n + 2  # after the cursor and its dots
    assert sharp["data"][-1] == ({"x": [0, sel.steps], "y": [thr, thr]} if thr is not None
                                 else {"x": [], "y": []})
