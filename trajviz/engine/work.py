"""``Work``: how a chunked job runs, the parameter bundle of every grid job.

The surface (``engine.surface.evaluate_surface``), the birth map
(``pipeline.birthmap``), the view built on a slice (``pipeline.views``) and the
diagnostics' sharpness and curvature chunks (``engine.diagnostics``,
``engine.curvature_path``) take the same four things beside their data: where the
chunks run, whom to tell, how a worker rebuilds the problem, and how big a chunk is.
"""
from __future__ import annotations

from dataclasses import dataclass

from trajviz.engine.context import ProblemRef
from trajviz.engine.executors.base import IN_PROCESS, Executor, Progress


@dataclass(frozen=True)
class Work:
    """How a chunked job runs (defaults: in this process, silently, default chunks).

    executor: where the chunks run (``engine.executors``; None: in-process; a scheduler
    string where the callee opens it, ``pipeline.birthmap.birth_map``);
    progress(done, total): called as chunks complete; ref: the problem's family and
    options, so that a Dask worker rebuilds the problem rather than receive it;
    chunk: how much one chunk holds, in the unit its callee documents (grid points for
    surfaces and birth maps, bytes for the curvature), None for the callee's default.
    """

    executor: Executor | str | None = None
    progress: Progress | None = None
    ref: ProblemRef | None = None
    chunk: int | None = None

    @property
    def runner(self) -> Executor:
        """The executor to map chunks with (in-process when none was given)."""
        return IN_PROCESS if self.executor is None else self.executor


DEFAULT_WORK = Work()  # in this process, silently, default chunks: the callees' default
