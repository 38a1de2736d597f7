"""Figures built without plotly's per-property validation (``style.new_figure``) are the
figures plotly's validation would have built: rebuilt validated, the JSON is the same."""
from __future__ import annotations

import json

import plotly.graph_objects as go
import plotly.io as pio
import pytest
from app_fixtures import make_run

from trajviz.figures import panel_figure, surface_figure
from trajviz.figures.style import base_layout, new_figure
from trajviz.viewmodel.selection import PANEL_KEYS, select


def _pruned(value):
    """``value`` without empty objects (plotly's validation drops ``"title": {}``)."""
    if isinstance(value, dict):
        kept = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v != {}}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _same(fig: go.Figure) -> None:
    mine = json.loads(fig.to_json())
    checked = json.loads(go.Figure(mine).to_json())  # validates every property
    assert json.dumps(_pruned(checked), sort_keys=True) == json.dumps(_pruned(mine), sort_keys=True)


@pytest.fixture(scope="module")
def sel():
    return select(make_run(run_id="v", learners=("leap", "reptile"), n_tasks=2,
                           diverge="reptile"), None, 1)


@pytest.mark.parametrize("three_d,paper", [(False, False), (True, False), (False, True)])
def test_the_surface_is_a_valid_figure(sel, three_d, paper):
    fig = surface_figure(sel, 3, three_d=three_d, paper=paper)
    _same(fig)
    assert fig.to_plotly_json()["layout"]["template"]["layout"]  # the template itself, not a name


@pytest.mark.parametrize("key", PANEL_KEYS)
def test_every_panel_is_a_valid_figure(sel, key):
    _same(panel_figure(sel, key, 2))


def test_the_base_layout_is_the_validated_one():
    quick = new_figure(paper=True).to_plotly_json()["layout"]
    slow = go.Figure()
    base_layout(slow, True)
    assert json.dumps(quick, sort_keys=True) == json.dumps(slow.to_plotly_json()["layout"], sort_keys=True)
    assert quick["template"] == pio.templates["simple_white"].to_plotly_json()
    a, b = new_figure(), new_figure()
    a.layout.template.layout.font.size = 99  # each figure has its own copy
    assert b.layout.template.layout.font.size != 99
