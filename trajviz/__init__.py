"""trajviz: watch how a model learns — Leap and baseline meta-learners on loss-surface slices.

Python API for notebooks::

    import trajviz
    config = trajviz.config.from_dict({"family": "linear2d", "learners": ["leap", "random"],
                                       "outer": {"meta_steps": 20}})
    run = trajviz.run_experiment(config)
    print(run.info["summary"]["leap"]["length"])  # [mean, lo95, hi95] over held-out tasks

A saved run (a folder made by ``trajviz run``) reads back with
``trajviz.load_run("runs/<run id>")``. ``docs/architecture.md`` describes the
package; its vocabulary: a *run* is a saved experiment, a *rollout* one inner
loop from one θ0 on one task, a *job* background work, θ0 is ``theta0``.
``trajviz.birth_map(run, "pca")`` gives a typed ``BirthMap``;
``trajviz.launch_at(run, theta0)`` runs the held-out inner loops from any θ0
as the run's learners were run (a ``Launch``).
``trajviz.recompute_paths(run, "leap")`` gives a learner's held-out paths (params and
grads) of any run, light or full, bitwise as a full run records them (docs/scale.md).
``trajviz.whatif(run, {"lr": 0.02})`` reruns every learner's held-out paths
under other inner settings (an ``InnerVariant``; ``trajviz.pipeline.whatif``).
``@trajviz.task_family`` declares your own task family (docs/plugins.md).
``trajviz.show(run)`` shows the app itself inline in a notebook.
"""
from trajviz.spec import config  # noqa: E402 - torch-free: configs are built and checked without the compute
from trajviz.spec.plugins import task_family  # noqa: E402 - @trajviz.task_family declares a plugin
from trajviz.spec.version import VERSION as __version__

__all__ = ["config", "figure", "load_run", "run_experiment", "save_figure", "show", "task_family"]


def run_experiment(config, **kwargs):
    """``trajviz.pipeline.experiment.run_experiment`` (imported lazily: torch is heavy)."""
    from trajviz.pipeline.experiment import run_experiment as _run
    return _run(config, **kwargs)


def load_run(path, **kwargs):
    """``trajviz.store.load_run``."""
    from trajviz.store import load_run as _load
    return _load(path, **kwargs)


def show(run_or_folder="runs", **kwargs):
    """``trajviz.app.notebook.show``: the app inline in a notebook, for a Run (saved to a
    temporary runs folder first), a run folder or a runs folder; one server per kernel."""
    from trajviz.app.notebook import show as _show
    return _show(run_or_folder, **kwargs)


def figure(run, what="surface", **kwargs):
    """``trajviz.figures.api.figure``: the page's figures (and paper presets) from Python."""
    from trajviz.figures.api import figure as _figure
    return _figure(run, what, **kwargs)


def save_figure(fig, path, dpi=300):
    """``trajviz.figures.api.save``: PNG (with its DPI), SVG, PDF or standalone HTML."""
    from trajviz.figures.api import save as _save
    return _save(fig, path, dpi)


def birth_map(run, view=None, **kwargs):
    """``trajviz.pipeline.birthmap.birth_map``: the birth map of a run (loaded with heavy=True) on a view."""
    from trajviz.pipeline.birthmap import birth_map as _birth_map
    return _birth_map(run, view, **kwargs)


def launch_at(run, theta0=None, *, view=None, point=None, name="launch"):
    """Held-out inner loops from ``theta0`` [P], or from ``point`` (a, b) on ``view``'s slice,
    run exactly as the run's learners were (``trajviz.pipeline.launch``); returns a ``Launch``."""
    from trajviz.pipeline.launch import launch as _launch
    from trajviz.pipeline.launch import launch_context, point_on_view
    ctx = launch_context(run)
    if theta0 is None:
        if point is None:
            raise ValueError("launch needs theta0 [P] or a view and a point (a, b)")
        theta0 = point_on_view(ctx, view or next(iter(run.views)), *point)
    return _launch(ctx, theta0, name=name)


def whatif(run, inner_changes, learners=None, tasks=None, **kwargs):
    """``trajviz.pipeline.whatif.whatif``: every learner's held-out rollouts of ``run`` (loaded with
    heavy=True) rerun with ``inner_changes`` such as {"lr": 0.02}; an ``InnerVariant``."""
    from trajviz.pipeline.whatif import whatif as _whatif
    return _whatif(run, inner_changes, learners, tasks, **kwargs)


def recompute_paths(run, learner, tasks=None, progress=None):
    """``trajviz.pipeline.recompute.recompute_paths``: ``learner``'s held-out paths of ``run``
    (light or full) rerun from its θ0, bitwise as a full run records them."""
    from trajviz.pipeline.recompute import recompute_paths as _recompute
    return _recompute(run, learner, tasks, progress)
