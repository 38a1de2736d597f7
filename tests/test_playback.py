"""The browser playback protocol and the trace-index contract (trajviz.figures.playback),
and the standalone-HTML animations built on the same indices."""
from __future__ import annotations

import json

import pytest
from app_fixtures import LEARNERS

from trajviz import figures as F
from trajviz.figures import playback as P


def test_the_indices_by_hand():
    assert [P.group_index(0, p) for p in P.GROUP] == [1, 2, 3, 4, 5]
    assert P.group_index(2, "head") == 15
    assert P.panel_cursor_index("loss", 3) == 6 and P.panel_cursor_index("length", 3) == 3
    # loss: 6 series + cursor + dots = 8 traces; length starts at 8: 3 series, cursor at 11;
    # straight starts at 13: 9 series (line, path, slice segment per learner), cursor at 22
    assert P.metrics_cursor_indices(3)[:3] == [("loss", 6, 7), ("length", 11, 12), ("straight", 22, 23)]
    assert P.metrics_cursor_indices(3, ("loss", "straight"))[1] == ("straight", 17, 18)
    assert P.meta_cursor_index(1, 3) == 3 * len(F.META_CURVES) + 1
    assert P.json_list([1.234567, float("nan"), float("inf")]) == [1.2346, None, None]
    assert P.tail_of(list(range(10)), 5) == [2, 3, 4, 5] and P.tail_of(list(range(10)), 1) == [0, 1]


def test_frame_counts(run):
    sel = F.select(run, "pca", 2)
    k = run.steps
    surface = F.animated_surface_figure(sel)
    assert len(surface.frames) == k + 1
    # the surface is an image and scatter lines, which the redraw-free animation keeps
    assert surface.layout.updatemenus[0].buttons[0].args[1]["frame"]["redraw"] is False
    metrics = F.animated_metrics_figure(sel)
    assert len(metrics.frames) == k + 1
    assert metrics.layout.updatemenus[0].buttons[0].args[1]["frame"]["redraw"] is False
    meta = F.select_meta(run)
    assert len(F.animated_meta_figure(meta).frames) == len(run.learners["leap"].meta_path_steps)
    data = F.frame_data(sel, "main", {p: f"panel-{p}" for p in F.PANEL_KEYS})
    assert data["frames"] == k + 1 and data["xs"] == list(range(k + 1))
    assert len(data["main"]["groups"]) == len(LEARNERS)
    assert all(len(g["x"]) == k + 1 for g in data["main"]["groups"])
    assert [p["id"] for p in data["panels"]] == [f"panel-{p}" for p in F.PANEL_KEYS]


def test_frame_data_indices_match_the_figures(run3):
    sel = F.select(run3, "pca", None)
    ids = {p: f"panel-{p}" for p in F.PANEL_KEYS}
    data = F.frame_data(sel, "main", ids, three_d=True)
    fig = F.surface_figure(sel, three_d=True)
    for i, g in enumerate(data["main"]["groups"]):
        assert fig.data[g["head"]].name == sel.learners[i]
        assert fig.data[g["tail"]].name == f"{sel.learners[i]} tail"
        assert len(g["z"]) == sel.steps + 1
    for p in data["panels"]:
        key = p["id"].removeprefix("panel-")
        if "spectrum" in p:  # its own entry (figures.spectrum), checked in test_curvature_view
            continue
        panel = F.panel_figure(sel, key)
        assert panel.data[p["cursor"]].name == "cursor" and panel.data[p["dots"]].name == "now"
        assert (p["lo"], p["hi"]) == pytest.approx(tuple(panel.data[p["cursor"]].y))
    json.dumps(data, allow_nan=False)  # plain JSON: NaN became None
    meta = F.select_meta(run3)
    mdata = F.meta_frame_data(meta, "meta", "curves")
    curves = F.meta_curves_figure(meta)
    assert all(curves.data[p["cursor"]].name == "cursor" for p in mdata["panels"])
    assert mdata["xs"] == [int(s) for s in run3.learners["leap"].meta_path_steps]
    json.dumps(mdata, allow_nan=False)
