"""The names of every registered thing, without importing any of it (no torch).

The data side (config validation, store, figures, app) needs the accepted
names to offer and check them; the registries that map these names to code
live beside the code (``learners.LEARNERS``, ``tasks.FAMILIES``,
``optim.OPTIMIZERS``, ``learners.OUTER_OPTIMIZERS``) and a test keeps the
two in step.
"""
from __future__ import annotations

LEARNER_NAMES = ("leap", "reptile", "fomaml", "maml", "multitask", "random")
FAMILY_NAMES = ("sinusoid", "linear2d", "quadratic", "digits")
SLICE_KINDS = ("pca", "exact", "three_point", "random", "hessian")
INNER_OPTIMIZERS = ("sgd", "momentum", "adam")
OUTER_OPTIMIZERS = ("adam", "sgd")
# Per-rollout statistics of a birth map (names as in ``metrics.PATH_METRICS``); lower is faster.
BIRTH_STATISTICS = ("length", "param_length", "steps_to_eps", "auc", "final_loss")
