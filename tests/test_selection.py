"""The view-model (trajviz.viewmodel.selection, honesty, summary): values, no plotly."""
from __future__ import annotations

import math

import numpy as np
import pytest
from app_fixtures import LEARNERS, make_run

from trajviz.viewmodel import axes as A
from trajviz.viewmodel import honesty as H
from trajviz.viewmodel import selection as S
from trajviz.viewmodel.palette import EXTRA_COLOURS, PALETTE, learner_colour


def tiny(coords, residual, loss, plane, explained=(np.nan,), kind="random") -> S.Selection:
    """A Selection built by hand: {learner: arrays} for the paths, nothing else used."""
    names = tuple(coords)
    grid = np.array([0.0, 1.0])
    return S.Selection(
        run_id="r", view="v", task=0, task_label="task 0", learners=names, steps=2,
        alpha=grid, beta=grid, z=np.ones((2, 2)), log_z=False, slice_kind=kind,
        slice_label="", explained=np.asarray(explained, float), axis_titles=("a", "b"),
        coords={n: np.asarray(c, float) for n, c in coords.items()},
        series={"loss": {n: np.asarray(v, float) for n, v in loss.items()},
                "residual": {n: np.asarray(v, float) for n, v in residual.items()}},
        plane={n: np.asarray(v, float) for n, v in plane.items()}, notes=())


def test_honesty_by_hand():
    sel = tiny(coords={"a": [[0, 0], [2, 0], [4, 1]], "b": [[0, 0], [1, 3], [1, 2]]},
               residual={"a": [0.0, 0.5, 1.0], "b": [0.0, 2.0, np.nan]},
               loss={"a": [10.0, 5.0, 2.0], "b": [10.0, 6.0, 4.0]},
               plane={"a": [10.0, 4.0, 2.0], "b": [10.0, 9.0, 4.0]},
               explained=(0.6, 0.25))
    h = H.honesty(sel)
    assert h == H.Honesty(explained=0.85, residual_max=2.0, residual_median=0.5, spread=4.0,
                          loss_gap_max=3.0, loss_gap_rel=3.0 / 8.0, on_plane=False)
    assert H.honesty_line(sel) == ("the plane holds 85.0% of the paths' variance · "
                                   "off-plane residual ≤ 2")
    assert H.honesty_notes(sel) == ["slice: random", "explained variance: 85%",
                                    "off-plane residual: max 2, median 0.5",
                                    "recorded vs plane loss: max gap 3"]
    items = H.honesty_items(sel)
    assert items[1] == ("85.0% ", "of the paths' variance lies in this plane: the picture "
                                  "shows most of the movement.")
    assert items[2] == ("Off-plane residual ", "up to 2, median 0.5 (50% of the paths' extent "
                                               "on the plane).")
    assert items[3] == ("Loss gap ", "recorded vs on the slice: at most 3 (38% of the loss "
                                     "range).")


def test_honesty_on_plane_is_relative_to_the_spread():
    # spread 1000: residuals up to 1e-6 × 1000 = 1e-3 are rounding noise
    on = tiny({"a": [[0, 0], [1000, 0], [0, 1]]}, {"a": [0, 9e-4, 0]}, {"a": [1, 1, 1]},
              {"a": [1, 1, 1]})
    off = tiny({"a": [[0, 0], [1000, 0], [0, 1]]}, {"a": [0, 2e-3, 0]}, {"a": [1, 1, 1]},
               {"a": [1, 1, 1]})
    assert H.honesty(on).on_plane and not H.honesty(off).on_plane
    assert math.isnan(H.honesty(on).loss_gap_rel)  # a flat loss has no range to compare
    assert H.honesty_line(on) == "every point lies on the plane"


def test_honesty_of_real_slices(run, run3):
    exact = H.honesty(S.select(run, "exact"))
    assert exact.on_plane and math.isnan(exact.explained)
    pca = H.honesty(S.select(run3, "pca"))
    assert not pca.on_plane and 0.5 < pca.explained < 1
    assert pca.residual_max > 0.1 and pca.loss_gap_max > 0


def test_the_log_rule_and_frame_clamping():
    assert S.use_log([np.array([1.0, 31.0])]) and not S.use_log([np.array([1.0, 30.0])])
    assert not S.use_log([np.array([0.0, 100.0])])  # zero: no log axis
    assert S.use_log([np.array([1.0, np.nan]), np.array([np.inf, 100.0])])  # finite only
    assert not S.use_log([])
    assert [S.clamp_frame(f, 10) for f in (None, -3, 4, 99)] == [10, 0, 4, 10]


def test_value_range():
    assert S.value_range([np.array([0.0, 10.0])]) == pytest.approx((-0.6, 10.6))
    assert S.value_range([np.array([2.0, 10.0])], floor=0.0) == pytest.approx((-0.6, 10.6))
    assert S.value_range([np.array([1.0, 1000.0])], log=True) == pytest.approx((-0.18, 3.18))
    assert S.value_range([np.array([np.nan])]) == (0.0, 1.0)
    assert S.value_range([np.array([5.0])], pad=0.1) == pytest.approx((4.5, 5.5))


def test_fmt():
    assert [S.fmt(x) for x in (None, math.nan, math.inf, -math.inf, 0.0, 0.012345, 123456.0,
                               2.0e-4)] == ["—", "—", "∞", "−∞", "0", "0.0123", "1.23e+05",
                                            "2.00e-04"]


def test_learner_colours_are_fixed():
    assert len(set(PALETTE.values())) == len(PALETTE) == 11  # six learners, five Leap variants
    assert learner_colour("leap") == "#D55E00"
    # other names get a stable pick (crc32, not Python's salted hash) from the extras
    assert learner_colour("someone-new") == "#B2182B" and "#B2182B" in EXTRA_COLOURS


def test_contour_grids_are_thinned():
    big = make_run(resolution=250)
    surf = big.views["pca"].surface
    sel = S.select(big)
    step = math.ceil(250 / S.MAX_GRID)  # 3: 84 points per axis
    assert sel.z.shape == (84, 84)
    np.testing.assert_array_equal(sel.alpha, surf.alpha[::step])
    np.testing.assert_array_equal(sel.z, surf.mean[::step, ::step])
    # 249 = 3 × 83: the thinned grid keeps both ends, so the extent is the full grid's
    assert sel.extent == (surf.alpha[0], surf.alpha[-1], surf.beta[0], surf.beta[-1])


def test_task_mean_and_single_task(run):
    mean = S.select(run, "pca", None)
    one = S.select(run, "pca", 2)
    np.testing.assert_allclose(mean.series["loss"]["leap"], run.learners["leap"].losses.mean(0),
                               rtol=1e-6)
    np.testing.assert_allclose(one.z, run.views["pca"].surface.loss[2], rtol=1e-6)
    np.testing.assert_allclose(mean.z, run.views["pca"].surface.mean, rtol=1e-6)
    assert mean.task_label == "mean of 4 held-out tasks (averaged points, not a path taken)"
    assert one.task_label.startswith("task 2 · scale")
    assert mean.key == f"{run.run_id}|pca|mean|leap,reptile,random"
    assert one.key == f"{run.run_id}|pca|2|leap,reptile,random"


def test_axes_state_explained_variance(run, run3):
    sel = S.select(run3, "pca")
    ev = run3.views["pca"].slice.explained_variance
    assert sel.axis_titles == (f"PC1 ({100 * ev[0]:.1f}% var.)", f"PC2 ({100 * ev[1]:.1f}% var.)")
    assert "exact" in S.select(run, "exact").axis_titles[0]
    assert "random direction" in S.select(run3, "random").axis_titles[0]


def test_diverged_paths_are_noted(run3):
    sel = S.select(run3, "pca", 3)
    assert len(sel.notes) == 1 and sel.notes[0].startswith("Diverged on this task: reptile at step 5.")
    assert np.isnan(sel.coords["reptile"][6:]).all()
    notes = S.select(run3).notes
    assert len(notes) == 1 and "reptile on 1 of 4 tasks (id 3), first bad step 5" in notes[0]


def test_select_rejects_unknown_names(run):
    with pytest.raises(ValueError, match="unknown slice 'nope'"):
        S.select(run, "nope")
    with pytest.raises(ValueError, match="unknown learner"):
        S.select(run, None, None, ["leap", "maml"])
    with pytest.raises(ValueError, match="task must be 0..3"):
        S.select(run, None, 4)
    assert S.select(run, None, None, ["random", "leap"]).learners == ("leap", "random")
    with pytest.raises(ValueError, match="unknown panel"):
        S.panel_spec("nope")


def test_summary_rows_have_intervals_and_a_best(run):
    rows = S.summary_rows(run)
    assert [r["learner"] for r in rows] == list(LEARNERS)
    for r in rows:
        for key, _, _ in S.SUMMARY_COLUMNS:
            mean, lo, hi = r[key]
            assert lo <= mean <= hi and lo >= 0
            np.testing.assert_allclose(mean, np.nanmean(run.learners[r["learner"]].metrics[key]))
        assert r["oscillation"][2] <= 1 and r["monotonicity"][2] <= 1
    assert S.best_learners(rows)["length"] == "leap"
    tie = [{"learner": n, **{k: (1.0, 1.0, 1.0) for k, _, _ in S.SUMMARY_COLUMNS}}
           for n in ("a", "b")]
    assert S.best_learners(tie) == {}  # nobody is bold when the best mean is shared


def test_meta_selection_pads_and_clamps(run):
    meta = S.select_meta(run)
    frames = len(run.learners["leap"].meta_path_steps)
    assert meta.frames == frames and meta.frame(None) == frames - 1 and meta.frame(-1) == 0
    assert all(len(meta.coords[n]) == frames for n in meta.learners)
    assert meta.key == f"meta|{meta.surface.key}"
    assert A.meta_cursor_x(meta, 0) == float(run.learners["leap"].meta_path_steps[0])
