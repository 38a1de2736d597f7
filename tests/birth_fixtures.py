"""Small real runs: one WITH a birth map, for the birth-map view, app and browser tests,
and ``tiny`` configs for the birth-map, launch and what-if engine tests.

linear2d (2 parameters, so the exact slice hides nothing), a few meta-steps, and
``birth_map(..., grid=11, tasks=4)`` on its first view: built in seconds."""
from __future__ import annotations

from pathlib import Path

from trajviz.pipeline.birthmap import add_birth_map, birth_map
from trajviz.pipeline.experiment import run_experiment
from trajviz.spec.config import from_dict
from trajviz.store import load_run, write_run

CONFIG = {"family": "linear2d", "learners": ["leap", "random"],
          "inner": {"steps": 6, "lr": 0.1, "batch_size": 5},
          "outer": {"meta_steps": 4, "meta_batch": 3, "eval_every": 2, "eval_tasks": 2,
                    "lr": 0.01},
          "heldout_tasks": 4, "slices": {"kinds": ["exact", "pca"], "resolution": 21}, "seed": 3}


# What a learner record holds per held-out rollout, compared exactly when paths are reproduced.
RECORDED = ("params", "losses", "grads", "query_losses", "diverged_at")


def tiny(**changes):
    """A linear2d config with minibatches, two slices and two learners: a run in ~1 s."""
    data = {"family": "linear2d", "learners": ["leap", "random"],
            "inner": {"steps": 4, "lr": 0.1, "batch_size": 5},
            "outer": {"meta_steps": 3, "meta_batch": 3, "eval_every": 2, "eval_tasks": 2, "lr": 0.01},
            "heldout_tasks": 3, "slices": {"kinds": ["exact", "pca"], "resolution": 7}, "seed": 5}
    data.update(changes)
    return from_dict(data)


def make_birth_run(runs: Path, run_id: str = "birth-run") -> Path:
    """Write the run into ``runs`` with a birth map on its "exact" view; its folder."""
    path = write_run(run_experiment(from_dict(CONFIG), run_id=run_id), runs)
    add_birth_map(path, birth_map(load_run(path), "exact", grid=11, tasks=4))
    return path
