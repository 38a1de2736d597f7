"""Streaming record of held-out rollouts: chunks of tasks, a scratch file, running results.

A learner's held-out rollouts are recorded ``RecordPlan.chunk_tasks`` tasks at a time
(``spec.budget.record_plan``): each chunk's path metrics, running metrics and per-step
diagnostics are computed at once, its points are appended to a scratch file
(``PathScratch``) and its [c, K+1, P] tensors are dropped. Slices are then fitted and
paths projected from the scratch file, column block by column block (``ScratchRows``,
which ``engine.slices`` reads like an array), so peak memory is O(P × chunk), never
[L, T, K+1, P]. A full run reads its paths back at the end; a light run keeps none
(``recompute.py`` rebuilds them bitwise from θ0 + tasks + config).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Self

import numpy as np
import torch

from trajviz.data.run import LearnerRecord
from trajviz.engine.diagnostics import Diagnostics, good_points
from trajviz.engine.inner import Rollouts, Trajectory, inner_loop, rollouts_per_chunk
from trajviz.engine.metrics import path_metrics, running_metrics
from trajviz.problem.models import Params, batch_shape
from trajviz.problem.tasks import Problem
from trajviz.spec import budget


class ScratchRows:
    """Rows of a scratch file seen as a read-only [..., P] array (``engine.slices`` duck type).

    ``rows``: int64 indices of the file rows, in order; ``shape``: the leading shape of
    those rows plus (P,). ``x[:, cols]`` (2-D only) reads one column block of every row;
    ``x[a:b]`` reads whole rows. Reads go through ``os.pread`` (never ``mmap``), so what
    was read is freed with the returned array and never stays resident.
    """

    def __init__(self, path: str, p: int, dtype: np.dtype, rows: np.ndarray,
                 shape: tuple[int, ...] | None = None):
        self.path, self.p, self.dtype = path, p, np.dtype(dtype)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.shape = tuple(shape) if shape is not None else (len(self.rows), p)
        if int(np.prod(self.shape[:-1])) != len(self.rows) or self.shape[-1] != p:
            raise ValueError(f"shape {self.shape} does not fit {len(self.rows)} rows of {p}")

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def reshape(self, *shape) -> ScratchRows:
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple) else shape
        if shape[-1] != self.p:
            raise ValueError(f"cannot reshape rows of {self.p} to {shape}")
        lead = (len(self.rows),) if len(shape) == 2 and shape[0] == -1 else shape[:-1]
        return ScratchRows(self.path, self.p, self.dtype, self.rows, (*lead, self.p))

    def select(self, keep: np.ndarray) -> ScratchRows:
        """The rows where ``keep`` (bool, of the leading shape) is True, as [n, P]."""
        return ScratchRows(self.path, self.p, self.dtype, self.rows.reshape(self.shape[:-1])[keep])

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, tuple):
            rows, cols = key
            if self.ndim != 2 or rows != slice(None) or not isinstance(cols, slice):
                raise IndexError("ScratchRows reads x[:, a:b] (2-D) or x[a:b]")
            return self._read(self.rows, cols)
        if isinstance(key, slice):
            flat = self.rows.reshape(self.shape[:-1])[key]
            return self._read(flat.reshape(-1), slice(None)).reshape(*flat.shape, self.p)
        raise IndexError("ScratchRows reads x[:, a:b] (2-D) or x[a:b]")

    def read(self) -> np.ndarray:
        """Every row, [..., P] (only for what fits memory: a full run's paths)."""
        return self._read(self.rows, slice(None)).reshape(self.shape)

    def _read(self, rows: np.ndarray, cols: slice) -> np.ndarray:
        start, stop, _ = cols.indices(self.p)
        width, size = max(0, stop - start), self.dtype.itemsize
        out = np.empty((len(rows), width), dtype=self.dtype)
        if not width or not len(rows):
            return out
        fd = os.open(self.path, os.O_RDONLY)
        try:
            i = 0
            while i < len(rows):  # one read per run of consecutive whole rows, else per row
                j = i + 1
                if width == self.p:
                    while j < len(rows) and rows[j] == rows[j - 1] + 1:
                        j += 1
                count = (j - i) * width * size
                data = os.pread(fd, count, int(rows[i] * self.p + start) * size)
                if len(data) != count:
                    raise OSError(f"scratch file {self.path} is short")
                out[i:j] = np.frombuffer(data, dtype=self.dtype).reshape(j - i, width)
                i = j
        finally:
            os.close(fd)
        return out


class PathScratch:
    """An append-only scratch file of path points [N, P] in a private temporary folder,
    removed by ``close`` (use as a context manager). P and the dtype are the first
    append's."""

    def __init__(self):
        self.p, self.dtype = 0, np.dtype(np.float32)
        self.folder = tempfile.mkdtemp(prefix="trajviz-paths-")
        self.path = os.path.join(self.folder, "points.bin")
        self.count = 0
        with open(self.path, "xb"):
            pass

    def append(self, points: torch.Tensor) -> ScratchRows:
        """Write ``points`` [..., P] (any device) and return them as ``ScratchRows``."""
        array = np.ascontiguousarray(points.detach().to("cpu").numpy())
        if self.count == 0:
            self.p, self.dtype = array.shape[-1], array.dtype
        if array.shape[-1] != self.p or array.dtype != self.dtype:
            raise ValueError(f"scratch holds [.., {self.p}] {self.dtype}, got {array.shape} {array.dtype}")
        n = int(np.prod(array.shape[:-1]))
        with open(self.path, "ab") as f:
            f.write(memoryview(array).cast("B"))
        rows = np.arange(self.count, self.count + n, dtype=np.int64)
        self.count += n
        return ScratchRows(self.path, self.p, self.dtype, rows, array.shape)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def concat_rows(parts: list[ScratchRows]) -> ScratchRows:
    """Chunks of one learner's paths [c_i, K+1, P] as one [T, K+1, P]."""
    first = parts[0]
    lead = (sum(p.shape[0] for p in parts), *first.shape[1:-1])
    return ScratchRows(first.path, first.p, first.dtype, np.concatenate([p.rows for p in parts]),
                       (*lead, first.p))


@dataclass(frozen=True)
class Recording:
    """One learner's held-out rollouts, recorded in chunks.

    points: [T, K+1, P] on the scratch file; grads: [T, K+1, P] numpy (a full run) or
    None; losses, query_losses: [T, K+1]; diverged_at: [T]; metrics {name: [T]},
    running {name: [T, K+1]} (NaN from divergence on); diagnostics: values {name:
    [T, K+1]} and the steps evaluated, or None."""

    points: ScratchRows | np.ndarray | None
    grads: np.ndarray | None
    losses: np.ndarray
    query_losses: np.ndarray
    diverged_at: np.ndarray
    metrics: dict[str, np.ndarray]
    running: dict[str, np.ndarray]
    diagnostics: Diagnostics | None


def heldout_paths(rollouts: Rollouts, theta0: Params, learner: str) -> Trajectory:
    """Record the inner loops from ``theta0`` on the held-out ``rollouts.tasks``, labelled
    with ``learner``."""
    with torch.no_grad():
        result = inner_loop(rollouts, theta0, record=True)
    return replace(result.trajectory, learner=learner)


def clean_path(traj: Trajectory) -> tuple[torch.Tensor, torch.Tensor]:
    """params [R, K+1, P] and losses [R, K+1] with every point from a rollout's divergence on
    set to NaN, so path metrics of a diverged rollout are NaN and running metrics keep
    only its good prefix."""
    keep = good_points(traj)
    return (traj.params.masked_fill(~keep[..., None], float("nan")),
            traj.losses.masked_fill(~keep, float("nan")))


def in_memory(traj: Trajectory, diagnostics: Diagnostics | None) -> Recording:
    """A ``Recording`` of rollouts held in memory (a launch: one θ0's paths)."""
    params, losses = clean_path(traj)
    return Recording(_numpy(traj.params), _numpy(traj.grads), _numpy(traj.losses),
                     _numpy(traj.query_losses), _numpy(traj.diverged_at),
                     {k: _numpy(v) for k, v in path_metrics(params, losses).items()},
                     {k: _numpy(v) for k, v in running_metrics(params, losses).items()}, diagnostics)


def chunk_tasks(problem: Problem, tasks: int, steps: int, itemsize: int) -> int:
    """Held-out tasks recorded at once (``budget.record_chunk``: a multiple of the inner
    loop's own rollout chunk, so recording in chunks gives the paths of one call)."""
    p = problem.model.spec.size
    return budget.record_chunk(p, steps, itemsize, tasks, rollouts_per_chunk(p, itemsize, tasks))


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def record_rollouts(rollouts: Rollouts, theta0: Params, name: str, scratch: PathScratch | None,
                    chunk: int, *, keep_grads: bool,
                    diagnose: Callable[[Trajectory, Rollouts], Diagnostics] | None = None
                    ) -> Recording:
    """Record the held-out rollouts from ``theta0`` on ``rollouts.tasks``, ``chunk`` tasks at
    a time.

    theta0: {name: [*shape]} shared by every rollout, or {name: [R, *shape]} one per task
    (``pair_theta0_with_tasks``). ``diagnose(traj, part)`` per chunk, if given (``part``:
    ``rollouts`` on the chunk's tasks). Without ``scratch`` no points are kept
    (``Recording.points`` is None: metrics only)."""
    problem, tasks = rollouts.problem, rollouts.tasks
    parts: dict[str, list] = {k: [] for k in ("points", "grads", "losses", "query_losses",
                                              "diverged_at", "metrics", "running", "diag")}
    steps = None
    shared = batch_shape(theta0, problem.model.spec) == ()
    for start in range(0, len(tasks), chunk):
        rows = list(range(start, min(start + chunk, len(tasks))))
        part = rollouts.on(tasks.select(rows))
        part0 = theta0 if shared else {k: v[rows[0]:rows[-1] + 1] for k, v in theta0.items()}
        traj = heldout_paths(part, part0, name)
        if diagnose is not None:
            diag = diagnose(traj, part)
            parts["diag"].append(diag.values)
            steps = (diag.steps, diag.subsampled)
        params, losses = clean_path(traj)
        parts["metrics"].append({k: _numpy(v) for k, v in path_metrics(params, losses).items()})
        parts["running"].append({k: _numpy(v) for k, v in running_metrics(params, losses).items()})
        del params
        if scratch is not None:
            parts["points"].append(scratch.append(traj.params))
        if keep_grads:
            parts["grads"].append(_numpy(traj.grads).copy())
        for f in ("losses", "query_losses", "diverged_at"):
            parts[f].append(_numpy(getattr(traj, f)).copy())
        del traj

    def cat(dicts: list[dict]) -> dict[str, np.ndarray]:
        return {k: np.concatenate([d[k] for d in dicts]) for k in dicts[0]}

    diagnostics = None if steps is None else Diagnostics(cat(parts["diag"]), *steps)
    return Recording(concat_rows(parts["points"]) if parts["points"] else None,
                     np.concatenate(parts["grads"]) if keep_grads else None,
                     *(np.concatenate(parts[f]) for f in ("losses", "query_losses", "diverged_at")),
                     cat(parts["metrics"]), cat(parts["running"]), diagnostics)


def placeholder(shape: tuple[int, ...]) -> np.ndarray:
    """A light run's stand-in for a [..., P] array: the same leading shape, P = 0
    (what ``store.load_run(heavy=False)`` gives for any run)."""
    return np.zeros((*shape[:-1], 0), dtype=np.float32)


def with_paths(record: LearnerRecord, rec: Recording, full: bool) -> LearnerRecord:
    """``record`` with its held-out paths read back (``full``) or as placeholders."""
    if full:
        points = rec.points.read() if isinstance(rec.points, ScratchRows) else rec.points
        return replace(record, params=points, grads=rec.grads)
    return replace(record, params=placeholder(rec.points.shape), grads=placeholder(rec.points.shape))
