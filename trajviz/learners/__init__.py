"""Meta-learners, one file each, the registry naming them, and the shared outer loop."""
from __future__ import annotations

import dataclasses
from typing import Any

from .base import Learner, MetaGradient
from .fomaml import FOMAML
from .leap import Leap
from .maml import MAML
from .multitask import Multitask
from .outer import OUTER_OPTIMIZERS, MetaTrace, OuterSpec, meta_train, step_seed
from .random import RandomInit
from .reptile import Reptile

LEARNERS: dict[str, type] = {
    cls.name: cls for cls in (Leap, Reptile, FOMAML, MAML, Multitask, RandomInit)
}


def make_learner(name: str, options: dict[str, Any] | None = None) -> Learner:
    """A learner by name, with its options (e.g. ``leap`` with ``norm=False``)."""
    if name not in LEARNERS:
        raise ValueError(f"unknown learner {name!r}; accepted: {sorted(LEARNERS)}")
    cls = LEARNERS[name]
    options = dict(options or {})
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for learner {name!r}; accepted: {sorted(fields)}")
    for key, value in options.items():
        if not isinstance(value, bool):
            raise ValueError(f"learner {name!r} option {key!r} must be true or false, got {value!r}")
    return cls(**options)


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
    "RandomInit",
    "Reptile",
    "make_learner",
    "meta_train",
    "step_seed",
]
