"""trajviz: watch how a model learns — Leap and baseline meta-learners on loss-surface slices.

Python API for notebooks::

    import trajviz
    run = trajviz.run_experiment(trajviz.config.from_dict({"family": "linear2d"}))
    run = trajviz.load_run("runs/<id>")
    bm = trajviz.birth_map(run, "pca", grid=41, tasks=8)     # a typed BirthMap
    result = trajviz.launch_at(run, theta0, name="mine")     # a Launch (paths on every view)
"""
__version__ = "0.1.0"


def run_experiment(config, **kwargs):
    """``trajviz.experiment.run_experiment`` (imported lazily: torch is heavy)."""
    from .experiment import run_experiment as _run
    return _run(config, **kwargs)


def load_run(path, **kwargs):
    """``trajviz.store.load_run``."""
    from .store import load_run as _load
    return _load(path, **kwargs)


def birth_map(run, view=None, **kwargs):
    """``trajviz.birthmap.birth_map``: the birth map of a run (loaded with heavy=True) on a view."""
    from .birthmap import birth_map as _birth_map
    return _birth_map(run, view, **kwargs)


def launch_at(run, theta0=None, *, view=None, point=None, name="launch"):
    """Held-out inner loops from ``theta0`` [P], or from ``point`` (a, b) on ``view``'s slice,
    run exactly as the run's learners were (``trajviz.launch``); returns a ``Launch``."""
    from .launch import launch as _launch
    from .launch import launch_context, point_on_view
    ctx = launch_context(run)
    if theta0 is None:
        if point is None:
            raise ValueError("launch needs theta0 [P] or a view and a point (a, b)")
        theta0 = point_on_view(ctx, view or next(iter(run.views)), *point)
    return _launch(ctx, theta0, name=name)
