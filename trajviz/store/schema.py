"""What the store's modules share: file names, the index layout, RunError, RunEntry, run ids."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RUN_FILE = "run.json"
LIGHT_FILE = "light.npz"
HEAVY_FILE = "heavy.npz"
_FILES = {"light": LIGHT_FILE, "heavy": HEAVY_FILE}

# LearnerRecord array fields, in the order they are written, and which file each goes to.
_LEARNER_ARRAYS = {
    "theta0": "light", "meta_path_steps": "light", "meta_path": "heavy", "eval_steps": "light",
    "params": "heavy", "losses": "light", "grads": "heavy", "query_losses": "light",
    "diverged_at": "light",
}
# Learner arrays stored under another name by earlier versions: old name -> field.
_RENAMED_LEARNER_ARRAYS = {"meta_steps": "meta_path_steps"}
_LEARNER_DICTS = ("evals", "metrics", "running", "diagnostics")
_OPTIONAL_DICTS = ("diagnostics",)  # absent from version-1 runs
_SLICE_ARRAYS = {"origin": "heavy", "basis": "heavy", "explained_variance": "light"}
_SURFACE_ARRAYS = ("alpha", "beta", "loss", "mean", "task_ids")
_VIEW_DICTS = ("coords", "residual", "plane_loss", "meta_coords", "meta_residual")
_BIRTH_ARRAYS = ("alpha", "beta", "task_ids", "specialisation", "predicted", "rank_correlation",
                 "birth", "birth_index")
_BIRTH_DICTS = ("mean", "spread", "learner_table", "learner_tasks")
_NUMERIC_KINDS = "biufc"
_TASK_ID_KINDS = "biufU"
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


class RunError(ValueError):
    """A run folder that cannot be read: ``str(err)`` is one line naming the folder and
    the reason; ``err.path`` and ``err.reason`` hold the two parts."""

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = " ".join(str(reason).split())
        super().__init__(f"run {self.path}: {self.reason}")


@dataclass(frozen=True)
class RunEntry:
    """One folder of ``list_runs``: ok is False for a broken run, with ``reason`` saying
    why; the other fields are filled from run.json as far as it could be read
    (name and family from the config, created from info, learner and view names)."""

    run_id: str
    path: Path
    ok: bool
    reason: str
    name: str
    family: str
    learners: tuple[str, ...]
    created: str
    views: tuple[str, ...]


# ---------------------------------------------------------------------------- ids

def new_run_id(family: str, when: datetime | None = None) -> str:
    """A fresh run id ``YYYYMMDD-HHMMSS-<family>-<4 hex>``, e.g. ``20261127-063012-sinusoid-3fa9``.

    ``when`` defaults to now in UTC. The family is sanitised to lower-case
    ``[a-z0-9-]`` (a plugin ``pkg.mod:fn`` gives ``pkg-mod-fn``), at most 40
    characters, ``run`` if nothing is left.
    """
    when = datetime.now(UTC) if when is None else when
    slug = re.sub(r"[^a-z0-9]+", "-", str(family).lower()).strip("-")[:40].strip("-") or "run"
    return f"{when:%Y%m%d-%H%M%S}-{slug}-{secrets.token_hex(2)}"


def _check_run_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise ValueError(
            f"run_id {run_id!r} is not a safe folder name; accepted: 1-200 characters of "
            "letters, digits, '.', '_', '-', not starting with '.', '_' or '-' (see new_run_id)")
    return run_id

