"""The torch-free name lists agree with the registries that hold the code."""
from trajviz.engine.learners import LEARNERS, OUTER_OPTIMIZERS
from trajviz.engine.slices import SLICE_KINDS
from trajviz.problem.optim import OPTIMIZERS
from trajviz.problem.tasks import FAMILIES
from trajviz.spec import names


def test_names_match_registries():
    assert names.LEARNER_NAMES == tuple(LEARNERS)
    assert names.FAMILY_NAMES == tuple(FAMILIES)
    assert names.SLICE_KINDS == tuple(SLICE_KINDS)
    assert names.INNER_OPTIMIZERS == tuple(OPTIMIZERS)
    assert names.OUTER_OPTIMIZERS == tuple(OUTER_OPTIMIZERS)
