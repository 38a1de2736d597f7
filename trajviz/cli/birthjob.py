"""A birth-map job in its own process: ``python -m trajviz.cli.birthjob RUN VIEW GRID TASKS PROGRESS``.

Computes the birth map of view VIEW (``birthmap.birth_map``), writes progress as
JSON ({state, fraction, stage, message}) atomically to PROGRESS, and stores the
map in the run (``birthmap.add_birth_map``, atomic). Started and polled by the
app's ``BirthJobs`` (``trajviz/app/launches.py``); a failure is one line in
PROGRESS, state "failed". SIGTERM (the page's Cancel) stops it like Ctrl-C: a write
under way removes its temporary folder, so the run is left as it was.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from trajviz.store.files import write_json


def _write(progress: Path, **status: Any) -> None:
    write_json(progress, status)


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds through replace_run, which removes its temporary folder


def birth_job(path: Path, view: str, grid: int, tasks: int, progress: Path) -> int:
    """Compute and store the birth map of ``view``, reporting progress to ``progress``."""
    import signal

    signal.signal(signal.SIGTERM, _on_sigterm)
    _write(progress, state="running", fraction=0.0, stage="starting", message="")
    try:
        from trajviz.engine.work import Work
        from trajviz.pipeline.birthmap import add_birth_map, birth_map
        from trajviz.store import load_run

        def report(done: int, total: int) -> None:
            _write(progress, state="running", fraction=round(0.97 * done / max(total, 1), 4),
                   stage=f"training from grid points: chunk {done}/{total}", message="")

        bm = birth_map(load_run(path), view, grid=grid, tasks=tasks, work=Work(progress=report))
        _write(progress, state="running", fraction=0.98, stage="writing the run", message="")
        add_birth_map(path, bm)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - reported to the page in one line
        _write(progress, state="failed", fraction=0.0, stage="",
               message=f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:400])
        return 1
    _write(progress, state="done", fraction=1.0, stage="done", message="")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print("usage: python -m trajviz.cli.birthjob RUN_PATH VIEW GRID TASKS PROGRESS.json",
              file=sys.stderr)
        return 2
    return birth_job(Path(argv[0]), argv[1], int(argv[2]), int(argv[3]), Path(argv[4]))


if __name__ == "__main__":
    from trajviz.spec.priority import lower_priority

    lower_priority()  # a birth map behind the page never slows the page
    sys.exit(main(sys.argv[1:]))
