"""Figure builders (plane, panels, meta, paper), asserted structurally: trace types and
order, fixed ranges, one colour per learner, honest axis titles, JSON round trip. No
browser. The view-model is in test_selection.py, playback in test_playback.py."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import plotly.io as pio
import pytest
from app_fixtures import LEARNERS

from trajviz import figures as F
from trajviz.figures.panels import metrics_keys
from trajviz.figures.plane import zoom_box
from trajviz.figures.playback import metrics_cursor_indices
from trajviz.viewmodel import selection as S


def canonical(text: str) -> str:
    """JSON text with sorted keys (NaN-safe: NaN stays the token NaN)."""
    return json.dumps(json.loads(text), sort_keys=True)


def test_surface_trace_order_is_the_contract(run):
    sel = F.select(run, "pca", 0)
    fig = F.surface_figure(sel, frame=3)
    # the screen surface: contour lines as one scatter trace over a layout image, and the
    # colour bar as the one overlay after the groups (plotly's redraw-free animation keeps
    # scatter traces and images; it drops a contour trace)
    assert fig.data[0].type == "scatter" and fig.data[0].name == "surface"
    assert fig.layout.images[0].source.startswith("data:image/png;base64,")
    assert len(fig.data) == 1 + len(F.GROUP) * len(LEARNERS) + 2
    assert fig.data[-2].name == "surface value" and fig.data[-2].mode == "none"
    assert fig.data[-1].marker.showscale is True
    for i, learner in enumerate(LEARNERS):
        group = fig.data[F.group_index(i, "path"): F.group_index(i, "head") + 1]
        assert [t.name for t in group] == [learner, f"{learner} start", f"{learner} end",
                                           f"{learner} tail", learner]
        assert all(t.type == "scatter" for t in group)  # SVG scatter, never scattergl
    head = fig.data[F.group_index(0, "head")]
    np.testing.assert_allclose(head.x, sel.coords["leap"][3:4, 0], rtol=1e-6)
    tail = fig.data[F.group_index(0, "tail")]
    assert len(tail.x) == F.TAIL + 1


def test_surface_hover_grid_holds_the_true_loss_at_each_grid_point(run):
    sel = F.select(run, "pca", 1)
    fig = F.surface_figure(sel, zoom="full")
    grid = next(t for t in fig.data if t.name == "surface value")
    x, y, loss = (np.asarray(v, float) for v in (grid.x, grid.y, grid.customdata))
    assert len(x) == len(sel.alpha) * len(sel.beta)  # the full view: every grid point
    for p in (0, 7, len(x) // 2, len(x) - 1):
        i = int(np.argmin(abs(sel.alpha - x[p])))
        j = int(np.argmin(abs(sel.beta - y[p])))
        assert loss[p] == pytest.approx(sel.z[j, i], rel=1e-6)  # the loss, not log colours
    assert "loss: %{customdata" in grid.hovertemplate
    assert fig.layout.clickmode == "none" and fig.layout.hoverdistance == -1
    # a fitted view keeps the grid points inside its box and one beyond on each side
    fit = F.surface_figure(sel, zoom="fit")
    box = zoom_box(sel, "fit")
    fx = np.asarray(next(t for t in fit.data if t.name == "surface value").x, float)
    inside = sel.alpha[(sel.alpha >= box[0]) & (sel.alpha <= box[1])]
    assert set(np.round(inside, 4)) <= set(np.round(fx, 4))
    assert len(np.unique(fx)) <= len(inside) + 2


def test_surface_hover_names_the_log_colour_scale_beside_the_true_loss(run):
    sel = F.select(run, "pca", 1)
    for log_z in (True, False):
        s = dataclasses.replace(sel, log_z=log_z)
        grid = next(t for t in F.surface_figure(s).data if t.name == "surface value")
        assert ("(colour: log<sub>10</sub> loss)" in grid.hovertemplate) is log_z
        surface = F.surface_figure(s, three_d=True).data[0]
        if log_z:  # 3D heights are log10: the true loss rides along as customdata
            np.testing.assert_allclose(np.asarray(surface.customdata, float), s.z, rtol=1e-6)
            assert "loss: %{customdata" in surface.hovertemplate
            assert "log<sub>10</sub> loss %{z" in surface.hovertemplate
        else:
            assert surface.customdata is None and "loss: %{z" in surface.hovertemplate


def test_surface_3d_uses_a_surface_then_scatter3d_groups(run):
    fig = F.surface_figure(F.select(run), three_d=True)
    assert fig.data[0].type == "surface"
    assert {t.type for t in fig.data[1:]} == {"scatter3d"}
    assert fig.layout.scene.xaxis.range is not None and fig.layout.scene.zaxis.range is not None


def test_fixed_axis_ranges_everywhere(run):
    sel = F.select(run, "pca", None)
    fig = F.surface_figure(sel, zoom="all")
    assert fig.layout.xaxis.autorange is False and fig.layout.yaxis.autorange is False
    x0, x1, y0, y1 = sel.view_box
    assert tuple(fig.layout.xaxis.range) == (x0, x1) and tuple(fig.layout.yaxis.range) == (y0, y1)
    # the inner-loop box lies inside the surface's grid and holds every path point
    ex = sel.extent
    assert ex[0] <= x0 < x1 <= ex[1] and ex[2] <= y0 < y1 <= ex[3]
    for v in run.views["pca"].coords.values():
        assert np.all((v[..., 0] >= x0) & (v[..., 0] <= x1) & (v[..., 1] >= y0) & (v[..., 1] <= y1))
    for key in F.PANEL_KEYS:
        panel = F.panel_figure(sel, key, 2)
        assert panel.layout.xaxis.autorange is False and panel.layout.yaxis.autorange is False
        assert panel.layout.xaxis.range is not None and panel.layout.yaxis.range is not None
    meta = F.meta_figure(F.select_meta(run))
    assert meta.layout.xaxis.range is not None and meta.layout.xaxis.autorange is False


def test_the_same_ranges_for_every_task_and_learner_choice(run):
    a = F.surface_figure(F.select(run, "pca", 0), zoom="all")
    b = F.surface_figure(F.select(run, "pca", 3, ["random"]), zoom="all")
    assert a.layout.xaxis.range == b.layout.xaxis.range
    assert a.layout.yaxis.range == b.layout.yaxis.range


def test_axes_state_explained_variance(run, run3):
    sel = F.select(run3, "pca")
    ev = run3.views["pca"].slice.explained_variance
    assert sel.axis_titles == (f"PC1 ({100 * ev[0]:.1f}% var.)", f"PC2 ({100 * ev[1]:.1f}% var.)")
    fig = F.surface_figure(sel)
    assert fig.layout.xaxis.title.text.startswith("PC1 (")
    assert "% var.)" in fig.layout.yaxis.title.text
    subtitle = fig.layout.title.subtitle.text
    assert "variance" in subtitle and "residual" in subtitle
    exact = F.select(run, "exact")
    assert "exact" in exact.axis_titles[0]
    assert "nothing is projected" in F.surface_figure(exact).layout.title.subtitle.text
    assert "random direction" in F.select(run3, "random").axis_titles[0]


def test_one_colour_per_learner_everywhere(run):
    colours = [F.learner_colour(n) for n in ("leap", "reptile", "fomaml", "maml", "multitask",
                                             "random")]
    assert len(set(colours)) == 6
    sel = F.select(run)
    meta = F.select_meta(run)
    figs = [F.surface_figure(sel), F.meta_figure(meta), F.meta_curves_figure(meta),
            F.metrics_figure(sel), *[F.panel_figure(sel, k) for k in F.PANEL_KEYS],
            F.paper_surface_figure(sel), F.paper_meta_figure(meta)]
    for fig in figs:
        for t in fig.data:
            learner = next((n for n in LEARNERS if t.name and t.name.split(" ")[0] == n), None)
            if learner is None:
                continue
            used = {c for c in (getattr(t.line, "color", None), getattr(t.marker, "color", None))
                    if isinstance(c, str)}
            assert used <= {F.learner_colour(learner)}, (t.name, used)
    dots = F.panel_figure(sel, "length").data[-1]
    assert list(dots.marker.color) == [F.learner_colour(n) for n in LEARNERS]


def test_panels_end_with_cursor_and_dots(run):
    sel = F.select(run, "pca", 1)
    for key in F.PANEL_KEYS:
        fig = F.panel_figure(sel, key, frame=4)
        spec = S.panel_spec(key)
        if spec.x_axis != "step":  # the spectrum panel: tests/test_curvature_view.py
            continue
        per = spec.traces_per_learner
        assert len(fig.data) == per * len(LEARNERS) + 2 + spec.extra_traces
        cursor, dots = fig.data[per * len(LEARNERS)], fig.data[per * len(LEARNERS) + 1]
        assert (cursor.name, dots.name) == ("cursor", "now")
        assert list(cursor.x) == [4, 4] and list(dots.x) == [4] * len(LEARNERS)
        lo, hi = fig.layout.yaxis.range
        if fig.layout.yaxis.type == "log":
            lo, hi = 10 ** lo, 10 ** hi
        assert cursor.y[0] == pytest.approx(lo) and cursor.y[1] == pytest.approx(hi)
    with pytest.raises(ValueError, match="unknown panel"):
        F.panel_figure(sel, "nope")


def test_loss_panel_shows_recorded_and_plane_loss(run3):
    sel = F.select(run3, "pca", 0)
    fig = F.panel_figure(sel, "loss")
    recorded, plane = fig.data[0], fig.data[1]
    np.testing.assert_allclose(recorded.y, run3.learners["leap"].losses[0], rtol=1e-5)
    np.testing.assert_allclose(plane.y, run3.views["pca"].plane_loss["leap"][0], rtol=1e-5)
    assert plane.line.dash == "dash"


def test_json_round_trip(run3):
    sel = F.select(run3, "pca", 3)  # reptile diverged on task 3: NaNs in the data
    meta = F.select_meta(run3)
    for fig in (F.surface_figure(sel), F.surface_figure(sel, three_d=True),
                F.metrics_figure(sel), F.animated_surface_figure(sel), F.meta_figure(meta),
                F.meta_curves_figure(meta), F.summary_table_figure(F.summary_rows(run3))):
        text = fig.to_json()
        back = pio.from_json(text).to_json()
        assert canonical(back) == canonical(text)


def test_diverged_paths_are_drawn_as_gaps(run3):
    sel = F.select(run3, "pca", 3)
    fig = F.surface_figure(sel, frame=8)  # the head past the divergence is simply not drawn
    head = fig.data[F.group_index(1, "head")]
    assert head.x[0] is None or math.isnan(head.x[0])


def test_paper_figures_have_fixed_sizes_and_fonts(run):
    sel = F.select(run)
    for fig in (F.paper_surface_figure(sel), F.paper_metrics_figure(sel),
                F.paper_meta_figure(F.select_meta(run))):
        assert fig.layout.width == F.PAPER_WIDTH and fig.layout.height > 200
        assert fig.layout.font.size == F.PAPER_FONT["size"]
    small = F.paper_surface_figure(sel)
    contours = [t for t in small.data if t.type == "contour"]
    assert len(contours) == len(LEARNERS)
    assert len({(t.zmin, t.zmax) for t in contours}) == 1  # one shared colour scale


def test_metrics_figure_is_laid_out_from_the_panel_list(run3):
    sel = F.select(run3, "pca", 0)
    fig = F.metrics_figure(sel, frame=2)
    specs = [S.panel_spec(k) for k in metrics_keys(sel)]  # the fixture records no diagnostics
    assert [p.key for p in specs] == [p.key for p in S.STEP_PANELS
                                      if p.diagnostic is None and p.key != "straight"]
    n = len(specs)
    titles = [a.text for a in fig.layout.annotations][:n + 1]
    assert titles == [p.short for p in specs] + ["What the slice hides"]
    notes_x = fig.layout[f"xaxis{n + 1}"]
    assert notes_x.visible is False  # the cell after the last panel holds the notes
    notes = fig.layout.annotations[n + 1]
    assert notes.x == notes_x.domain[0] and notes.y == fig.layout[f"yaxis{n + 1}"].domain[1]
    assert "max gap" in notes.text
    # each panel's traces sit on its own axes, in PANELS order
    for (key, cursor, dots), p in zip(metrics_cursor_indices(len(sel.learners), metrics_keys(sel)),
                                      specs):
        assert fig.data[cursor].name == "cursor" and fig.data[dots].name == "now"
        assert list(fig.data[cursor].x) == [2, 2]
        i = specs.index(p) + 1
        assert fig.data[cursor].xaxis == ("x" if i == 1 else f"x{i}")
