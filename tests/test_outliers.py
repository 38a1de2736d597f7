"""Views one outlier cannot take over (trajviz.data.outliers, engine.robustfit, the page's
framing and honesty): one learner whose path goes 1e4 times farther than the others'
is left out of the slice fit and the frame's fit, named, and drawn clipped and marked."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from app_fixtures import make_run

from trajviz.data.outliers import equal_weights, far_groups, plane_outliers
from trajviz.data.run import View
from trajviz.engine.robustfit import robust_rows
from trajviz.engine.slices import pca_slice, project, with_extent
from trajviz.figures.plane import fit_box, surface_figure
from trajviz.viewmodel.framing import clip_to, edge_marks, outside
from trajviz.viewmodel.honesty import honesty, honesty_items, honesty_line
from trajviz.viewmodel.selection import path_box, select


def paths(rng, centre: np.ndarray, tasks: int = 3, points: int = 6, step: float = 0.1):
    """[tasks·points, P] random-walk paths starting at ``centre``."""
    walk = np.cumsum(step * rng.normal(size=(tasks, points, centre.size)), axis=1)
    walk[:, 0] = 0.0
    return (centre + walk).reshape(-1, centre.size)


@pytest.fixture
def three_learners():
    rng = np.random.default_rng(5)
    p = 40
    leap = paths(rng, rng.normal(size=p))
    reptile = paths(rng, rng.normal(size=p))
    fomaml = paths(rng, rng.normal(size=p))
    centre = np.median(fomaml, axis=0)
    fomaml[7] = centre + 1e4 * (fomaml[7] - centre)  # one point jumps 1e4 times as far
    points = np.concatenate([leap, reptile, fomaml])
    groups = np.array(["leap"] * len(leap) + ["reptile"] * len(reptile) + ["fomaml"] * len(fomaml),
                      dtype=object)
    return points, groups, len(leap)


def test_the_fit_leaves_the_far_learner_out_and_equals_the_fit_without_it(three_learners):
    points, groups, n = three_learners
    fit = robust_rows(points, groups)
    assert list(fit.far) == ["fomaml"] and fit.far["fomaml"] > 1000
    assert "left out of the fit: fomaml (its path reached" in fit.note()
    np.testing.assert_array_equal(fit.weights[2 * n:], 0.0)
    assert fit.weights[:n].sum() == pytest.approx(0.5) and fit.weights[n:2 * n].sum() == pytest.approx(0.5)
    robust = pca_slice(points, weights=fit.weights)
    without = pca_slice(points[:2 * n])
    np.testing.assert_allclose(robust.basis, without.basis, atol=1e-9)
    np.testing.assert_allclose(robust.explained_variance, without.explained_variance, atol=1e-12)
    np.testing.assert_allclose(robust.origin, without.origin, atol=1e-12)
    # the extent covers the others' points
    coords, _ = project(robust, points[:2 * n])
    a0, a1, b0, b1 = robust.extent
    assert (coords[:, 0] >= a0).all() and (coords[:, 0] <= a1).all()
    assert (coords[:, 1] >= b0).all() and (coords[:, 1] <= b1).all()
    # a plain fit is taken over: its first axis is the jump
    plain = pca_slice(points)
    jump = points[2 * n + 7] - np.median(points[2 * n:], axis=0)
    assert abs(plain.basis[0] @ jump) / np.linalg.norm(jump) > 0.99
    assert plain.explained_variance[0] > 0.99
    assert abs(plain.basis[0] @ without.basis[0]) < 0.5


def test_learners_weigh_the_same_whatever_their_number_of_points(three_learners):
    points, groups, n = three_learners
    keep = np.ones(len(points), dtype=bool)
    keep[: n // 2] = False  # leap lost half its points (a diverged rollout, say)
    w = equal_weights(groups, keep)
    assert w[n // 2:n].sum() == pytest.approx(1 / 3) and w[2 * n:].sum() == pytest.approx(1 / 3)
    slc = pca_slice(points[:2 * n], weights=w[:2 * n] * (np.arange(2 * n) >= n // 2))
    means = [points[n // 2:n].mean(0), points[n:2 * n].mean(0)]
    np.testing.assert_allclose(slc.origin, np.mean(means, axis=0), atol=1e-12)  # per-learner mean


def test_far_groups_is_leave_one_out_and_judges_nothing_alone():
    assert far_groups({"a": 1.0, "b": 1e4}) == {"b": 1e4}
    assert far_groups({"a": 1.0, "b": 50.0, "c": 2.0}) == {}  # 50x: a comparison, kept
    assert far_groups({"a": 5.0}) == {} and far_groups({"a": 0.0, "b": 3.0}) == {}
    two = far_groups({"leap": 1.0, "maml": 3e4, "fomaml": 3e4, "random": 2.0, "reptile": 1.5})
    assert set(two) == {"maml", "fomaml"}


def far_run():
    """A synthetic run whose reptile paths (every task) jump 1e4 times as far at step 6."""
    run = make_run(learners=("leap", "reptile", "random"), steps=8)
    view = run.views["pca"]
    coords = {n: c.copy() for n, c in view.coords.items()}
    c = coords["reptile"]
    c[:, 6:] = c[:, :1] + 1e4 * (c[:, 6:] - c[:, :1])
    return dataclasses.replace(run, views={**run.views, "pca": dataclasses.replace(view, coords=coords)})


def test_the_frame_covers_the_others_and_names_and_marks_the_far_learner():
    run = far_run()
    sel = select(run, "pca", 0)
    box = fit_box(sel)
    for name in ("leap", "random"):
        xy = sel.coords[name]
        assert (xy[:, 0] >= box[0]).all() and (xy[:, 0] <= box[1]).all()
        assert (xy[:, 1] >= box[2]).all() and (xy[:, 1] <= box[3]).all()
    span = max(box[1] - box[0], box[3] - box[2])
    others = np.concatenate([sel.coords["leap"], sel.coords["random"]])
    assert span < 10 * np.ptp(others, axis=0).max()  # not stretched to the jump
    flags = outside(sel.coords, box)
    np.testing.assert_array_equal(flags["reptile"], np.arange(9) >= 6)  # the clipped points
    assert not flags["leap"].any() and not flags["random"].any()
    marks = edge_marks(sel.coords, box)
    assert [m.learner for m in marks] == ["reptile"] and marks[0].count == 3
    assert box[0] <= marks[0].a <= box[1] and box[2] <= marks[0].b <= box[3]
    np.testing.assert_allclose(clip_to(np.array([marks[0].true_a, marks[0].true_b]), box),
                               [marks[0].a, marks[0].b])
    h = honesty(sel)
    assert list(h.left_out) == ["reptile"] and h.left_out["reptile"] > 1000
    assert "left out of the frame's fit, drawn clipped: reptile" in honesty_line(sel, h)
    assert any(lead == "Left out of the frame's fit: " and text.startswith("reptile (its path")
               for lead, text in honesty_items(sel, h))
    fig = surface_figure(sel, zoom="fit")
    notes = [a.text for a in fig.layout.annotations]
    assert notes == ["◆ reptile: 3 points off the frame"]
    # the view's box (every task) leaves reptile out too
    vb = path_box(run.views["pca"], (-1e9, 1e9, -1e9, 1e9))
    every = np.concatenate([run.views["pca"].coords[n].reshape(-1, 2) for n in ("leap", "random")])
    assert (every.min(0) >= [vb[0], vb[2]]).all() and (every.max(0) <= [vb[1], vb[3]]).all()
    assert vb[1] - vb[0] < 10 * np.ptp(every, axis=0).max()  # not stretched to the jumps
    # a run without a far learner: nothing left out, no marks
    plain = select(make_run(learners=("leap", "reptile", "random"), steps=8), "pca", 0)
    assert honesty(plain).left_out == {} and not surface_figure(plain).layout.annotations


def test_the_views_extent_leaves_the_far_learner_out():
    run = far_run()
    view: View = run.views["pca"]
    kept, far = plane_outliers(view.coords)
    assert list(far) == ["reptile"]
    slc = with_extent(view.slice, kept)
    for name in ("leap", "random"):
        xy = view.coords[name].reshape(-1, 2)
        assert (xy[:, 0] >= slc.extent[0]).all() and (xy[:, 0] <= slc.extent[1]).all()
    assert slc.extent[1] < np.nanmax(view.coords["reptile"][..., 0]) or \
        slc.extent[0] > np.nanmin(view.coords["reptile"][..., 0])


def test_build_slice_fits_pca_without_the_far_learner_and_says_so():
    from trajviz.pipeline.views import build_slice, good_path_points
    from trajviz.spec.config import from_dict

    run = make_run(learners=("leap", "reptile", "random"), steps=8, n_params=3)
    records = dict(run.learners)
    far = records["reptile"].params.copy()
    far[:, 6:] = far[:, :1] + 1e4 * (far[:, 6:] - far[:, :1])
    records["reptile"] = dataclasses.replace(records["reptile"], params=far)
    config = from_dict({"family": "quadratic", "family_options": {"dim": 3},
                        "learners": ["leap", "reptile", "random"], "slices": {"kinds": ["pca"]}})
    slc = build_slice("pca", config, None, records)
    assert "; left out of the fit: reptile (its path reached" in slc.label
    others = good_path_points({n: records[n] for n in ("leap", "random")})
    np.testing.assert_allclose(slc.basis, pca_slice(others).basis, atol=1e-9)
    plain = build_slice("pca", config, None, dict(run.learners))  # nothing far: as before
    assert "left out" not in plain.label
