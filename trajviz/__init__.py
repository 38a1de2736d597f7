"""trajviz: watch how a model learns — Leap and baseline meta-learners on loss-surface slices.

Python API for notebooks::

    import trajviz
    run = trajviz.run_experiment(trajviz.config.from_dict({"family": "linear2d"}))
    run = trajviz.load_run("runs/<id>")
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
