"""The one validation layer: every bad input is one line naming the key, the problem and
what is accepted, exit status 2 from the CLI, and nothing written; every size is bounded."""
from __future__ import annotations

import dataclasses
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trajviz.cli.main import build_parser, config_from_args, main
from trajviz.spec import budget
from trajviz.spec.config import (
    BOUNDS,
    FAMILY_OPTIONS,
    LEARNER_OPTIONS,
    ExperimentConfig,
    _get,
    family_options,
    from_dict,
    to_dict,
)

ROOT = Path(__file__).resolve().parents[1]
RE = "re:"  # a message given as a regular expression (estimates print computed numbers)

# (id, argv after `trajviz run --out RUNS --quiet`, config file text or None, the message)
BAD = [
    ('steps-1e9-flag', ['--steps', '1000000000'], None,
     "config key 'inner.steps' must be 1..5000, got 1000000000"),
    ('steps-above-bound', ['--steps', '5001'], None,
     "config key 'inner.steps' must be 1..5000, got 5001"),
    ('meta-steps-1e9-flag', ['--meta-steps', '1000000000'], None,
     "config key 'outer.meta_steps' must be 1..100000, got 1000000000"),
    ('meta-steps-zero-flag', ['--meta-steps', '0'], None,
     "config key 'outer.meta_steps' must be 1..100000, got 0"),
    ('meta-batch-1e9-float', ['--set', 'outer.meta_batch=1e9'], None,
     "config key 'outer.meta_batch' must be an integer, got 1000000000.0"),
    ('meta-batch-above-bound', ['--set', 'outer.meta_batch=1025'], None,
     "config key 'outer.meta_batch' must be 1..1024, got 1025"),
    ('eval-tasks-above-bound', ['--set', 'outer.eval_tasks=257'], None,
     "config key 'outer.eval_tasks' must be 1..256, got 257"),
    ('eval-every-zero', ['--set', 'outer.eval_every=0'], None,
     "config key 'outer.eval_every' must be 1..100000, got 0"),
    ('heldout-above-bound', ['--set', 'heldout_tasks=257'], None,
     "config key 'heldout_tasks' must be 1..256, got 257"),
    ('heldout-zero-toml', [], 'heldout_tasks = 0\n',
     "config key 'heldout_tasks' must be 1..256, got 0"),
    ('batch-size-above-bound', ['--set', 'inner.batch_size=10001'], None,
     "config key 'inner.batch_size' must be 0..10000, got 10001"),
    ('resolution-above-bound-toml', [], '[slices]\nresolution = 501\n',
     "config key 'slices.resolution' must be 2..500, got 501"),
    ('resolution-one', ['--set', 'slices.resolution=1'], None,
     "config key 'slices.resolution' must be 2..500, got 1"),
    ('meta-path-points-one', ['--set', 'meta_path_points=1'], None,
     "config key 'meta_path_points' must be 2..10001, got 1"),
    ('meta-path-points-above', ['--set', 'meta_path_points=10002'], None,
     "config key 'meta_path_points' must be 2..10001, got 10002"),
    ('seed-negative', ['--seed', '-1'], None,
     "config key 'seed' must be 0..9223372036854775807, got -1"),
    ('seed-huge', ['--set', 'seed=9223372036854775808'], None,
     "config key 'seed' must be 0..9223372036854775807, got 9223372036854775808"),
    ('inner-lr-inf-set', ['--set', 'inner.lr=inf'], None,
     "config key 'inner.lr' must be a finite number in (0, 1e+06], got inf"),
    ('inner-lr-nan-toml', [], '[inner]\nlr = nan\n',
     "config key 'inner.lr' must be a finite number in (0, 1e+06], got nan"),
    ('outer-lr-inf', ['--set', 'outer.lr=inf'], None,
     "config key 'outer.lr' must be a finite number in (0, 1e+06], got inf"),
    ('outer-lr-nan', ['--set', 'outer.lr=nan'], None,
     "config key 'outer.lr' must be a finite number in (0, 1e+06], got nan"),
    ('outer-lr-negative-inf', ['--set', 'outer.lr=-inf'], None,
     "config key 'outer.lr' must be a finite number in (0, 1e+06], got -inf"),
    ('inner-lr-huge', ['--set', 'inner.lr=1e7'], None,
     "config key 'inner.lr' must be a finite number in (0, 1e+06], got 10000000.0"),
    ('momentum-above-one', ['--set', 'inner.momentum=1.5'], None,
     "config key 'inner.momentum' must be a finite number in [0, 1], got 1.5"),
    ('beta2-nan', ['--set', 'inner.beta2=nan'], None,
     "config key 'inner.beta2' must be a finite number in [0, 1], got nan"),
    ('eps-zero', ['--set', 'inner.eps=0'], None,
     "config key 'inner.eps' must be a finite number in (0, 1], got 0.0"),
    ('margin-inf', ['--set', 'slices.margin=inf'], None,
     "config key 'slices.margin' must be a finite number in [0, 10], got inf"),
    ('learners-empty-flag', ['--learners', ''], None,
     "learners is empty; accepted: any of ['fomaml', 'leap', 'maml', 'multitask', 'random', 'reptile']"),
    ('learners-only-commas', ['--learners', ',,'], None,
     "learners is empty; accepted: any of ['fomaml', 'leap', 'maml', 'multitask', 'random', 'reptile']"),
    ('learners-empty-toml', [], 'learners = []\n',
     "learners is empty; accepted: any of ['fomaml', 'leap', 'maml', 'multitask', 'random', 'reptile']"),
    ('dim-100000', ['--family', 'quadratic', '--set', 'family_options={dim=100000}'], None,
     "family 'quadratic' option 'dim' must be an integer in 1..2000, got 100000"),
    ('hidden-100000', ['--set', 'family_options={hidden=[100000,100000]}'], None,
     "family 'sinusoid' option 'hidden' must be a list of 1 to 8 layer widths, each an integer in 1..4096, got [100000, 100000]"),
    ('hidden-nine-layers', ['--set', 'family_options={hidden=[8,8,8,8,8,8,8,8,8]}'], None,
     "family 'sinusoid' option 'hidden' must be a list of 1 to 8 layer widths, each an integer in 1..4096, got [8, 8, 8, 8, 8, 8, 8, 8, 8]"),
    ('hidden-empty', ['--set', 'family_options={hidden=[]}'], None,
     "family 'sinusoid' option 'hidden' must be a list of 1 to 8 layer widths, each an integer in 1..4096, got []"),
    ('hidden-not-list', ['--set', 'family_options={hidden=40}'], None,
     "family 'sinusoid' option 'hidden' must be a list of 1 to 8 layer widths, each an integer in 1..4096, got 40"),
    ('shots-above-bound-toml', [], '[family_options]\nshots = 10001\n',
     "family 'sinusoid' option 'shots' must be an integer in 1..10000, got 10001"),
    ('shots-float', ['--set', 'family_options={shots=2.5}'], None,
     "family 'sinusoid' option 'shots' must be an integer, got 2.5"),
    ('shots-string', ['--set', "family_options={shots='ten'}"], None,
     "family 'sinusoid' option 'shots' must be a number, got 'ten'"),
    ('sinusoid-unknown-option', ['--set', 'family_options={shot=3}'], None,
     "unknown option(s) ['shot'] for family 'sinusoid'; accepted: ['amplitude', 'hidden', 'phase', 'query_shots', 'shots', 'x_range']"),
    ('amplitude-inf', ['--set', 'family_options={amplitude=[0.1, inf]}'], None,
     "family 'sinusoid' option 'amplitude' must be a finite number in [-1e+12, 1e+12], got inf"),
    ('amplitude-reversed', ['--set', 'family_options={amplitude=[5.0, 0.1]}'], None,
     "family 'sinusoid' option 'amplitude' must have low <= high, got [5.0, 0.1]"),
    ('amplitude-three', ['--set', 'family_options={amplitude=[1, 2, 3]}'], None,
     "family 'sinusoid' option 'amplitude' must be a pair [low, high] of numbers, got [1, 2, 3]"),
    ('linear2d-noise-nan', ['--family', 'linear2d', '--set', 'family_options={noise=nan}'], None,
     "family 'linear2d' option 'noise' must be a finite number in [0, 1000], got nan"),
    ('linear2d-fixed-int', ['--family', 'linear2d', '--set', 'family_options={fixed=1}'], None,
     "family 'linear2d' option 'fixed' must be true or false, got 1"),
    ('quadratic-condition-below-one', ['--family', 'quadratic', '--set', 'family_options={condition=0.5}'], None,
     "family 'quadratic' option 'condition' must be a finite number in [1, 1e+12], got 0.5"),
    ('digits-ways-eleven', ['--family', 'digits', '--set', 'family_options={ways=11}'], None,
     "family 'digits' option 'ways' must be an integer in 2..10, got 11"),
    ('digits-hidden-huge', ['--family', 'digits', '--set', 'family_options={hidden=100000}'], None,
     "family 'digits' option 'hidden' must be an integer in 1..4096, got 100000"),
    ('digits-net-unknown', ['--family', 'digits', '--set', "family_options={net='resnet'}"], None,
     "family 'digits' option 'net': unknown value 'resnet'; accepted: ['conv', 'mlp']"),
    ('digits-shots-above', ['--family', 'digits', '--set', 'family_options={shots=117}'], None,
     "family 'digits' option 'shots' must be an integer in 1..116, got 117"),
    ('plugin-option-inf', ['--family', 'demos.plugin_example:make_family', '--trust-plugin', 'demos.plugin_example:make_family', '--set', 'family_options={noise=inf}'], None,
     "family_options of 'demos.plugin_example:make_family' holds inf; accepted: finite numbers"),
    ('learner-option-not-bool', [], "learners = ['leap']\n[learner_options.leap]\nnorm = 'yes'\n",
     "learner 'leap' option 'norm' must be true or false, got 'yes'"),
    ('learner-option-for-reptile', [], "learners = ['reptile']\n[learner_options.reptile]\nnorm = true\n",
     "unknown option(s) ['norm'] for learner 'reptile'; accepted: none"),
    ('budget-time', ['--meta-steps', '100000', '--steps', '5000'], None,
     RE + r"this run would take about [0-9.]+ days on this machine; the limit is 12 hours: make it smaller, or set allow_large = true \(--force\) if you mean it"),
    ('budget-memory-wide-mlp', ['--set', 'family_options={hidden=[4096,4096,4096,4096,4096,4096,4096,4096]}'], None,
     RE + r"this run would need about [0-9,]+ GiB of memory \(P = 117,481,473 parameters\); the limit on this machine is 16 GiB: make it smaller, or set allow_large = true \(--force\) if you mean it"),
    ('budget-memory-quadratic', ['--family', 'quadratic', '--set', 'family_options={dim=2000}', '--set', 'outer.meta_batch=1024', '--set', 'heldout_tasks=256'], None,
     RE + r"this run would need about [0-9,]+ GiB of memory \(P = 2,000 parameters\); the limit on this machine is 16 GiB: make it smaller, or set allow_large = true \(--force\) if you mean it"),
    ('budget-time-plugin', ['--family', 'demos.plugin_example:make_family', '--trust-plugin',
                            'demos.plugin_example:make_family', '--meta-steps', '100000',
                            '--steps', '5000'], None,
     RE + r"this run would take about [0-9.]+ days on this machine; the limit is 12 hours: make it smaller, or set allow_large = true \(--force\) if you mean it"),
    ('allow-large-not-bool', ['--set', 'allow_large=1'], None,
     "config key 'allow_large' must be true or false, got 1"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input_is_one_exact_line_exit_2_nothing_written(case, tmp_path, capsys):
    _, argv, toml, message = case
    runs = tmp_path / "runs"
    args = ["run", "--out", str(runs), "--quiet", *argv]
    if toml is not None:
        (tmp_path / "c.toml").write_text(toml)
        args += ["--config", str(tmp_path / "c.toml")]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    line = captured.err.rstrip("\n")
    assert "\n" not in line
    pattern = message[len(RE):] if message.startswith(RE) else re.escape(message)
    assert re.fullmatch("trajviz: error: " + pattern, line), line
    assert not runs.exists()


def test_the_library_raises_the_same_line_as_the_cli():
    with pytest.raises(ValueError, match=r"^config key 'outer.lr' must be a finite number in "
                                         r"\(0, 1e\+06\], got nan$"):
        from_dict({"outer": {"lr": math.nan}})
    with pytest.raises(ValueError, match=r"^config key 'inner.steps' must be 1..5000, got 0$"):
        from_dict({"inner": {"steps": 0}})


@pytest.mark.parametrize("key", sorted(BOUNDS))
def test_every_bound_is_inclusive(key):
    """The lowest and highest accepted values pass (the budget aside), one beyond fails."""
    low, high = BOUNDS[key]
    section, _, name = key.rpartition(".")

    def data(value):
        return {section: {name: value}, "allow_large": True} if section else \
            {name: value, "allow_large": True}
    for value in (low, high):
        assert _get(from_dict(data(value)), key) == value
    for value in (low - 1, high + 1):
        with pytest.raises(ValueError, match=re.escape(f"config key {key!r} must be {low}..{high}")):
            from_dict(data(value))


def test_force_sets_allow_large_and_lets_a_large_run_through():
    big = ["run", "--meta-steps", "100000", "--steps", "5000"]
    with pytest.raises(ValueError, match="would take about"):
        config_from_args(build_parser().parse_args(big))
    config = config_from_args(build_parser().parse_args([*big, "--force"]))
    assert config.allow_large and config.outer.meta_steps == 100_000
    assert budget.check(config, budget.family_sizes("sinusoid", {})).seconds > budget.TIME_LIMIT_S
    assert from_dict({**to_dict(config), "allow_large": False} | {"outer": {"meta_steps": 100}}) \
        .allow_large is False


def test_config_module_imports_without_torch():
    code = ("import sys, trajviz.spec.config, trajviz.spec.budget; "
            "trajviz.spec.config.demo_configs(); trajviz.spec.config.from_dict({'family': 'digits'}); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_family_option_table_matches_the_family_dataclasses():
    from trajviz.problem.tasks import FAMILIES
    for name, cls in FAMILIES.items():
        fields = {f.name: f.default for f in dataclasses.fields(cls)}
        assert set(FAMILY_OPTIONS[name]) == set(fields), name
        assert family_options(name, fields) == fields  # every default is accepted as it is


def test_learner_option_table_matches_the_learner_dataclasses():
    from trajviz.engine.learners import LEARNERS
    for name, cls in LEARNERS.items():
        fields = {f.name: f.default for f in dataclasses.fields(cls)}
        assert set(LEARNER_OPTIONS.get(name, ())) == set(fields), name
        assert all(isinstance(v, bool) for v in fields.values())


def test_family_options_are_resolved_to_their_types():
    config = from_dict({"family": "quadratic", "family_options": {"condition": 5, "dim": 3.0}})
    assert config.family_options == {"condition": 5.0, "dim": 3}
    assert type(config.family_options["dim"]) is int
    assert from_dict({"family_options": {"hidden": [8, 8]}}).family_options == {"hidden": (8, 8)}


@pytest.mark.parametrize("family, options", [
    ("sinusoid", {}), ("sinusoid", {"hidden": [7, 5, 3], "shots": 12, "query_shots": 4}),
    ("linear2d", {"shots": 9}), ("quadratic", {"dim": 17}),
    ("digits", {}), ("digits", {"net": "conv", "ways": 3, "shots": 2, "query_shots": 3}),
    ("digits", {"hidden": 9, "ways": 4}),
])
def test_budget_sizes_match_the_built_family(family, options):
    """The torch-free sizes the budget uses are those of the real model and tasks."""
    from trajviz.problem.tasks import make_family
    sizes = budget.family_sizes(family, family_options(family, options))
    built = make_family(family, options)
    one = built.sample(0, 1)
    assert sizes.param_count == built.problem().model.spec.size
    parts = (one.support,) if family == "quadratic" else (one.support, one.query)  # one bowl
    assert sizes.task_numel == sum(v[0].numel() for part in parts for v in part.values())
    assert sizes.samples == max(v.shape[1] for v in one.support.values() if v.dim() > 1) \
        or family == "quadratic"


def test_budget_estimate_adds_up_for_a_hand_sized_config():
    """One learner (random: no meta-training), 1 inner step, 1 meta-step, 1 task:
    memory = 4 bytes × (1·1·2·(2P+8) + 1·2·P + 3·numel + 8·2·P + 2·res²)."""
    config = from_dict({"family": "linear2d", "learners": ["random"], "heldout_tasks": 1,
                        "inner": {"steps": 1}, "slices": {"kinds": ["exact"], "resolution": 2},
                        "outer": {"meta_steps": 1, "meta_batch": 1, "eval_every": 1,
                                  "eval_tasks": 1}})
    sizes = budget.Sizes(param_count=2, task_numel=10, samples=4, act_per_sample=3)
    est = budget.estimate(config, sizes)
    assert est.memory_bytes == 4 * (2 * 12 + 2 * 2 + 3 * 10 + 8 * 2 * 2 + 2 * 4)
    # step batches: K+1 = 2 × (0 trained + 1 learner × (evals 3 + 1)); rollout steps:
    # 2 × (3 evals × 1 task + 1 task) = 8, each 4 samples × 6·max(2, 3) flops, plus the surface
    assert est.seconds == pytest.approx(8 * budget.SECONDS_PER_STEP
                                        + (8 * 4 * 18 + 4 * 1 * 4 * 18 / 3) / budget.FLOPS_PER_SECOND)


def test_budget_counts_a_run_time_birth_map():
    """A birth map adds grid² × tasks rollouts of K+1 steps per slice kind, in chunks of
    BIRTH_CHUNK_ENTRIES // (P · tasks) points; huge ones are refused in one line."""
    base = {"family": "linear2d", "learners": ["random"], "heldout_tasks": 4,
            "inner": {"steps": 1}, "slices": {"kinds": ["exact", "pca"], "resolution": 2},
            "outer": {"meta_steps": 1, "meta_batch": 1, "eval_every": 1, "eval_tasks": 1}}
    sizes = budget.Sizes(param_count=2, task_numel=10, samples=4, act_per_sample=3)
    without = budget.estimate(from_dict(base), sizes)
    birth = from_dict({**base, "birthmap": {"enabled": True, "grid": 5, "tasks": 3}})
    added = budget.estimate(birth, sizes).seconds - without.seconds
    # 2 kinds × 25 points × 3 tasks × 2 steps × 4 samples × 18 flops; one chunk per kind
    assert added == pytest.approx(2 * 25 * 3 * 2 * 4 * 18 / budget.FLOPS_PER_SECOND
                                  + 2 * 1 * 2 * budget.SECONDS_PER_STEP)
    assert budget.estimate(birth, sizes).memory_bytes == without.memory_bytes
    huge = {"family": "digits", "family_options": {"net": "conv"}, "heldout_tasks": 256,
            "slices": {"kinds": ["pca", "random"]}, "inner": {"steps": 100},
            "birthmap": {"enabled": True, "grid": 201, "tasks": 256}}
    with pytest.raises(ValueError, match=r"^this run would take about .* days"):
        from_dict(huge)
    small = from_dict({**huge, "birthmap": {"enabled": False}})
    assert budget.estimate(small, budget.family_sizes("digits", {"net": "conv"})).seconds \
        < budget.TIME_LIMIT_S


def test_defaults_are_valid_and_round_trip():
    config = ExperimentConfig()
    assert from_dict(to_dict(config)) == config
