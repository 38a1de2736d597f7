"""Learner variants: named, validated, run and stored as learners; leap-energy-noloss is Reptile."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from trajviz.cli.main import main
from trajviz.engine.learners import Leap, Reptile, make_learner, step_seed
from trajviz.pipeline.experiment import run_experiment, train_and_record
from trajviz.pipeline.heldout import inner_spec
from trajviz.problem.tasks import make_family
from trajviz.spec.config import ExperimentConfig, from_dict, load_toml, replace, to_dict, validate
from trajviz.spec.learner_variants import PREDEFINED, Variant, learner_specs
from trajviz.store import load_run, write_run

TINY = {"inner": {"steps": 3, "lr": 0.1}, "heldout_tasks": 2, "meta_path_points": 5,
        "outer": {"meta_steps": 4, "meta_batch": 2, "eval_every": 2, "eval_tasks": 2, "lr": 0.05},
        "slices": {"kinds": ["exact"], "resolution": 5}, "family": "linear2d"}


def test_predefined_variants_are_the_six_meaningful_leap_switches():
    """norm × loss × stabilizer, the stabilizer only with the loss: 2 × 3 = 6 with leap itself."""
    def switches(options):
        s = {**{f: True for f in ("norm", "loss", "stabilizer")}, **options}
        return (s["norm"], s["loss"], s["stabilizer"] and s["loss"])
    combos = {switches(v.options) for v in PREDEFINED.values()} | {switches({})}
    assert len(combos) == 6 == len(PREDEFINED) + 1
    assert PREDEFINED["leap-energy-noloss"].options == {"norm": False, "loss": False}
    assert all(v.base == "leap" for v in PREDEFINED.values())


def test_predefined_names_resolve_into_the_config_and_round_trip():
    c = from_dict({"learners": ["leap", "leap-energy", "reptile"]})
    assert c.variants == (Variant("leap-energy", "leap", {"norm": False}),)
    data = to_dict(c)
    assert data["variants"] == [{"name": "leap-energy", "base": "leap", "options": {"norm": False}}]
    assert from_dict(data) == c
    assert replace(c, seed=3).variants == c.variants
    specs = learner_specs(c.learners, c.variants, {"leap": {"stabilizer": False}})
    assert [(v.name, v.base, v.options) for v in specs] == [
        ("leap", "leap", {"stabilizer": False}), ("leap-energy", "leap", {"norm": False}),
        ("reptile", "reptile", {})]


def test_old_configs_resolve_unchanged():
    c = from_dict({"learners": ["leap", "reptile"], "learner_options": {"leap": {"norm": False}}})
    assert c.variants == ()
    assert [make_learner(v.base, v.options) for v in learner_specs(c.learners, c.variants, c.learner_options)] \
        == [Leap(norm=False), Reptile()]
    assert ExperimentConfig().variants == ()


def test_variants_from_toml(tmp_path):
    path = tmp_path / "v.toml"
    path.write_text('learners = ["leap", "leap-nostab", "calm"]\n'
                    '[[variants]]\nname = "calm"\nbase = "leap"\noptions = { stabilizer = false, norm = false }\n')
    c = load_toml(path)
    assert c.variants == (Variant("leap-nostab", "leap", {"stabilizer": False}),
                          Variant("calm", "leap", {"stabilizer": False, "norm": False}))


def test_a_defined_variant_overrides_the_predefined_one_of_its_name():
    c = from_dict({"learners": ["leap-energy"],
                   "variants": [{"name": "leap-energy", "base": "leap", "options": {"norm": False, "loss": False}}]})
    assert c.variants[0].options == {"norm": False, "loss": False}


BAD = [
    ("clash-with-base", ["leap"], [{"name": "leap", "base": "reptile"}],
     "variant name 'leap' clashes with the learner 'leap'"),
    ("defined-twice", ["x"], [{"name": "x", "base": "leap"}, {"name": "x", "base": "reptile"}],
     "variant name 'x' is defined twice"),
    ("unknown-base", ["x"], [{"name": "x", "base": "leapp"}], "variant 'x': unknown base learner 'leapp'"),
    ("unknown-option", ["x"], [{"name": "x", "base": "leap", "options": {"nrom": False}}],
     "variant 'x': unknown option(s) ['nrom'] for base 'leap'; accepted: ['loss', 'norm', 'stabilizer']"),
    ("option-for-optionless-base", ["x"], [{"name": "x", "base": "reptile", "options": {"norm": False}}],
     "for base 'reptile'; accepted: none"),
    ("non-bool-option", ["x"], [{"name": "x", "base": "leap", "options": {"norm": 0}}],
     "option 'norm' must be true or false"),
    ("bad-name", ["final:x"], [{"name": "final:x", "base": "leap"}], "variant name 'final:x' is not accepted"),
    ("unlisted", ["leap"], [{"name": "x", "base": "leap"}], "variant(s) ['x'] are defined but not listed"),
    ("unknown-learner", ["leap-nonorm"], [], "unknown learner(s) ['leap-nonorm']"),
    ("stray-key", ["x"], [{"name": "x", "base": "leap", "opts": {}}], "variants[0] has unknown key(s) ['opts']"),
    ("not-a-list", ["leap"], {"name": "x"}, "config key 'variants' must be a list of tables"),
    ("listed-twice", ["leap-energy", "leap-energy"], [], "learners lists a name twice"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_variants_are_one_clear_line(case):
    _, learners, variants, message = case
    with pytest.raises(ValueError) as err:
        from_dict({"learners": learners, "variants": variants})
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_validate_checks_a_directly_built_config():
    bad = ExperimentConfig(learners=("leap", "x"), variants=(Variant("x", "maml", {"norm": True}),))
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['norm'\] for base 'maml'"):
        validate(bad)
    validate(ExperimentConfig(learners=("leap", "leap-noloss")))  # predefined names need no entry


@pytest.mark.parametrize("argv, needle", [
    (["--learners", "leap,leap-nonorm"], "unknown learner(s) ['leap-nonorm']"),
    (["--learners", "leap,x", "--set", "variants=[{name='x', base='maml2'}]"], "unknown base learner 'maml2'"),
    (["--learners", "x", "--set", "variants=[{name='x', base='leap', options={nrom=false}}]"], "['nrom']"),
    (["--learners", "leap", "--set", "variants=[{name='leap', base='reptile'}]"], "clashes"),
], ids=["unknown-name", "unknown-base", "unknown-option", "clash"])
def test_cli_refuses_bad_variants_with_exit_2(argv, needle, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["run", "--out", str(out), "--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("trajviz: error:") and needle in err, err
    assert not out.exists()


def test_cli_learners_flag_selects_among_the_configs_variants(tmp_path, capsys):
    """--learners picks a subset of a config that defines variants: the others are dropped, not an error."""
    path = tmp_path / "c.toml"
    path.write_text('learners = ["leap", "calm"]\n[[variants]]\nname = "calm"\nbase = "leap"\n'
                    'options = { stabilizer = false }\n')
    out = tmp_path / "runs"
    argv = ["run", "--config", str(path), "--out", str(out), "--quiet", "--family", "linear2d",
            "--meta-steps", "2", "--steps", "2", "--set", "outer.meta_batch=2", "--set", "heldout_tasks=2",
            "--set", "outer.eval_tasks=2", "--set", "slices.resolution=5"]
    assert main([*argv, "--learners", "leap,leap-energy"]) == 0
    run = load_run(capsys.readouterr().out.strip())
    assert list(run.learners) == ["leap", "leap-energy"]
    assert run.config["variants"] == [{"name": "leap-energy", "base": "leap", "options": {"norm": False}}]


def test_a_run_with_variants_round_trips_through_the_store(tmp_path):
    config = from_dict({**TINY, "learners": ["leap", "leap-energy", "twin", "reptile"],
                        "variants": [{"name": "twin", "base": "leap", "options": {"norm": True}}]})
    run = run_experiment(config, run_id="variants")
    back = load_run(write_run(run, tmp_path))
    assert list(back.learners) == ["leap", "leap-energy", "twin", "reptile"]
    assert [r.name for r in back.learners.values()] == list(back.learners)
    assert from_dict(back.config) == config
    assert set(back.info["summary"]) == set(back.learners)
    assert set(back.views["exact"].coords) == set(back.learners)
    for name, rec in run.learners.items():
        got = back.learners[name]
        np.testing.assert_array_equal(got.theta0, rec.theta0)
        np.testing.assert_array_equal(got.meta_path, rec.meta_path)
        for k, v in rec.evals.items():
            np.testing.assert_array_equal(got.evals[k], v)
    # a variant with the base's own options is the base, bit for bit; a different switch is not
    np.testing.assert_array_equal(back.learners["twin"].meta_path, back.learners["leap"].meta_path)
    assert not np.array_equal(back.learners["leap-energy"].theta0, back.learners["leap"].theta0)


@pytest.mark.parametrize("family", ["sinusoid", "linear2d"])
def test_leap_energy_noloss_is_reptile_in_float32(family):
    """Σ_i −Δθ_i telescopes to θ_0 − θ_K, and Leap takes it whole: the same meta-gradients and
    θ0 path as Reptile, bitwise in float32 (an Adam outer loop would amplify any rounding)."""
    config = from_dict({"family": family, "learners": ["reptile", "leap-energy-noloss"],
                        "inner": {"steps": 5, "lr": 0.02}, "heldout_tasks": 2, "meta_path_points": 21,
                        "outer": {"meta_steps": 20, "meta_batch": 4, "eval_every": 5, "eval_tasks": 2,
                                  "lr": 0.01}})
    fam = make_family(family)
    problem, spec = fam.problem(), inner_spec(config.inner)
    theta0 = problem.model.init(0)
    tasks = fam.sample(step_seed(0, 0), 4, "train")
    learners = {v.name: make_learner(v.base, v.options)
                for v in learner_specs(config.learners, config.variants, config.learner_options)}
    assert learners["leap-energy-noloss"] == Leap(norm=False, loss=False)
    want = learners["reptile"].meta_gradient(problem, theta0, tasks, spec, 3).grad
    got = learners["leap-energy-noloss"].meta_gradient(problem, theta0, tasks, spec, 3).grad
    for k in want:
        assert want[k].dtype == torch.float32
        assert torch.equal(got[k], want[k])
    assert max(float(v.abs().max()) for v in want.values()) > 1e-2
    rec = train_and_record(config).records
    a, b = rec["reptile"], rec["leap-energy-noloss"]
    assert a.meta_path.shape == (21, problem.model.spec.size) and a.meta_path.dtype == np.float32
    np.testing.assert_array_equal(b.meta_path, a.meta_path)
    assert np.abs(a.meta_path[-1] - a.meta_path[0]).max() > 0.05  # θ0 did move


def test_ablation_config_and_demo_helpers():
    import importlib.util
    from pathlib import Path
    root = Path(__file__).resolve().parents[1] / "demos"
    config = load_toml(root / "leap_ablation.toml")
    assert {v.name: v for v in config.variants} == {n: PREDEFINED[n] for n in PREDEFINED}
    spec = importlib.util.spec_from_file_location("leap_ablation", root / "leap_ablation.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    assert demo.VARIANTS == ("leap", *PREDEFINED) and len(demo.VARIANTS) == 6
    steps = np.array([0, 5, 10, 15, 20])
    # final 2.0: the band is [1.8, 2.2]; 2.1 at step 10 is the first inside (1.5 at 15 is outside again)
    assert demo.steps_within(steps, np.array([5.0, 3.0, 2.1, 1.5, 2.0])) == 10
    assert demo.steps_within(steps, np.array([2.0, 9.0, 9.0, 9.0, 2.0])) == 0
    assert np.isnan(demo.steps_within(steps, np.array([1.0, 1.0, 1.0, 1.0, np.nan])))


def test_learner_options_of_a_variant_are_its_base_learners_options():
    c = from_dict({"learners": ["leap-energy"], "learner_options": {"leap-energy": {"stabilizer": False}}})
    assert learner_specs(c.learners, c.variants, c.learner_options)[0].options == {"norm": False, "stabilizer": False}
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['first_order'\] for learner 'leap-energy'"):
        from_dict({"learners": ["leap-energy"], "learner_options": {"leap-energy": {"first_order": True}}})


def test_every_learner_and_predefined_variant_has_its_own_colour():
    from trajviz.spec.learner_variants import PREDEFINED
    from trajviz.spec.names import LEARNER_NAMES
    from trajviz.viewmodel.palette import learner_colour
    names = [*LEARNER_NAMES, *PREDEFINED]
    colours = [learner_colour(n) for n in names]
    assert len(set(colours)) == len(names)
