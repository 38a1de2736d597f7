"""A warm worker process for one run: click-to-launch and birth-map jobs, away from the app.

The app never imports torch (tests/test_torch_free.py); this module does, in its
own process. ``python -m trajviz.launch_worker RUN_PATH`` loads the run once,
builds its ``launch.launch_context`` once, runs one launch to warm torch up,
prints ``{"ready": true}``, then answers one JSON request per stdin line with
one JSON line on stdout:

* ``{"op": "launch", "view": V, "a": A, "b": B, "name": N}`` ->
  ``{"ok": true, "launch": light_launch, "seconds": s}``: the held-out inner
  loops from θ0 = origin + a·u + b·v of view V (``launch.launch``), without the
  [.., P] arrays (what the app draws; see ``light_launch``). The full launch
  stays here, so it can be kept.
* ``{"op": "keep", "name": N, "as": M}`` -> ``{"ok": true, "name": M}``: stores the
  launch N in the run as the fixed initialisation M (``launch.keep``, atomic).

``python -m trajviz.launch_worker --birthmap RUN_PATH VIEW GRID TASKS PROGRESS``
computes a birth map (``birthmap.birth_map``), writes progress as JSON
({state, fraction, stage, message}) atomically to PROGRESS, and stores the map
(``birthmap.add_birth_map``). A bad request is answered ``{"ok": false,
"error": one line}``; the worker keeps serving.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np


def light_launch(result) -> dict[str, Any]:
    """A ``Launch`` as JSON data without its [.., P] arrays (params, grads, meta_path
    become [.., 0], as ``store.load_run(heavy=False)`` reads them): record fields,
    views {view: {coords, residual, plane_loss, meta_coords, meta_residual}}, seconds."""
    rec = result.record

    def arr(x) -> dict[str, Any]:
        x = np.asarray(x)
        return {"dtype": str(x.dtype), "shape": list(x.shape), "data": x.ravel().tolist()}

    def empty(x) -> dict[str, Any]:
        x = np.asarray(x)
        return arr(np.zeros(x.shape[:-1] + (0,), dtype=np.float32))

    record = {"name": rec.name, "theta0": arr(rec.theta0),
              "meta_path_steps": arr(rec.meta_path_steps), "meta_path": empty(rec.meta_path),
              "eval_steps": arr(rec.eval_steps), "params": empty(rec.params),
              "losses": arr(rec.losses), "grads": empty(rec.grads),
              "query_losses": arr(rec.query_losses), "diverged_at": arr(rec.diverged_at)}
    for group in ("evals", "metrics", "running", "diagnostics"):
        record[group] = {k: arr(v) for k, v in getattr(rec, group).items()}
    views = {k: {f: arr(getattr(p, f)) for f in p.__dataclass_fields__}
             for k, p in result.views.items()}
    return {"record": record, "views": views, "seconds": result.seconds}


def _answer(request: dict[str, Any], ctx, path: Path, kept: dict[str, Any]) -> dict[str, Any]:
    from .launch import keep, launch, point_on_view

    op = request.get("op")
    if op == "launch":
        theta0 = point_on_view(ctx, str(request["view"]), float(request["a"]), float(request["b"]))
        result = launch(ctx, theta0, name=str(request["name"]), diagnostics="norms")
        kept.clear()  # only the latest launch can be kept
        kept[result.record.name] = result
        return {"ok": True, "launch": light_launch(result), "seconds": result.seconds}
    if op == "keep":
        from .inits import check_init_name

        name, new = str(request.get("name")), check_init_name(str(request.get("as")))
        if name not in kept:
            return {"ok": False, "error": f"no launch named {name!r} to keep; click the surface first"}
        # stored as a run stores a fixed initialisation: sharpness included (same paths)
        keep(path, launch(ctx, kept[name].record.theta0, name=new, diagnostics="full"), ctx)
        kept.pop(name)
        return {"ok": True, "name": new}
    return {"ok": False, "error": f"unknown request {op!r}; accepted: launch, keep"}


def serve(path: Path) -> int:
    """Answer requests on stdin until it closes (see the module docstring)."""
    from .launch import launch, launch_context
    from .store import load_run

    run = load_run(path)
    ctx = launch_context(run)
    first = next(iter(ctx.slices.values()))
    launch(ctx, np.asarray(first.origin, dtype=np.float64), name="warmup",  # torch's first-call costs
           diagnostics="norms")
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    kept: dict[str, Any] = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = _answer(json.loads(line), ctx, path, kept)
        except Exception as exc:  # noqa: BLE001 - reported to the page in one line
            answer = {"ok": False, "error": f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:400]}
        out.write(json.dumps(answer) + "\n")
        out.flush()
    return 0


def _write(progress: Path, **status: Any) -> None:
    tmp = progress.with_suffix(".tmp")
    tmp.write_text(json.dumps(status), encoding="utf-8")
    os.replace(tmp, progress)


def birth_job(path: Path, view: str, grid: int, tasks: int, progress: Path) -> int:
    """Compute and store the birth map of ``view``, reporting progress to ``progress``."""
    _write(progress, state="running", fraction=0.0, stage="starting", message="")
    try:
        from .birthmap import add_birth_map, birth_map
        from .store import load_run

        def report(done: int, total: int) -> None:
            _write(progress, state="running", fraction=round(0.97 * done / max(total, 1), 4),
                   stage=f"training from grid points: chunk {done}/{total}", message="")

        bm = birth_map(load_run(path), view, grid=grid, tasks=tasks, progress=report)
        _write(progress, state="running", fraction=0.98, stage="writing the run", message="")
        add_birth_map(path, bm)
    except Exception as exc:  # noqa: BLE001 - reported to the page in one line
        _write(progress, state="failed", fraction=0.0, stage="",
               message=f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:400])
        return 1
    _write(progress, state="done", fraction=1.0, stage="done", message="")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 1:
        return serve(Path(argv[0]))
    if len(argv) == 6 and argv[0] == "--birthmap":
        return birth_job(Path(argv[1]), argv[2], int(argv[3]), int(argv[4]), Path(argv[5]))
    print("usage: python -m trajviz.launch_worker RUN_PATH | --birthmap RUN_PATH VIEW GRID "
          "TASKS PROGRESS.json", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
