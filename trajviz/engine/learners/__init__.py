"""Meta-learners, one file each, the registry naming them, and the shared outer loop."""
from __future__ import annotations

from typing import Any

from trajviz.engine.learners.base import Learner, MetaGradient
from trajviz.engine.learners.fomaml import FOMAML
from trajviz.engine.learners.leap import Leap
from trajviz.engine.learners.maml import MAML
from trajviz.engine.learners.multitask import Multitask
from trajviz.engine.learners.outer import (
    OUTER_OPTIMIZERS,
    MetaTrace,
    OuterSpec,
    Training,
    meta_train,
    step_seed,
)
from trajviz.engine.learners.random import RandomInit
from trajviz.engine.learners.reptile import Reptile

LEARNERS: dict[str, type] = {
    cls.name: cls for cls in (Leap, Reptile, FOMAML, MAML, Multitask, RandomInit)
}


def make_learner(name: str, options: dict[str, Any] | None = None) -> Learner:
    """A learner by name, with its options (e.g. ``leap`` with ``norm=False``), checked by
    ``trajviz.spec.config`` (``LEARNER_OPTIONS``) before they get here."""
    if name not in LEARNERS:
        raise ValueError(f"unknown learner {name!r}; accepted: {sorted(LEARNERS)}")
    return LEARNERS[name](**(options or {}))


__all__ = [
    "FOMAML",
    "LEARNERS",
    "MAML",
    "OUTER_OPTIMIZERS",
    "Leap",
    "Learner",
    "MetaGradient",
    "MetaTrace",
    "Multitask",
    "OuterSpec",
    "Training",
    "RandomInit",
    "Reptile",
    "make_learner",
    "meta_train",
    "step_seed",
]
