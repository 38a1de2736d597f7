"""The page's fixes for issue 26, called as functions: the run it opens on, the slice row,
the β slider, the keep button keeping what is on screen, no second draw on a run switch,
paths ending on one point drawn as rings, the fit box's floor, the surface scale's
contrast and the graph toolbar without a share link."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from app_fixtures import make_run, write_run_dir

from trajviz.app import callbacks as cb
from trajviz.app.components import GRAPH_CONFIG, MAIN_GRAPH_CONFIG, surface_key
from trajviz.app.whatif import beta_style, keep_shown, same_picture
from trajviz.figures.plane import MIN_CELLS, RING, end_ranks, fit_box, surface_figure
from trajviz.figures.style import SURFACE_SCALE
from trajviz.viewmodel.selection import select


def _dated(run, created, name=None):
    config = {**run.config, **({"name": name} if name else {})}
    return dataclasses.replace(run, config=config, info={**run.info, "created": created})


def test_the_page_opens_on_the_sinusoid_demo_else_the_newest_run(tmp_path):
    write_run_dir(tmp_path, _dated(make_run(run_id="old-demo"), "2026-01-01T00:00:00",
                                   "sinusoid-demo"))
    write_run_dir(tmp_path, _dated(make_run(run_id="newer"), "2026-06-01T00:00:00"))
    state = cb.AppState.for_dir(tmp_path)
    options, value = cb.run_options(state, None)
    assert value == "old-demo" and [o["value"] for o in options] == ["newer", "old-demo"]
    assert cb.run_options(state, "newer")[1] == "newer"  # a choice made stays
    other = tmp_path / "other"
    other.mkdir()
    write_run_dir(other, _dated(make_run(run_id="a"), "2026-01-01T00:00:00"))
    write_run_dir(other, _dated(make_run(run_id="b"), "2026-06-01T00:00:00"))
    assert cb.run_options(cb.AppState.for_dir(other), None)[1] == "b"


def test_a_run_with_one_slice_keeps_the_slice_row_and_says_why(tmp_path):
    run = make_run(run_id="one")
    one = dataclasses.replace(run, views=dict(list(run.views.items())[:1]))
    write_run_dir(tmp_path, one)
    o = cb.run_controls(cb.AppState.for_dir(tmp_path), "one")
    assert o["slice_style"] == cb.SHOW
    assert len(o["slice_options"]) == 1 and "only slice" in o["slice_options"][0]["label"]


def test_beta_shows_for_momentum_and_adam_only():
    assert beta_style("sgd") == {"display": "none"} and beta_style(None) == {"display": "none"}
    assert beta_style("momentum") == {} and beta_style("adam") == {}


def test_a_run_switch_to_its_own_settings_draws_once():
    assert same_picture(None, None, "r")
    assert same_picture({"run": "old", "live": 3, "variant": None}, None, "r")
    assert not same_picture({"run": "r", "live": 3, "variant": None}, None, "r")
    assert not same_picture(None, {"run": "r", "live": 4, "variant": None}, "r")


class _Worker:
    def __init__(self):
        self.calls = []

    def call(self, what, **kw):
        self.calls.append((what, kw))
        return {"ok": True}, b""


class _Pool:
    def __init__(self):
        self.worker = _Worker()

    def get(self, run_id, path):
        return self.worker


@dataclasses.dataclass
class _Variant:
    inner: dict
    info: dict


class _Service:
    def __init__(self, live):
        self.pool, self.live = _Pool(), live


def test_keep_keeps_the_variant_on_screen_not_the_controls(tmp_path):
    write_run_dir(tmp_path, make_run(run_id="r"))
    state = cb.AppState.for_dir(tmp_path)
    shown_variant = _Variant({"optimizer": "sgd", "lr": 1.26, "steps": 8},
                             {"changes": {"optimizer": "sgd", "lr": 1.26, "steps": 8}})
    state.whatif = _Service({"r": (7, shown_variant)})
    o = keep_shown(state, "r", {"run": "r", "live": 7, "variant": None}, "  k8 ")
    assert state.whatif.pool.worker.calls == [
        ("keep", {"changes": {"optimizer": "sgd", "lr": 1.26, "steps": 8}, "name": "k8"})]
    assert o["pick"] == "k8" and "Kept 'k8'" in o["status"] and "K 8" in o["status"]
    assert o["options"][0]["value"] == "__own__"
    # a newer what-if is still being drawn: the one on screen is gone, say so, keep nothing
    state.whatif = _Service({"r": (8, shown_variant)})
    o = keep_shown(state, "r", {"run": "r", "live": 7, "variant": None}, "x")
    assert "still being redrawn" in o["status"] and state.whatif.pool.worker.calls == []
    # the run's own setting on screen (or another run's what-if): nothing to keep
    for shown in (None, {"run": "other", "live": 8, "variant": None}):
        o = keep_shown(state, "r", shown, "x")
        assert "Nothing to keep" in o["status"] and state.whatif.pool.worker.calls == []


def test_paths_ending_on_one_point_are_drawn_as_rings():
    run = make_run()
    sel = select(run, None, 0, list(run.learners))
    coords = dict(sel.coords)
    names = list(sel.learners)
    same = np.asarray(coords[names[0]], float).copy()
    for n in names:  # every learner ends where the first does
        c = np.asarray(coords[n], float).copy()
        c[-1] = same[-1]
        coords[n] = c
    sel = dataclasses.replace(sel, coords=coords)
    box = fit_box(sel)
    assert [end_ranks(sel, box)[n] for n in names] == list(range(len(names) - 1, -1, -1))
    fig = surface_figure(sel, sel.steps)
    ends = [t for t in fig.data if t.name and t.name.endswith(" end")]
    sizes = [t.marker.size for t in ends]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] - sizes[-1] == RING * (len(names) - 1)


def test_fit_never_zooms_below_min_cells_of_the_grid():
    run = make_run()
    sel = select(run, None, 0, [next(iter(run.learners))])
    n = sel.learners[0]
    still = np.repeat(np.asarray(sel.coords[n], float)[:1], len(sel.coords[n]), axis=0)
    sel = dataclasses.replace(sel, coords={**sel.coords, n: still})
    x0, x1, _, _ = fit_box(sel)
    ex = sel.extent
    cell = (ex[1] - ex[0]) / (len(sel.alpha) - 1)
    assert x1 - x0 >= MIN_CELLS * cell * 0.999 or (x0, x1) == (ex[0], ex[1])


def _luminance(hex_colour: str) -> float:
    rgb = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def test_the_surface_scale_reads_on_a_projector():
    lum = [_luminance(c) for _, c in SURFACE_SCALE]
    assert lum == sorted(lum, reverse=True)  # one way: low loss light, high loss dark
    contrast = (max(lum) + 0.05) / (min(lum) + 0.05)  # WCAG contrast ratio
    assert contrast >= 4.5, contrast  # the old scale's was 3.2
    assert _luminance("#7F91A8") > min(lum) + 0.1  # darker than the old darkest


def test_no_share_link_in_the_toolbars():
    for config in (GRAPH_CONFIG, MAIN_GRAPH_CONFIG):
        assert config["showLink"] is False and config["showSendToCloud"] is False
        assert "sendDataToCloud" in config["modeBarButtonsToRemove"]


def test_the_key_names_markers_and_learners():
    text = str(surface_key(["leap", "random"]))
    assert "start" in text and "end" in text and "current step" in text
    assert "leap" in text and "random" in text


@pytest.mark.parametrize("zoom", ["fit", "all", "full"])
def test_the_page_surface_has_no_legend_under_its_axis_title(tmp_path, zoom):
    write_run_dir(tmp_path, make_run(run_id="r"))
    state = cb.AppState.for_dir(tmp_path)
    state.launches = type("L", (), {"over": staticmethod(lambda rid, run, ls: (run, ls))})()
    o = cb.draw(state, cb.PageInputs("r", None, "0", ["leap", "random"], "2d", 0, zoom=zoom))
    assert o["main"].layout.showlegend is False
    assert "leap" in str(o["key"]) and "random" in str(o["key"])


class _Jobs:
    def __init__(self, status):
        self._status = status

    def status(self, job_id):
        return {"run_id": "", "fraction": 0.5, "stage": "meta-training", "message": "",
                "elapsed": 3.0, **self._status}


def test_a_listed_run_ends_the_job_status_without_announcing_it_again(tmp_path):
    from dash import no_update
    state = cb.AppState.for_dir(tmp_path)
    state.jobs = _Jobs({"state": "done", "run_id": "new-run"})
    o = cb.job_on_listing(state, {"id": "abcd1234"}, False)
    assert "new-run" in o["status"] and o["poll_disabled"] is True and o["busy"] is False
    assert o["version"] is no_update  # the picker is listed already: no loop
    state.jobs = _Jobs({"state": "running"})
    o = cb.job_on_listing(state, {"id": "abcd1234"}, False)
    assert o["status"] is no_update and o["busy"] is no_update
    assert cb.job_on_listing(state, {"id": "abcd1234"}, True)["status"] is no_update  # no job


def test_labels_of_close_markers_are_placed_apart():
    from trajviz.viewmodel.placement import _box, _overlap, label_positions
    pts = np.array([[0.0, 0.0], [0.01, 0.0], [0.02, 0.01], [5.0, 5.0]])
    texts = ["birth point", "fomaml", "random", "leap"]
    where = label_positions(pts, texts, (-1, 10, -1, 10), plot_px=(550, 550))
    scale = 50.0  # px per unit
    boxes = [_box(w, (x + 1) * scale, (y + 1) * scale, 0.62 * 11 * len(t), 1.25 * 11, 7.5)
             for w, (x, y), t in zip(where, pts, texts)]
    assert all(_overlap(a, b) == 0 for i, a in enumerate(boxes) for b in boxes[i + 1:]), where
    assert where[3] == "top center"  # alone: the first choice


def test_the_export_draws_the_clicked_path_and_the_what_if_on_screen(tmp_path, monkeypatch):
    write_run_dir(tmp_path, make_run(run_id="r"))
    state = cb.AppState.for_dir(tmp_path)
    seen = {}

    def over(run_id, run, learners):
        return dataclasses.replace(run, run_id="with-click"), [*learners, "clicked"]

    state.launches = type("L", (), {"over": staticmethod(over)})()

    def fake_export(run, fmt, what, **kw):
        seen.update(run=run.run_id, **kw)
        return "x.png", b"png"

    monkeypatch.setattr(cb, "export_current", fake_export)
    monkeypatch.setattr(cb, "shown_run", lambda st, rid, shown: (seen.update(shown=shown)
                                                                 or st.cache.get(rid)))
    shown = {"run": "r", "live": 3, "variant": None}
    _, text = cb.export(state, "png", "surface",
                        cb.PageInputs("r", None, "0", ["leap"], "2d", 2, shown=shown), None)
    assert seen["run"] == "with-click" and seen["learners"] == ["leap", "clicked"]
    assert seen["shown"] == shown and "x.png" in text
