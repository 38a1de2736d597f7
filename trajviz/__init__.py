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
"""
__version__ = "0.1.0"

from . import config  # noqa: E402 - torch-free: configs are built and checked without the compute
__all__ = ["config", "figure", "load_run", "run_experiment", "save_figure"]


def run_experiment(config, **kwargs):
    """``trajviz.experiment.run_experiment`` (imported lazily: torch is heavy)."""
    from .experiment import run_experiment as _run
    return _run(config, **kwargs)


def load_run(path, **kwargs):
    """``trajviz.store.load_run``."""
    from .store import load_run as _load
    return _load(path, **kwargs)


def figure(run, what="surface", **kwargs):
    """``trajviz.api.figure``: the page's figures (and paper presets) from Python."""
    from .api import figure as _figure
    return _figure(run, what, **kwargs)


def save_figure(fig, path, dpi=300):
    """``trajviz.api.save``: PNG (with its DPI), SVG, PDF or standalone HTML."""
    from .api import save as _save
    return _save(fig, path, dpi)
