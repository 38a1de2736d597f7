"""The "Shown" picker follows what is on screen: a slider what-if is listed and picked."""
from __future__ import annotations

import types

from app_fixtures import make_run, write_run_dir
from dash import no_update

from trajviz.app.state import AppState
from trajviz.app.whatif import WhatIfService, picker_for
from trajviz.app.whatif_layout import LIVE, OWN


def test_the_picker_names_the_what_if_on_screen(tmp_path):
    write_run_dir(tmp_path, make_run(run_id="r", learners=("leap",), n_tasks=2))
    state = AppState.for_dir(tmp_path)
    state.whatif = WhatIfService(size=1)
    try:
        variant = types.SimpleNamespace(inner={"optimizer": "sgd", "lr": 0.09, "steps": 8})
        state.whatif.live["r"] = (7, variant)
        options, value = picker_for(state, "r", {"run": "r", "live": 7, "variant": None}, OWN)
        assert value == LIVE and options[-1]["value"] == LIVE
        assert options[-1]["label"] == "on screen now: sgd, lr 0.09, K 8 (not kept)"
        assert options[0]["value"] == OWN  # the run's own is still there to go back to
        # already picked: only the options (a new live variant's label), not the value
        assert picker_for(state, "r", {"run": "r", "live": 7, "variant": None}, LIVE)[1] is no_update
        # back to the run's own: the live entry leaves the list, OWN is picked
        options, value = picker_for(state, "r", {"run": "r", "live": None, "variant": None}, LIVE)
        assert value == OWN and [o["value"] for o in options] == [OWN]
        options, value = picker_for(state, "r", None, OWN)
        assert value is no_update and [o["value"] for o in options] == [OWN]
        assert picker_for(state, "r", None, OWN, options) == (no_update, no_update)  # as listed
        # a shown of another run, or no run: the stored run's own / nothing to say
        assert picker_for(state, "r", {"run": "other", "live": 7}, LIVE)[1] == OWN
        assert picker_for(state, None, None, OWN) == (no_update, no_update)
        assert picker_for(state, "no-such-run", None, OWN) == (no_update, no_update)
    finally:
        state.whatif.shutdown()
