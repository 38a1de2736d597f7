"""What every chunk of one grid job shares, in a form that travels light.

A ``ChunkContext`` holds the problem and the job's tensors (task data, the
plane, grid axes). In this process it is used as is. Pickled for a Dask
worker it becomes a ``ProblemRef`` (the family's name and options: a few
bytes) and the tensors as numpy arrays of their own elements (never a torch
view's whole storage); the worker rebuilds the problem from the reference
once (``ProblemRef.problem`` is cached per process) and the tensors once per
scattered copy. Rebuilding rather than shipping the problem by value matters
beyond size: a problem rebuilt from its family is the very same code as in
this process, so the fused evaluators that recognise its loss apply there too
and the numbers are bitwise the same. ``ship`` gives any context dataclass
with ``problem`` and ``ref`` fields the same treatment (``__reduce__``).
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from trajviz.problem.tasks import Problem, TaskFamily, make_family
from trajviz.spec.names import FAMILY_NAMES
from trajviz.spec.plugins import declaration, trust


@dataclass(frozen=True)
class ProblemRef:
    """A task family by registry name (``sinusoid``) or plugin (``pkg.mod:fn``) and its
    options, as hashable plain data: what a worker needs to rebuild the family's problem."""

    family: str
    options: tuple[tuple[str, Any], ...] = ()
    trusted: bool = False  # a plugin this process declared or trusted (trajviz.spec.plugins)

    @classmethod
    def of(cls, family: str, options: dict[str, Any] | None = None) -> ProblemRef:
        """From a config's ``family`` and ``family_options`` (lists become tuples). A plugin
        is checked here and named by its ``module:function``, trusted: a worker that
        rebuilds it got this reference from this process, which already checked it."""
        options_ = tuple(sorted((k, _frozen(v)) for k, v in (options or {}).items()))
        if family in FAMILY_NAMES:
            return cls(family, options_)
        return cls(declaration(family).spec, options_, trusted=True)

    def problem(self) -> Problem:
        """The family's problem, built once per process."""
        return _problem(self)


def _frozen(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    return value


@functools.lru_cache(maxsize=16)
def _problem(ref: ProblemRef) -> Problem:
    if ref.trusted:
        trust(ref.family)
    family: TaskFamily = make_family(ref.family, dict(ref.options))
    return family.problem()


@dataclass(frozen=True, eq=False)
class ChunkContext:
    """The shared input of a chunked job: ``problem``, ``tensors`` ({name: Tensor}, e.g. a
    support batch {key: [T, ...]} under ``batch.<key>``, an origin [P], a basis [2, P]) and
    ``options`` (small plain data). ``ref`` rebuilds the problem off this process; without
    one the problem is pickled by value (it works, but loses the fused evaluators there).
    """

    problem: Problem
    tensors: dict[str, Tensor]
    ref: ProblemRef | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def batch(self, prefix: str = "batch.") -> dict[str, Tensor]:
        """The tensors stored under ``prefix``, keyed by the rest of their name."""
        return {k[len(prefix):]: v for k, v in self.tensors.items() if k.startswith(prefix)}

    def __reduce__(self):
        return ship(self)


def ship(context: Any) -> tuple:
    """``__reduce__`` for any dataclass context with fields ``problem`` and ``ref``.

    The problem travels as its ``ref`` (when there is one) and every tensor, in
    the fields or nested in dicts, lists and plain dataclasses (a ``TaskSet``),
    as a numpy array of its own elements with its device's name.
    """
    fields = {f.name: getattr(context, f.name) for f in dataclasses.fields(context)}
    if fields.get("ref") is not None:
        fields["problem"] = None
    return _unship, (type(context), _pack(fields))


def _unship(cls: type, packed: dict[str, Any]) -> Any:
    """A context back from ``ship``, on whatever process unpickles it."""
    fields = _unpack(packed)
    if fields.get("problem") is None:
        fields["problem"] = fields["ref"].problem()
    return cls(**fields)


@dataclass(frozen=True)
class _Array:
    array: np.ndarray
    device: str


@dataclass(frozen=True)
class _Fields:
    cls: type
    fields: dict[str, Any]


def _pack(value: Any) -> Any:
    if isinstance(value, Tensor):
        return _Array(value.detach().cpu().numpy(), str(value.device))
    if isinstance(value, dict):
        return {k: _pack(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        return type(value)(_pack(v) for v in value)
    if (dataclasses.is_dataclass(value) and not isinstance(value, type)
            and type(value).__reduce__ is object.__reduce__
            and all(f.init for f in dataclasses.fields(value))):
        return _Fields(type(value), {f.name: _pack(getattr(value, f.name))
                                     for f in dataclasses.fields(value)})
    return value


def _unpack(value: Any) -> Any:
    if isinstance(value, _Array):
        array = value.array if value.array.flags.writeable else value.array.copy()
        return torch.from_numpy(array).to(value.device)  # read-only buffers are copied first
    if isinstance(value, dict):
        return {k: _unpack(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        return type(value)(_unpack(v) for v in value)
    if isinstance(value, _Fields):
        return value.cls(**{k: _unpack(v) for k, v in value.fields.items()})
    return value
