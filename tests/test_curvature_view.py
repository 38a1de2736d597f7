"""The curvature and straight-line panels: view-model, figures, playback data, store."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from app_fixtures import bowls, loss, make_run, write_run_dir

from trajviz import figures as F
from trajviz.store import load_run
from trajviz.viewmodel import selection as S
from trajviz.viewmodel.spectrum import FLOOR, NEGATIVE_MEANING
from trajviz.viewmodel.straight import bilinear, is_monotone, largest_rise

K, T = 10, 4


def _with_curvature(run, kept=(0, 4, 8, 10), shift=0.0):
    """``run`` with the curvature diagnostics of its bowls, by hand: every step's Hessian is
    A_t (− shift·I), so λ_min, the trace and the spectrum are eigvalsh(A_t); the straight
    line is the bowl's loss along θ0 → θ_K."""
    a, c = bowls(T, 2, 0)
    eig = np.linalg.eigvalsh(a) - shift  # [T, 2]
    learners = {}
    for n, rec in run.learners.items():
        p = np.asarray(rec.params, float)
        t = np.linspace(0, 1, K + 1)[None, :, None]
        line = loss(a, c, p[:, :1] + t * (p[:, -1:] - p[:, :1]))
        s = len(kept)
        diag = {"lambda_min": np.repeat(eig[:, :1], K + 1, 1),
                "lambda_min_err": np.zeros((T, K + 1)),
                "hessian_trace": np.repeat(eig.sum(1, keepdims=True), K + 1, 1),
                "hessian_trace_err": np.full((T, K + 1), 0.5),
                "spectrum_steps": np.tile(np.asarray(kept, float), (T, 1)),
                "spectrum_nodes": np.repeat(eig[:, None], s, 1),
                "spectrum_weights": np.full((T, s, 2), 0.5),
                "straight_loss": line}
        learners[n] = dataclasses.replace(rec, diagnostics=diag)
    info = {**run.info, "diagnostics": {"curvature": {"exact": True, "param_count": 2,
                                                      "exact_max": 256}}}
    return dataclasses.replace(run, learners=learners, info=info), eig


@pytest.fixture(scope="module")
def curved():
    return _with_curvature(make_run(steps=K, n_tasks=T))


def test_series_lines_and_errors(curved):
    run, eig = curved
    sel = S.select(run, "pca", 1)
    np.testing.assert_allclose(sel.series["lambda_min"]["leap"], eig[1, 0])
    np.testing.assert_allclose(sel.series["trace"]["leap"], eig[1].sum())
    np.testing.assert_allclose(sel.diagnosis.errors["trace"]["leap"], 1.0)  # ±2 SE of 0.5
    assert "λ_min ≥ 0 everywhere on this task" in sel.diagnosis.lines["lambda_min"]
    neg, _ = _with_curvature(make_run(steps=K, n_tasks=T), shift=eig[:, 0].max() + 0.5)
    line = S.select(neg, "pca", None).diagnosis.lines["lambda_min"]
    assert line.startswith("λ_min < 0 in the task mean: every learner steps 0–10.")
    assert NEGATIVE_MEANING[1:] in line
    # the task mean of independent errors: √Σe²/n
    mean = S.select(run, "pca", None)
    np.testing.assert_allclose(mean.diagnosis.errors["trace"]["leap"], 2 * 0.5 * np.sqrt(T) / T)


def test_spectrum_view_density_and_frame_index(curved):
    run, eig = curved
    view = S.select(run, "pca", 2).spectrum
    assert view.steps.tolist() == [0, 4, 8, 10]
    assert view.index.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3]  # latest kept step ≤ k
    d = view.density["leap"][1]
    area = np.sum((d[1:] + d[:-1]) / 2 * np.diff(view.grid))
    assert area == pytest.approx(1.0, abs=0.01)  # two spikes of mass ½ each
    peaks = view.grid[np.flatnonzero((d[1:-1] > d[:-2]) & (d[1:-1] > d[2:])) + 1]
    np.testing.assert_allclose(np.sort(peaks), eig[2], atol=2 * np.diff(view.grid)[0])
    assert d.min() == pytest.approx(FLOOR * max(v.max() for v in view.density.values()))
    assert view.label(5) == "step 4 (cursor 5)" and view.label(8) == "step 8"


def test_spectrum_figure_and_its_playback_entry(curved):
    run, _ = curved
    sel = S.select(run, "pca", 0)
    fig = F.panel_figure(sel, "spectrum", 5)
    n = len(sel.learners)
    assert [t.name for t in fig.data] == [*sel.learners, "step"]
    assert fig.data[-1].text == ("step 4 (cursor 5)",)
    assert fig.layout.yaxis.type == "log" and fig.layout.meta["key"] == sel.key
    np.testing.assert_allclose(fig.data[0].y, sel.spectrum.density[sel.learners[0]][1], rtol=1e-6)
    data = F.frame_data(sel, "main", {k: f"panel-{k}" for k in S.PANEL_KEYS})
    entry = next(p for p in data["panels"] if p["id"] == "panel-spectrum")["spectrum"]
    assert entry["traces"] == list(range(n)) and entry["label"] == n
    assert len(entry["curves"]) == n and len(entry["curves"][0]) == 4
    assert len(entry["curves"][0][0]) == len(entry["x"]) and entry["texts"][5] == "step 4 (cursor 5)"
    json.dumps(data, allow_nan=False)


def test_straight_panel_ends_and_monotone(curved):
    run, _ = curved
    sel = S.select(run, "pca", 0)
    for n in sel.learners:
        line, path = sel.series["straight"][n], sel.series["loss"][n]
        assert line[0] == pytest.approx(path[0], rel=1e-5)
        assert line[-1] == pytest.approx(path[-1], rel=1e-5)
    fig = F.panel_figure(sel, "straight", 3)
    n = len(sel.learners)
    assert len(fig.data) == 3 * n + 2 and fig.data[0].line.dash == "dot"
    assert fig.data[3 * n].name == "cursor"
    assert "Dotted: the loss on the straight line" in sel.diagnosis.lines["straight"]


def test_monotone_rise_and_bilinear_by_hand():
    assert largest_rise(np.array([3.0, 2.0, 2.5, 1.0])) == pytest.approx(0.5)
    assert largest_rise(np.array([3.0, 2.0, 1.0])) == 0.0
    assert is_monotone(np.array([[3.0, 2.0, 1.0], [3.0, 2.0, 2.5]])).tolist() == [True, False]
    alpha, beta = np.linspace(-1, 1, 5), np.linspace(0, 2, 3)
    z = alpha[None, :] + 2 * beta[:, None]  # bilinear interpolation is exact on a plane
    np.testing.assert_allclose(bilinear(alpha, beta, z, np.array([0.3, -0.7]), np.array([1.5, 0.2])),
                               [0.3 + 3.0, -0.7 + 0.4])
    assert np.isnan(bilinear(alpha, beta, z, np.array([1.5]), np.array([1.0])))[0]


def test_the_store_keeps_the_curvature_with_the_light_arrays(curved, tmp_path):
    run, _ = curved
    back = load_run(write_run_dir(tmp_path, dataclasses.replace(run, run_id="curved")))
    for n, rec in run.learners.items():
        for key, value in rec.diagnostics.items():
            np.testing.assert_array_equal(back.learners[n].diagnostics[key], value)
    doc = json.loads((tmp_path / "curved" / "run.json").read_text())
    names = dict(next(e for n, e in doc["learners"] if n == "leap")["diagnostics"])
    for name in ("spectrum_nodes", "spectrum_weights", "straight_loss", "lambda_min"):
        assert doc["arrays"][names[name]]["file"] == "light"  # kept by a light record too


def test_the_straight_line_paper_preset(curved):
    from trajviz.figures.api import figure
    run, _ = curved
    fig = figure(run, "straight", task=None, preset="column", title="MLI")
    n = len(run.learners)
    assert fig.layout.width == round(3.3 * 96) and len(fig.data) == 3 * n + 2
    assert "Straight" in fig.layout.annotations[0].text or "straight" in fig.layout.annotations[0].text
    with pytest.raises(ValueError, match="preset figures are"):
        figure(run, "panel", preset="column")
