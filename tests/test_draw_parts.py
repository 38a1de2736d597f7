"""The draw callback draws only what an input changed, and only the chosen panel set."""
from __future__ import annotations

import numpy as np
import pytest
from app_fixtures import make_run, write_run_dir
from dash import no_update

from trajviz.app import ids
from trajviz.app.callbacks import AppState
from trajviz.app.draw import CARDS, DATA, FULL, PANEL, SURFACE, draw, parts_for, values
from trajviz.app.inputs import PageInputs, shown_keys
from trajviz.app.whatif_fast import fast_update
from trajviz.viewmodel.selection import PANEL_GROUPS, PANEL_KEYS, PANELS


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    write_run_dir(root, make_run(run_id="r", learners=("leap", "reptile", "random"), n_tasks=3))
    return AppState.for_dir(root)


def test_each_light_input_draws_only_its_part():
    assert parts_for({ids.ZOOM}) == {SURFACE}
    assert parts_for({ids.MODE}) == {SURFACE, DATA}
    assert parts_for({ids.PANEL_SET}) == {PANEL, DATA}
    assert parts_for({ids.MODE, ids.PANEL_SET}) == {SURFACE, PANEL, DATA}
    for heavy in (ids.RUN, ids.SLICE, ids.TASK, ids.LEARNERS, ids.WHATIF_SHOWN, ids.LAUNCHED):
        assert parts_for({heavy}) == FULL
        assert parts_for({heavy, ids.ZOOM}) == FULL  # with a heavy one, everything
    assert parts_for(set()) == FULL  # the page's first call


def test_panel_sets_partition_as_the_cards_say():
    for group, _ in PANEL_GROUPS:
        keys = shown_keys(group)
        assert keys == tuple(p.key for p in PANELS if group in p.groups) and keys
    assert shown_keys(None) == PANEL_KEYS and shown_keys("no-such-set") == PANEL_KEYS


def test_a_full_draw_builds_only_the_chosen_sets_panels(state):
    group = PANEL_GROUPS[1][0]
    keys = shown_keys(group)
    o = draw(state, PageInputs("r", None, "0", ["leap", "random"], "2d", 3, group=group))
    assert set(o["panels"]) == set(keys) and len(keys) < len(PANEL_KEYS)
    assert [p["id"] for p in o["data"]["panels"]] == [ids.PANEL_GRAPH[k] for k in keys]
    hidden = [s == {"display": "none"} for s in o["styles"]]
    assert hidden == [p.key not in keys for p in PANELS]
    assert all(o["panel_notes"][k] is not no_update for k in PANEL_KEYS)
    assert o["main"].layout.meta["key"] == o["data"]["key"]
    for k in keys:  # each drawn panel belongs to this selection, at the shown frame
        assert o["panels"][k].layout.meta == {"key": o["data"]["key"], "frame": 3}
    full = draw(state, PageInputs("r", None, "0", ["leap", "random"], "2d", 3))
    assert set(full["panels"]) == set(PANEL_KEYS)  # no set: every panel (exports, tests)
    for k in keys:  # the same figure whichever set asked for it
        assert o["panels"][k].to_json() == full["panels"][k].to_json()


def test_zoom_mode_and_panel_set_leave_the_rest_alone(state):
    page = PageInputs("r", None, "0", ["leap", "reptile"], "2d", 2, group="shape")
    zoomed = draw(state, page, parts_for({ids.ZOOM}))
    assert zoomed["main"] is not no_update and zoomed["panels"] == {}
    for name in ("data", "max", "honesty", "notes"):
        assert zoomed[name] is no_update, name
    assert zoomed["styles"] == [no_update] * len(PANELS)  # one per card: the callback spreads it
    three_d = draw(state, PageInputs(**{**page.__dict__, "mode": "3d"}), parts_for({ids.MODE}))
    assert three_d["data"]["main"]["three_d"] is True and three_d["panels"] == {}
    assert any(t.type == "surface" for t in three_d["main"].data)
    picked = draw(state, PageInputs(**{**page.__dict__, "group": "curvature"}),
                  parts_for({ids.PANEL_SET}))
    assert picked["main"] is no_update and picked["key"] is no_update
    assert set(picked["panels"]) == set(shown_keys("curvature"))
    assert no_update not in picked["styles"] and picked["data"]["main"]["three_d"] is False
    whole = draw(state, page, parts_for({ids.LEARNERS}))
    assert CARDS in FULL and whole["max"] == 10 and whole["honesty"] is not no_update


def test_a_problem_fills_every_part(state):
    o = draw(state, PageInputs("no-such-run", group="shape"), parts_for({ids.ZOOM}))
    assert "Nothing to draw" in str(o["notes"]) and o["main"] is not no_update
    assert set(o["panels"]) == set(shown_keys("shape"))


def test_the_fast_route_restyles_only_the_chosen_panels(state):
    run = state.cache.get("r")
    fast = fast_update(state, "r", run, PageInputs("r", None, "1", ["leap"], frame=4,
                                                   group="shape"))
    assert [p["id"] for p in fast["panels"]] == [ids.PANEL_GRAPH[k] for k in shown_keys("shape")]
    assert fast["frame_data"]["frame"] == 4
    every = fast_update(state, "r", run, PageInputs("r", None, "1", ["leap"], frame=4))
    assert len(every["panels"]) == len(PANEL_KEYS)
    np.testing.assert_array_equal(fast["main"]["data"][0]["x"], every["main"]["data"][0]["x"])


@pytest.mark.parametrize("light", [set(), {ids.ZOOM}, {ids.MODE}, {ids.PANEL_SET}])
def test_every_draw_fills_each_output_of_the_callback_once(state, light):
    """The callback spreads the result over its outputs: one value each, whatever was drawn."""
    o = draw(state, PageInputs("r", None, "0", ["leap"], "2d", 1, group="steps"), parts_for(light))
    out = values(o)
    assert len(out) == 1 + len(PANEL_KEYS) + 4 + len(PANEL_KEYS) + 1 + len(PANELS)
    panels = out[1:1 + len(PANEL_KEYS)]
    drawn = [k for k, f in zip(PANEL_KEYS, panels) if f is not no_update]
    assert drawn == ([] if PANEL not in parts_for(light) else list(shown_keys("steps")))
