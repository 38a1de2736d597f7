"""Did meta-training help? The "got worse" and "collapsed" flags (viewmodel/training.py) on a
run built to make a learner worse, the dead-ReLU fraction (pipeline/collapse.py) on a
network with known dead units, and the page's lines (components.training_note)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from test_app_callbacks import text_of

from trajviz.app import callbacks as cb
from trajviz.pipeline.collapse import dead_fraction
from trajviz.pipeline.experiment import run_experiment
from trajviz.problem.tasks import make_family
from trajviz.spec.config import from_dict
from trajviz.store import write_run
from trajviz.viewmodel.training import (
    collapse_reason,
    meta_checks,
    outer_lr_line,
    tuning_rows,
    worse_line,
)

BETA = 12.0  # outer SGD on J(θ0) = ½·¼·|θ0|²: θ0 ← (1 − 12/4)·θ0 = −2·θ0, every step


@pytest.fixture(scope="module")
def worse_run():
    """MAML on the unit bowl ½|θ|² (inner SGD lr ½, one step: θ_1 = θ0/2), outer SGD lr 12:
    each meta-step doubles |θ0|, so after 2 steps the held-out final loss and AUC are 16×
    their start. Built to make a learner get worse."""
    return run_experiment(from_dict({
        "family": "quadratic", "family_options": {"dim": 2, "condition": 1.0, "spread": 0.0},
        "learners": ["maml", "random"], "dtype": "float64", "seed": 3, "heldout_tasks": 2,
        "inner": {"optimizer": "sgd", "lr": 0.5, "steps": 1},
        "outer": {"optimizer": "sgd", "lr": BETA, "meta_steps": 2, "meta_batch": 2,
                  "eval_every": 1, "eval_tasks": 2},
        "slices": {"kinds": ["exact"], "resolution": 5}}))


def test_a_learner_that_got_worse_is_flagged_with_its_numbers(worse_run):
    theta0 = make_family("quadratic", {"dim": 2}).problem().model.init(3, dtype=torch.float64)["theta"]
    final0 = 0.5 * float(theta0 @ theta0) / 4  # ½|θ0/2|²
    checks = meta_checks(worse_run)
    assert set(checks) == {"maml"}  # random never meta-trains: nothing to judge
    c = checks["maml"]
    assert c.steps == (0, 2) and c.worse == ("final_loss", "auc")
    assert c.start["final_loss"] == pytest.approx(final0, rel=1e-12)
    assert c.end["final_loss"] == pytest.approx(16 * final0, rel=1e-12)
    assert c.end["auc"] == pytest.approx(16 * c.start["auc"], rel=1e-12)
    assert c.collapsed == "" and math.isnan(c.dead[0])  # a bowl has no ReLU: not recorded
    fmt3 = lambda x: f"{x:.3g}"
    assert worse_line(worse_run) == (
        f"⚠ maml got worse during meta-training (final loss {fmt3(final0)} → "
        f"{fmt3(16 * final0)}, AUC {fmt3(c.start['auc'])} → {fmt3(c.end['auc'])} over 2 "
        "meta-steps).")
    assert worse_line(worse_run, ["random"]) == ""


def test_better_than_its_start_but_worse_than_random_is_flagged_too(worse_run):
    rec, random = worse_run.learners["maml"], worse_run.learners["random"]
    # its meta-training curves reversed: they now end better than they start ...
    better = dataclasses.replace(rec, evals={k: v[::-1].copy() for k, v in rec.evals.items()})
    run = dataclasses.replace(worse_run, learners={**worse_run.learners, "maml": better})
    assert meta_checks(run)["maml"].worse == ()
    # ... but on all the held-out tasks its final loss is still 16× random's
    mine, ref = (float(np.mean(r.metrics["final_loss"])) for r in (rec, random))
    assert mine == pytest.approx(16 * ref, rel=1e-12)
    assert worse_line(run) == f"⚠ maml ends worse than random (held-out final loss " \
                              f"{mine:.3g} vs {ref:.3g})."
    # with random's own held-out paths it is flagged nowhere
    same = dataclasses.replace(better, metrics=random.metrics)
    run = dataclasses.replace(worse_run, learners={**worse_run.learners, "maml": same})
    assert worse_line(run) == ""


def test_collapse_reasons():
    start, end = {"length": 7.0}, {"length": 0.43}
    assert collapse_reason((0.1, 0.75), start, start, ()) == \
        "75% of its ReLU units are dead on the held-out inputs (10% at the start)"
    assert collapse_reason((0.6, 0.6), start, start, ()) == ""  # dead from the start: not new
    assert collapse_reason((math.nan, math.nan), start, end, ("auc",)) == \
        "its paths barely move (length 7 → 0.43)"
    assert collapse_reason((math.nan, math.nan), start, end, ()) == ""  # short and better: Leap's aim


def test_the_collapse_is_named_with_the_learner(worse_run):
    info = {**worse_run.info, "dead_units": {"start": 0.125, "learners": {"maml": 0.875,
                                                                          "random": 0.125}}}
    line = worse_line(dataclasses.replace(worse_run, info=info))
    assert "maml's θ0 looks collapsed: 88% of its ReLU units are dead on the held-out inputs " \
           "(12% at the start)" in line


def test_dead_fraction_counts_units_silent_on_every_input():
    family = make_family("sinusoid", {"hidden": (4, 3)})
    problem = family.problem()
    tasks = family.sample(0, 2, "heldout")
    params = problem.model.init(0)
    # layer 1: units 0, 2 dead (weight 0, bias −1), units 1, 3 alive (weight 0, bias +1)
    params["0.weight"] = torch.zeros(4, 1)
    params["0.bias"] = torch.tensor([-1.0, 1.0, -1.0, 1.0])
    # layer 2 sees (0, 1, 0, 1): unit 0 alive, units 1, 2 dead
    params["2.weight"] = torch.tensor([[0.0, 1.0, 0.0, 1.0], [0.0, -1.0, 0.0, -1.0], [5.0, 0.0, 5.0, 0.0]])
    params["2.bias"] = torch.zeros(3)
    assert dead_fraction(problem, params, tasks) == pytest.approx(4 / 7)
    bowl = make_family("quadratic")
    assert dead_fraction(bowl.problem(), bowl.problem().model.init(0), bowl.sample(0, 2)) is None


def test_outer_lr_lines():
    run = type("R", (), {})()
    run.config, run.info, run.learners = {"outer": {"lr": 0.003}}, {}, {"leap": None}
    assert outer_lr_line(run) == ("Outer learning rate 0.003 for every learner, not tuned "
                                  "(outer.lr = \"tune\" picks each learner's own).")
    run.config = {"outer": {"lr": "tune"}}
    run.info = {"tuning": {"leap": {"grid": [1e-3, 3e-3], "scores": [0.5, None], "chosen": 1e-3,
                                    "start": 0.8, "metric": "auc", "tasks": 8}}}
    assert tuning_rows(run)[0]["scores"][0] == 0.5 and math.isnan(tuning_rows(run)[0]["scores"][1])
    assert tuning_rows(run)[0]["helped"]
    assert outer_lr_line(run) == ("Outer learning rate tuned per learner from {0.001, 0.003} by "
                                  "mean loss AUC on 8 validation tasks, never the held-out ones: "
                                  "leap 0.001.")
    run.info["tuning"]["leap"]["start"] = 0.4  # the best rate still ends above the start
    assert not tuning_rows(run)[0]["helped"]
    assert outer_lr_line(run).endswith("No value in the grid beat the starting θ0 for leap: "
                                       "meta-training did not help it here at any of these rates.")


def test_the_page_says_it_in_the_summary_and_the_meta_tab(worse_run, tmp_path):
    write_run(dataclasses.replace(worse_run, run_id="worse"), tmp_path)
    out = cb.run_controls(cb.AppState.for_dir(tmp_path), "worse")
    line = worse_line(worse_run)
    assert line in text_of(out["summary"]) and line in text_of(out["meta_note"])
    assert "first-order approximation" in text_of(out["meta_note"]).replace("\n", " ") or \
        "second-order term" in text_of(out["meta_note"])
    assert "Outer learning rate 12 for every learner" in text_of(out["summary"])
    ids_ = [c.children.id for c in out["summary"] + out["meta_note"]
            if getattr(c, "className", "") == "tv-worse"]
    assert ids_ == ["explain-worse-summary", "explain-worse-meta"]  # unique on the page
