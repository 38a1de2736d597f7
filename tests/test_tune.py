"""outer.lr = "tune": the sweep's choice where the best outer lr is known by hand, that it
never looks at the held-out tasks, its record, its cost estimate and its config edge."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trajviz.pipeline.experiment import train_and_record
from trajviz.pipeline.tune import choose, validation_seed, validation_tasks
from trajviz.problem.tasks import make_family
from trajviz.spec import budget
from trajviz.spec.config import from_dict, replace, to_dict

ALPHA, K = 0.5, 1  # inner SGD on f(θ) = ½|θ|²: θ_1 = (1 − α)·θ_0
M = (1 - ALPHA) ** (2 * K)  # MAML's meta-objective J(θ0) = ½·M·|θ0|², a quadratic: J'' = M


def bowl(**outer):
    """Every task the same unit bowl ½|θ|² (condition 1: A = I whatever the rotation;
    spread 0: centre 0), so MAML's meta-gradient is exactly M·θ0 on every meta-batch."""
    return from_dict({
        "family": "quadratic", "family_options": {"dim": 2, "condition": 1.0, "spread": 0.0},
        "learners": ["maml", "random"], "dtype": "float64", "seed": 3, "heldout_tasks": 2,
        "inner": {"optimizer": "sgd", "lr": ALPHA, "steps": K},
        "outer": {"optimizer": "sgd", "meta_steps": 3, "meta_batch": 2, "eval_every": 1,
                  "eval_tasks": 2, **outer},
        "slices": {"kinds": ["exact"], "resolution": 5}})


def test_the_sweep_picks_the_outer_lr_that_lands_on_the_quadratic_meta_objectives_minimum():
    # outer SGD with lr β: θ0 ← (1 − β·M)·θ0, so after S steps θ0_S = (1 − β·M)^S·θ0 and the
    # validation AUC (trapezoid over K = 1 step / K) is ½|θ0_S|²·(1 + (1 − α)²)/2. β = 1/M = 4
    # reaches the minimum θ0 = 0 in one step; 2 and 6 tie at |1 − β·M| = 1/2; 1 is slower.
    grid = [1.0, 2.0, 4.0, 6.0]
    rec = train_and_record(bowl(lr="tune", lr_grid=grid, tune_tasks=3))
    tuning = rec.tuning["maml"]
    assert tuning["chosen"] == 4.0 and tuning["grid"] == grid and tuning["tasks"] == 3
    theta0 = make_family("quadratic", {"dim": 2}).problem().model.init(3, dtype=torch.float64)["theta"]
    half_sq = 0.5 * float(theta0 @ theta0)
    expected = [half_sq * (1 - b * M) ** 6 * (1 + (1 - ALPHA) ** 2) / 2 for b in grid]
    np.testing.assert_allclose(tuning["scores"], expected, rtol=1e-9, atol=1e-15)
    assert tuning["start"] == pytest.approx(half_sq * (1 + (1 - ALPHA) ** 2) / 2, rel=1e-12)
    # the kept trace is the winner's: θ0 is at the minimum from meta-step 1 on
    np.testing.assert_allclose(rec.records["maml"].meta_path[1:], 0.0, atol=1e-12)
    assert "random" not in rec.tuning  # it does not meta-learn: nothing to tune


def test_choose_prefers_the_lowest_finite_score_then_the_smaller_lr():
    assert choose([1e-3, 3e-3, 1e-2], [0.5, 0.2, 0.3]) == 1
    assert choose([1e-2, 1e-3, 3e-3], [0.2, 0.2, 0.9]) == 1  # a tie goes to the smaller lr
    assert choose([1e-3, 3e-3], [math.nan, 0.7]) == 1  # diverged (NaN) ranks last
    assert choose([3e-3, 1e-3], [math.nan, math.nan]) == 1  # nothing finite: the smallest lr


def small_sinusoid(**changes):
    data = {"family": "sinusoid", "family_options": {"hidden": [8, 8]},
            "learners": ["fomaml", "reptile", "random"], "heldout_tasks": 3,
            "inner": {"steps": 3, "lr": 0.01},
            "outer": {"meta_steps": 4, "meta_batch": 2, "eval_every": 2, "eval_tasks": 2,
                      "lr": 0.003}, "slices": {"kinds": ["pca"], "resolution": 5}}
    data.update(changes)
    return from_dict(data)


def test_the_sweep_never_looks_at_the_held_out_tasks():
    tuned = {"lr": "tune", "lr_grid": [1e-3, 1e-2], "tune_tasks": 3}
    base = small_sinusoid()
    a = train_and_record(replace(base, outer=dict(to_dict(base)["outer"], **tuned)))
    # other held-out tasks (more of them, another eval subset): the same sweep, to the bit
    b = train_and_record(replace(base, heldout_tasks=5,
                                 outer=dict(to_dict(base)["outer"], **tuned, eval_tasks=3)))
    assert a.tuning == b.tuning and set(a.tuning) == {"fomaml", "reptile"}
    family = make_family("sinusoid", {"hidden": (8, 8)})
    val = validation_tasks(family, base.seed, 3, "cpu", torch.float32)
    held = family.sample(base.seed, 5, "heldout")
    assert not np.isin(val.info["amplitude"].numpy(), held.info["amplitude"].numpy()).any()
    assert validation_seed(base.seed) != validation_seed(base.seed + 1)


def test_a_one_value_grid_gives_exactly_the_untuned_run():
    base = small_sinusoid()
    fixed = train_and_record(base)
    tuned = train_and_record(replace(base, **{"outer.lr": "tune", "outer.lr_grid": [0.003]}))
    for name, rec in fixed.records.items():
        other = tuned.records[name]
        np.testing.assert_array_equal(rec.meta_path, other.meta_path)
        np.testing.assert_array_equal(rec.eval_steps, other.eval_steps)
        for key in rec.evals:  # held-out curves recomputed from the kept path: the same values
            np.testing.assert_array_equal(rec.evals[key], other.evals[key])
        np.testing.assert_array_equal(rec.params, other.params)
    assert fixed.tuning == {} and tuned.tuning["reptile"]["chosen"] == 0.003


def test_tune_config_reads_checks_and_round_trips():
    config = from_dict({"outer": {"lr": "tune", "lr_grid": [1e-4, 1e-3], "tune_tasks": 4}})
    assert config.outer.tuned and config.outer.lr_grid == (1e-4, 1e-3)
    assert from_dict(to_dict(config)) == config and not from_dict({}).outer.tuned
    for bad, words in (({"lr": "tuned"}, "must be a number or 'tune'"),
                       ({"lr_grid": []}, "lr_grid"), ({"lr_grid": [1e-3, 1e-3]}, "twice"),
                       ({"lr_grid": [-1.0]}, "lr_grid"), ({"lr_grid": ["a"]}, "list of numbers"),
                       ({"tune_tasks": 0}, "tune_tasks")):
        with pytest.raises(ValueError, match=words):
            from_dict({"outer": bad})


def test_the_sweeps_time_estimate_grows_by_one_meta_training_per_grid_value():
    base = from_dict({"family": "sinusoid", "outer": {"lr": "tune", "lr_grid": [1e-3]}})
    sizes = budget.family_sizes("sinusoid", {})
    t = [budget.tune_seconds(replace(base, **{"outer.lr_grid": [1e-3 * (i + 1) for i in range(g)]}),
                             sizes) for g in (1, 2, 3)]
    assert 0 < t[0] < t[1] < t[2]
    assert t[2] - t[1] == pytest.approx(t[1] - t[0])
    fixed = replace(base, **{"outer.lr": 1e-3})
    meta_training = budget.estimate(fixed, sizes).seconds  # more than the meta-training alone
    assert t[1] - t[0] < meta_training and budget.tune_seconds(fixed, sizes) == 0.0


def test_the_cli_tunes_on_request_and_says_what_it_will_cost_first(tmp_path, capsys):
    from trajviz.cli.main import main
    from trajviz.store import list_runs, load_run

    tiny = ["--meta-steps", "2", "--set", "outer.meta_batch=2", "--set", "heldout_tasks=2",
            "--steps", "2", "--set", "slices.resolution=5", "--set", "outer.eval_tasks=2",
            "--learners", "leap,random", "--quiet", "--family", "linear2d"]
    assert main(["run", "--out", str(tmp_path), *tiny, "--tune-outer-lr",
                 "--set", "outer.lr_grid=[0.01,0.1]", "--set", "outer.tune_tasks=2"]) == 0
    err = capsys.readouterr().err
    assert "tuning the outer learning rate: 1 learner(s) x 2 values (0.01, 0.1), judged on 2 " \
           "validation tasks; about" in err
    run = load_run(list_runs(tmp_path)[0].path, heavy=False)
    assert run.config["outer"]["lr"] == "tune"
    assert run.info["tuning"]["leap"]["grid"] == [0.01, 0.1]
    assert run.info["tuning"]["leap"]["chosen"] in (0.01, 0.1)
    assert main(["run", "--out", str(tmp_path), *tiny, "--set", "outer.lr=\"tuned\""]) == 2
    assert "must be a number or 'tune'" in capsys.readouterr().err
