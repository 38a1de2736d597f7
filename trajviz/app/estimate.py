"""How long a page action will take, said before it starts: a what-if, a click-to-launch,
a birth map. Torch-free: it reads the light run and the run folder's file sizes.

Work is counted in rollout-steps (one inner step of one rollout). The rate, seconds per
rollout-step, comes from the best source there is, in this order:

1. measured: this server's earlier what-ifs and launches of the same run (``Rates``);
2. recorded: the run's own timings (``info["timings"]``): the random learner's entry is
   its held-out and evaluation rollouts only (no meta-training), so it prices one
   rollout-step of this model on this machine;
3. the budget model (``trajviz.spec.budget``): per-step overhead plus flops.

A worker that is not warm adds its start: importing torch, reading the run (heavy.npz
whole) and one warm-up request (``trajviz.cli.worker.warm_up``). Estimates are rough on
purpose ("about"); they tell a 2 s change from a 2 min one.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trajviz.data.run import Run
from trajviz.spec import budget

FEW_S = 3.0  # below this no estimate is shown: the action is quick
IMPORT_S = 6.0  # a worker's python + torch import on this machine (2 busy cores: more)
READ_BYTES_PER_S = 300e6  # reading and checking heavy.npz


@dataclass(frozen=True)
class Estimate:
    """seconds: the expected wall time; basis: where the rate came from, in words."""

    seconds: float
    basis: str

    def text(self) -> str:
        """'about 40 s (from this run's recorded timings)', or '' when it is quick."""
        if self.seconds < FEW_S:
            return ""
        return f"about {duration(self.seconds)} ({self.basis})"


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Rates:
    """Seconds per rollout-step measured by this server, by run id (thread-safe)."""

    def __init__(self):
        self._rates: dict[str, float] = {}
        self._lock = threading.Lock()

    def record(self, run_id: str, seconds: float, rollout_steps: int) -> None:
        if seconds > 0 and rollout_steps > 0:
            with self._lock:
                self._rates[run_id] = seconds / rollout_steps

    def get(self, run_id: str) -> float | None:
        with self._lock:
            return self._rates.get(run_id)


def _inner(run: Run) -> dict[str, Any]:
    return run.config.get("inner", {}) if isinstance(run.config, dict) else {}


def param_count(run: Run) -> int:
    first = next(iter(run.learners.values()), None)
    size = int(first.theta0.shape[-1]) if first is not None else 0
    return size or int(run.info.get("param_count", 0) or 0)


def _budget_rate(run: Run, rollouts: int) -> float:
    """Seconds per rollout-step of ``rollouts`` advanced together, by ``spec.budget``'s model."""
    config = run.config if isinstance(run.config, dict) else {}
    sizes = budget.family_sizes(str(config.get("family", "")), config.get("family_options") or {})
    p = param_count(run)
    samples = int(_inner(run).get("batch_size") or 0) or (sizes.samples if sizes else 10)
    act = sizes.act_per_sample if sizes else p
    per_sample = (sizes.flops_per_sample if sizes and sizes.flops_per_sample else 0) \
        or 6 * max(p, act)
    return budget.SECONDS_PER_STEP / max(rollouts, 1) + samples * per_sample / budget.FLOPS_PER_SECOND


def _recorded_rate(run: Run) -> float | None:
    """Seconds per rollout-step from the random learner's recorded time, if the run has it."""
    timings = run.info.get("timings") if isinstance(run.info, dict) else None
    seconds = (timings or {}).get("meta:random")
    outer = run.config.get("outer", {}) if isinstance(run.config, dict) else {}
    try:
        evals = int(outer["meta_steps"]) // max(1, int(outer["eval_every"])) + 2
        rollouts = evals * int(outer["eval_tasks"]) + len(run.task_ids)
        steps = int(_inner(run)["steps"]) + 1
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(seconds, (int, float)) or seconds <= 0 or rollouts <= 0:
        return None
    return float(seconds) / (rollouts * steps)


def rollout_rate(run: Run, run_id: str, rates: Rates | None, rollouts: int) -> tuple[float, str]:
    """(seconds per rollout-step, basis in words) for ``rollouts`` rollouts at once."""
    measured = rates.get(run_id) if rates is not None else None
    if measured is not None:
        return measured, "from this run's last recomputation here"
    recorded = _recorded_rate(run)
    if recorded is not None:
        return recorded, "from this run's recorded timings"
    return _budget_rate(run, rollouts), "from the model's size"


def start_seconds(run: Run, path: Path, warm_rollouts: int, rate: float) -> float:
    """A worker's start: import, read heavy.npz whole, one warm-up of ``warm_rollouts``."""
    try:
        heavy = (Path(path) / "heavy.npz").stat().st_size
    except OSError:
        heavy = 0
    return IMPORT_S + heavy / READ_BYTES_PER_S + warm_rollouts * (int(_inner(run).get("steps", 16)) + 1) * rate


def rollouts_estimate(run: Run, run_id: str, path: Path, *, rollouts: int, steps: int,
                      rates: Rates | None = None, cold_start: int | None = None) -> Estimate:
    """``rollouts`` inner loops of ``steps`` steps in the run's worker: warm (``cold_start``
    None), or started first with a warm-up of ``cold_start`` rollouts at the run's own K."""
    rate, basis = rollout_rate(run, run_id, rates, rollouts)
    seconds = rollouts * (steps + 1) * rate
    if cold_start is not None:
        seconds += start_seconds(run, path, cold_start, rate)
        basis += ", and the worker's start"
    return Estimate(seconds, basis)


def whatif_estimate(run: Run, run_id: str, path: Path, steps: int, rates: Rates | None = None,
                    warm: bool = True) -> Estimate:
    """Every learner × held-out task, ``steps`` inner steps."""
    n = len(run.learners) * len(run.task_ids)
    return rollouts_estimate(run, run_id, path, rollouts=n, steps=steps, rates=rates,
                             cold_start=None if warm else n)


def launch_estimate(run: Run, run_id: str, path: Path, rates: Rates | None = None,
                    warm: bool = True) -> Estimate:
    """Every held-out task from one point, at the run's own K."""
    n = len(run.task_ids)
    return rollouts_estimate(run, run_id, path, rollouts=n, steps=int(_inner(run).get("steps", 16)),
                             rates=rates, cold_start=None if warm else n)


def birth_estimate(run: Run, path: Path, grid: int, tasks: int) -> Estimate:
    """A birth map: grid² points × ``tasks`` rollouts at the run's K, in vectorised chunks
    (``spec.budget``'s birth-map model), after a fresh process has read the run."""
    p = max(1, param_count(run))
    k1 = int(_inner(run).get("steps", 16)) + 1
    points = grid * grid
    per_chunk = max(1, budget.BIRTH_CHUNK_ENTRIES // max(1, p * tasks))
    chunks = -(-points // per_chunk)
    flops_rate = _budget_rate(run, 1) - budget.SECONDS_PER_STEP  # the flops part per rollout-step
    seconds = chunks * k1 * budget.SECONDS_PER_STEP + points * tasks * k1 * max(flops_rate, 0.0)
    seconds += start_seconds(run, path, 0, 0.0)
    return Estimate(seconds, "from the model's size")


__all__ = ["Estimate", "Rates", "birth_estimate", "duration", "launch_estimate",
           "rollout_rate", "rollouts_estimate", "whatif_estimate"]
