"""The executor seam without a cluster: scheduler strings, the in-process executor, and what
a chunk job ships (a ProblemRef and numpy, never a torch view's storage)."""
from __future__ import annotations

import copy
import pickle
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from trajviz.engine import surface
from trajviz.engine.context import ChunkContext, ProblemRef, ship
from trajviz.engine.executors import (
    IN_PROCESS,
    Scheduler,
    make_executor,
    parse_scheduler,
    using,
)
from trajviz.engine.slices import Slice
from trajviz.engine.surface import GridChunk, evaluate_surface
from trajviz.engine.work import Work
from trajviz.kernels import mlp_plan
from trajviz.problem.batches import Rollouts
from trajviz.problem.models import flatten
from trajviz.problem.tasks import TaskSet, make_family


@pytest.mark.parametrize(("text", "want"), [
    (None, Scheduler("in-process")), ("", Scheduler("in-process")),
    ("in-process", Scheduler("in-process")), ("local-dask", Scheduler("local-dask")),
    ("local-dask:3", Scheduler("local-dask", workers=3)),
    (" tcp://10.0.0.5:8786 ", Scheduler("tcp", address="tcp://10.0.0.5:8786")),
    ("tcp://[::1]:8786", Scheduler("tcp", address="tcp://[::1]:8786")),
])
def test_scheduler_strings(text, want):
    assert parse_scheduler(text) == want


@pytest.mark.parametrize(("text", "names"), [
    ("local-dask:0", "N must be"), ("local-dask:two", "N must be"), ("local-dask:", "N must be"),
    ("tcp://host", "needs a host and a port"), ("tcp://:8786", "needs a host and a port"),
    ("tcp://h:70000", "needs a host and a port"), ("udp://h:1", "unknown scheduler"),
    ("dask", "unknown scheduler"), (3, "must be a string"),
])
def test_bad_scheduler_strings_say_what_is_accepted_in_one_line(text, names):
    with pytest.raises(ValueError) as err:
        parse_scheduler(text)
    message = str(err.value)
    assert names in message and "local-dask[:N]" in message and "\n" not in message


def test_in_process_map_keeps_order_and_reports_every_chunk():
    calls = []
    out = IN_PROCESS.map(lambda ctx, c: ctx * c, 10, [3, 1, 2],
                         progress=lambda done, total: calls.append((done, total)))
    assert out == [30, 10, 20] and calls == [(1, 3), (2, 3), (3, 3)]


def test_using_makes_in_process_for_none_and_passes_objects_through():
    with using(None) as ex, make_executor("in-process") as ex2:
        assert ex is IN_PROCESS and ex2 is IN_PROCESS
    mine = type("Mine", (), {"map": lambda self, *a, **k: []})()
    with using(mine) as ex:
        assert ex is mine
    with pytest.raises(ValueError, match="map"), using(object()):
        pass


def test_problem_ref_rebuilds_the_family_problem_once_per_process():
    ref = ProblemRef.of("sinusoid", {"hidden": [8, 8], "shots": 4})
    assert ref == ProblemRef("sinusoid", (("hidden", (8, 8)), ("shots", 4)))
    problem = ref.problem()
    assert problem is ref.problem() and problem.model.spec.size == 1 * 8 + 8 + 8 * 8 + 8 + 8 + 1


def test_a_pickled_context_carries_the_reference_and_only_its_views_elements():
    ref = ProblemRef.of("sinusoid", {"hidden": (8, 8)})
    big = torch.arange(1_000_000, dtype=torch.float64)
    view = big[10:13]  # pickling the tensor itself would carry all 8 MB of its storage
    context = ChunkContext(ref.problem(), {"origin": view}, ref, {"method": "auto"})
    data = pickle.dumps(context)
    assert len(data) < 2_000
    back = copy.deepcopy(context)  # rebuilt through the same __reduce__ a pickle uses
    assert back.problem is ref.problem() and back.ref == ref and back.options == {"method": "auto"}
    assert back.tensors["origin"].tolist() == [10.0, 11.0, 12.0]
    # the rebuilt problem is the family's own code, so the fused MLP evaluator still applies
    assert mlp_plan.mlp_plan(back.problem) is not None


@dataclass(frozen=True)
class BirthLikeContext:
    """A context of another shape: a TaskSet, a bare tensor, plain numbers."""

    problem: object
    tasks: TaskSet
    origin: torch.Tensor
    seed: int
    ref: ProblemRef | None = None

    def __reduce__(self):
        return ship(self)


def test_ship_packs_any_dataclass_context_by_reference_and_numpy():
    ref = ProblemRef.of("sinusoid", {"hidden": (8, 8)})
    tasks = make_family("sinusoid", {"hidden": (8, 8)}).sample(0, 3)
    big = torch.zeros(1_000_000)
    context = BirthLikeContext(ref.problem(), tasks, big[:5] + 1, 7, ref)
    data = pickle.dumps(context)
    assert len(data) < 6_000  # three tasks' data, five numbers; no storage, no model
    back = copy.deepcopy(context)  # rebuilt through the same __reduce__ a pickle uses
    assert back.problem is ref.problem() and back.seed == 7 and back.origin.tolist() == [1.0] * 5
    assert isinstance(back.tasks, TaskSet) and back.tasks.minibatchable == tasks.minibatchable
    for name in ("support", "query", "info"):
        for key, value in getattr(tasks, name).items():
            assert torch.equal(getattr(back.tasks, name)[key], value)
    assert torch.equal(back.tasks.ids, tasks.ids)


class Shipping:
    """An executor that does what a remote one does to the work (pickle the context once and
    every chunk and result) and runs the chunks backwards, to catch order mistakes."""

    def __init__(self):
        self.chunk_bytes: list[int] = []

    def map(self, fn, context, chunks, *, progress=None):
        self.context_bytes = len(pickle.dumps(context))
        shipped = copy.deepcopy(context)  # rebuilt through __reduce__, as on a worker
        out = {}
        for i in reversed(range(len(chunks))):
            data = pickle.dumps(chunks[i])
            self.chunk_bytes.append(len(data))
            out[i] = copy.deepcopy(fn(shipped, copy.deepcopy(chunks[i])))
            if progress is not None:
                progress(len(out), len(chunks))
        return [out[i] for i in range(len(chunks))]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_shipped_surface_is_bitwise_the_in_process_one(dtype):
    options = {"hidden": (16, 16), "shots": 7}
    ref = ProblemRef.of("sinusoid", options)
    problem, tasks = ref.problem(), make_family("sinusoid", options).sample(1, 3)
    spec = problem.model.spec
    origin = flatten(problem.model.init(0), spec).double().numpy()
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(spec.size, 2)))[0].T
    slc = Slice("random", origin, basis, np.full(2, np.nan), (-1.0, 2.0, -0.5, 0.5))
    here = evaluate_surface(problem, slc, tasks.to("cpu", dtype), (9, 8), work=Work(chunk=10))
    ship = Shipping()
    calls = []
    there = evaluate_surface(problem, slc, tasks.to("cpu", dtype), (9, 8),
                             work=Work(ship, lambda done, total: calls.append((done, total)),
                                       ref, 10))
    assert np.array_equal(here.loss, there.loss) and np.array_equal(here.mean, there.mean)
    assert here.loss.dtype == there.loss.dtype == np.dtype(str(dtype).removeprefix("torch."))
    assert len(ship.chunk_bytes) == 8 and max(ship.chunk_bytes) < 200  # index ranges only
    assert calls[-1] == (72, 72) and [d for d, _ in calls] == sorted(d for d, _ in calls)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_shipped_sharpness_diagnostics_are_bitwise_the_in_process_ones(dtype):
    from trajviz.engine.diagnostics import DiagnosticsSpec, path_diagnostics
    from trajviz.engine.inner import InnerSpec, inner_loop
    from trajviz.problem.optim import make_optimizer

    options = {"hidden": (8, 8), "shots": 5}
    ref = ProblemRef.of("sinusoid", options)
    problem, tasks = ref.problem(), make_family("sinusoid", options).sample(3, 3)
    tasks = tasks.to("cpu", dtype)
    spec = InnerSpec(make_optimizer("adam", lr=0.01), steps=4)
    theta0 = {k: v.to(dtype) for k, v in problem.model.init(0).items()}
    traj = inner_loop(Rollouts(problem, tasks, spec, 2), theta0, record=True).trajectory
    dspec = DiagnosticsSpec(iters=5, chunk_bytes=6000)  # a few points per chunk
    here = path_diagnostics(Rollouts(problem, tasks, spec, 2), traj, dspec)
    ship = Shipping()
    there = path_diagnostics(Rollouts(problem, tasks, spec, 2), traj, dspec, Work(ship, ref=ref))
    from trajviz.engine.curvature_path import CURVATURE_NAMES, SPECTRUM_NAMES
    assert set(here.values) == {"grad_norm", "update_norm", "sharpness", "preconditioned_sharpness",
                                *CURVATURE_NAMES, *SPECTRUM_NAMES, "straight_loss"}
    for name, value in here.values.items():
        assert np.array_equal(value, there.values[name], equal_nan=True), name
    assert np.isfinite(here.values["sharpness"]).all() and here.values["sharpness"].shape == (3, 5)
    # two sharpness kinds, several chunks each; chunks are index ranges, results in order
    assert len(ship.chunk_bytes) >= 4 and max(ship.chunk_bytes) < 100


def test_grid_chunk_points_follow_the_row_major_grid():
    ref = ProblemRef.of("linear2d")
    problem = ref.problem()
    tensors = {"origin": torch.zeros(2, dtype=torch.float64), "basis": torch.eye(2).double(),
               "alpha": torch.tensor([0.0, 1.0, 2.0]).double(), "beta": torch.tensor([5.0, 7.0]).double(),
               "batch.x": torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]).double(),
               "batch.y": torch.zeros(1, 2, 1, dtype=torch.float64)}
    context = ChunkContext(problem, tensors, ref, {"backend": "plain"})
    got = surface.surface_chunk(context, GridChunk(2, 5))  # points (2, 5), (0, 7), (1, 7)
    # linear2d: y = x·w, so with x = I and y = 0 the loss is the mean of w²
    want = np.array([[(4 + 25) / 2], [(0 + 49) / 2], [(1 + 49) / 2]])
    np.testing.assert_allclose(got, want, rtol=1e-12)
