"""The torch-free name lists agree with the registries that hold the code."""
import dataclasses

from trajviz import names
from trajviz.learners import LEARNERS, OUTER_OPTIMIZERS
from trajviz.optim import OPTIMIZERS
from trajviz.slices import SLICE_KINDS
from trajviz.tasks import FAMILIES


def test_names_match_registries():
    assert names.LEARNER_NAMES == tuple(LEARNERS)
    assert names.FAMILY_NAMES == tuple(FAMILIES)
    assert names.SLICE_KINDS == tuple(SLICE_KINDS)
    assert names.INNER_OPTIMIZERS == tuple(OPTIMIZERS)
    assert names.OUTER_OPTIMIZERS == tuple(OUTER_OPTIMIZERS)


def test_learner_options_match_the_learners_fields():
    assert tuple(names.LEARNER_OPTIONS) == names.LEARNER_NAMES
    for name, cls in LEARNERS.items():
        assert names.LEARNER_OPTIONS[name] == tuple(f.name for f in dataclasses.fields(cls)), name
