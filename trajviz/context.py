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
and the numbers are bitwise the same.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .tasks import Problem, TaskFamily, make_family


@dataclass(frozen=True)
class ProblemRef:
    """A task family by registry name (``sinusoid``) or plugin (``pkg.mod:fn``) and its
    options, as hashable plain data: what a worker needs to rebuild the family's problem."""

    family: str
    options: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, family: str, options: dict[str, Any] | None = None) -> ProblemRef:
        """From a config's ``family`` and ``family_options`` (lists become tuples)."""
        return cls(family, tuple(sorted((k, _frozen(v)) for k, v in (options or {}).items())))

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
        arrays = {k: (v.detach().cpu().numpy(), str(v.device)) for k, v in self.tensors.items()}
        return _rebuild, (self.ref if self.ref is not None else self.problem, arrays, self.options)


def _rebuild(problem: Problem | ProblemRef, arrays: dict[str, tuple[np.ndarray, str]],
             options: dict[str, Any]) -> ChunkContext:
    """A ChunkContext back from its pickled form, on whatever process unpickles it."""
    ref = problem if isinstance(problem, ProblemRef) else None
    live = ref.problem() if ref is not None else problem
    tensors = {}
    for name, (array, device) in arrays.items():
        if not array.flags.writeable:  # received into a read-only buffer
            array = array.copy()
        tensors[name] = torch.from_numpy(array).to(device)
    return ChunkContext(live, tensors, ref, options)
