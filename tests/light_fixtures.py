"""A small real LIGHT run (``record = "light"``: no held-out paths kept, docs/scale.md) with a
birth map, for the tests of every feature on a light run (test_scale_light.py,
test_browser_light.py).

A sinusoid MLP 1-8-8-1 (P = 97), leap and random, a pca view: built in seconds."""
from __future__ import annotations

from pathlib import Path

from trajviz.pipeline.birthmap import add_birth_map, birth_map
from trajviz.pipeline.experiment import run_experiment
from trajviz.spec.config import from_dict
from trajviz.store import load_run, write_run

LIGHT = {"family": "sinusoid", "family_options": {"hidden": [8, 8]}, "learners": ["leap", "random"],
         "record": "light", "inner": {"steps": 5, "lr": 0.02},
         "outer": {"meta_steps": 3, "meta_batch": 3, "eval_every": 2, "eval_tasks": 2},
         "heldout_tasks": 3, "slices": {"kinds": ["pca"], "resolution": 15}, "seed": 2}


def light_config(**changes):
    return from_dict({**LIGHT, **changes})


def make_light_run(runs: Path, run_id: str = "light-run", birth: bool = True) -> Path:
    """Write the light run into ``runs`` (with a birth map on its pca view); its folder."""
    path = write_run(run_experiment(light_config(), run_id=run_id), runs)
    if birth:
        add_birth_map(path, birth_map(load_run(path), "pca", grid=7, tasks=2))
    return path
