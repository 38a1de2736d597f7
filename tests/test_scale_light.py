"""Every feature of the CLI and the Python API on a light run (light_fixtures.py): views
and figures, the birth map, click-to-launch (kept), what-if (kept), export, --init, and
the held-out paths recomputed on demand."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from light_fixtures import LIGHT, light_config, make_light_run

import trajviz
from trajviz.cli.main import main
from trajviz.data.run import run_is_light
from trajviz.figures.export import export_run
from trajviz.pipeline.experiment import run_experiment
from trajviz.pipeline.launch import keep, launch, launch_context, point_on_view
from trajviz.pipeline.whatif import keep_variant, whatif
from trajviz.store import load_run


@pytest.fixture(scope="module")
def light_path(tmp_path_factory) -> Path:
    return make_light_run(tmp_path_factory.mktemp("light"))


def _no_paths(record) -> None:
    assert record.params.shape[-1] == 0 and record.grads.shape[-1] == 0


def test_a_light_run_loads_and_draws(light_path):
    run = load_run(light_path, heavy=False)
    assert run_is_light(run) and run.info["record"]["policy"] == "light"
    fig = trajviz.figure(run, "surface")
    names = {t.name for t in fig.data}
    assert {"leap", "random"} <= names
    full = load_run(light_path)
    for rec in full.learners.values():
        _no_paths(rec)
        assert rec.theta0.shape == (97,)
    assert full.views["pca"].slice.basis.shape == (2, 97)
    assert set(full.birthmaps) == {"pca"}


def test_recomputed_paths_project_onto_the_stored_coords(light_path):
    """What the run drew is the projection of the paths recomputed on demand."""
    from trajviz.engine.slices import project

    run = load_run(light_path)
    view = run.views["pca"]
    for name, rec in run.learners.items():
        paths = trajviz.recompute_paths(run, name)
        assert paths.params.shape == (*rec.losses.shape, 97)
        np.testing.assert_array_equal(paths.losses, rec.losses)
        coords, residual = project(view.slice, paths.params)
        np.testing.assert_array_equal(coords, view.coords[name])
        np.testing.assert_array_equal(residual, view.residual[name])


def test_click_to_launch_and_keep_stay_light(light_path, tmp_path):
    import shutil

    path = Path(shutil.copytree(light_path, tmp_path / light_path.name))
    run = load_run(path)
    ctx = launch_context(run)
    assert ctx.light
    result = launch(ctx, point_on_view(ctx, "pca", 0.1, -0.2), name="click-1")
    _no_paths(result.record)
    assert result.views["pca"].coords.shape == (3, 6, 2)
    assert np.isfinite(result.views["pca"].coords).all()
    keep(path, result)
    back = load_run(path)
    assert "click-1" in back.learners and run_is_light(back)
    _no_paths(back.learners["click-1"])
    assert "click-1" in back.birthmaps["pca"].learners
    again = trajviz.recompute_paths(back, "click-1")
    np.testing.assert_array_equal(again.losses, back.learners["click-1"].losses)


def test_whatif_and_keep_stay_light(light_path, tmp_path):
    import shutil

    path = Path(shutil.copytree(light_path, tmp_path / light_path.name))
    run = load_run(path)
    same = whatif(run, {"lr": LIGHT["inner"]["lr"]})
    for name, rec in same.learners.items():
        _no_paths(rec)
        np.testing.assert_array_equal(rec.losses, run.learners[name].losses)
        # the same paths; projected in other row blocks, so equal to rounding
        np.testing.assert_allclose(same.views["pca"][name].coords, run.views["pca"].coords[name],
                                   rtol=1e-12, atol=1e-15)
    other = whatif(run, {"lr": 0.05}, name="lr-0.05")
    keep_variant(path, other)
    back = load_run(path)
    assert "lr-0.05" in back.inner_variants
    _no_paths(back.inner_variants["lr-0.05"].learners["leap"])


def test_export_of_a_light_run(light_path, tmp_path):
    written = export_run(load_run(light_path), tmp_path, "html", "all")
    assert written and all(p.stat().st_size > 1000 for p in written)


def test_cli_init_and_record_flag_on_a_light_run(light_path, tmp_path, capsys):
    run = load_run(light_path)
    names = run.info["param_names"]
    shapes = [tuple(s) for s in run.info["param_shapes"]]
    theta0, arrays, start = run.learners["leap"].theta0, {}, 0
    for name, shape in zip(names, shapes):
        size = int(np.prod(shape))
        arrays[name] = theta0[start:start + size].reshape(shape)
        start += size
    np.savez(tmp_path / "mine.npz", **arrays)
    out = tmp_path / "runs"
    args = ["run", "--out", str(out), "--family", "sinusoid", "--set", "family_options.hidden=[8,8]",
            "--learners", "random", "--meta-steps", "2", "--steps", "5", "--seed", "2",
            "--set", "heldout_tasks=3", "--set", "inner.lr=0.02", "--record", "light",
            "--init", f"mine={tmp_path / 'mine.npz'}", "--quiet"]
    assert main(args) == 0
    made = load_run(Path(capsys.readouterr().out.strip().splitlines()[-1]))
    assert run_is_light(made) and made.info["record"]["asked"] == "light"
    _no_paths(made.learners["mine"])
    # the same θ0 on the same tasks: the same held-out losses as the light run's leap
    np.testing.assert_array_equal(made.learners["mine"].losses, run.learners["leap"].losses)
    assert main([*args[:-2], "--record", "heavy"]) == 2


def test_auto_keeps_small_runs_full():
    run = run_experiment(light_config(record="auto"))
    assert run.info["record"]["policy"] == "full" and not run_is_light(run)
    assert run.learners["leap"].params.shape == (3, 6, 97)
