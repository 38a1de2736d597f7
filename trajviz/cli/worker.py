"""A warm worker process for one run: the torch side of the page's recomputations.

``python -m trajviz.cli.worker RUN_PATH`` loads the run once (light, with its slices:
``load_run(heavy="slices")``; never the recorded paths' params and grads), then answers
requests on stdin with replies on stdout, one at a time. A frame is one line of
JSON (the header) followed by ``header["bytes"]`` raw bytes (arrays or nothing);
no pickle crosses the pipe. The app's torch-free side is
``trajviz.app.worker_client`` (it starts, feeds and stops workers).

Request headers are {"kind": name, ...}; a reply is {"ok": true, ...} or
{"ok": false, "error": one line}. Kinds are the entries of ``HANDLERS``
(``handler(state, header, payload) -> (reply header, reply bytes)``), so other
recomputations (a click-to-launch, say) can be added as one more entry:

- ``ping``: {} -> {"ok": true}
- ``whatif``: {"changes": {...}, "learners": [...] | null, "diagnostics": "norms"} -> {"variant": JSON text,
  "seconds": s} + the variant's light arrays, raw (``variantstore.variant_to_bytes``)
- ``keep``: {"changes": {...}, "name": str} -> {"path": str}: the variant is stored in
  the run atomically (``rerun.keep_variant``)
- ``launch``: {"view": V, "a": A, "b": B, "name": N} -> {"launch": ``light_launch``,
  "nonfinite": its NaN/inf (``jsonfloats.strict_json``), "seconds": s}: the held-out
  inner loops from θ0 = origin + a·u + b·v of view V (``launch.launch``), without the
  [.., P] arrays (what the app draws). The full launch stays here, the latest only, so
  it can be kept.
- ``keep_launch``: {"name": N, "as": M} -> {"name": M}: that launch stored in the run as
  the fixed initialisation M (``launch.keep``, atomic).

Requests can be watched, and long ones (``CANCELLABLE``: whatif, launch) stopped. A
request with ``"progress": true`` gets {"progress": true, "stage": text, "elapsed": s}
frames every ``PROGRESS_S`` while it runs, before its reply (so a long ``keep`` is not
taken for a hung worker). SIGUSR1 cancels the request
running (``Cancelled`` is raised in it, between two torch operations): its reply is
{"ok": false, "cancelled": true, "error": ...} and the worker stays warm for the next;
a signal that comes between requests, or during a ``keep`` (which writes the run), is
ignored. ``TRAJVIZ_TEST_WORKER_DELAY_S`` (tests only) makes every cancellable request
first wait that long, cancellably: a deterministic slow what-if.

``python -m trajviz.cli.worker RUN_PATH [--warm whatif|launch]``: ``--warm`` names the
work the worker is for (default whatif); one such request is run and discarded
before the first real one, so that one does not pay for torch's first dispatches.
Its contexts (``rerun.whatif_context``, ``launch.launch_context``) are built on first use.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO


def read_frame(stream: BinaryIO) -> tuple[dict, bytes] | None:
    """One (header, payload) frame, or None at end of stream."""
    line = stream.readline()
    if not line:
        return None
    header = json.loads(line)
    size = int(header.get("bytes", 0))
    payload = stream.read(size) if size else b""
    return header, payload


def write_frame(stream: BinaryIO, header: dict, payload: bytes = b"") -> None:
    stream.write(json.dumps({**header, "bytes": len(payload)}, allow_nan=False).encode() + b"\n")
    stream.write(payload)
    stream.flush()


PROGRESS_S = 0.25
WARM_BEAT_S = 10.0  # a pipe's 64 KiB of unread heartbeats last hours at this rate
CANCELLABLE = ("whatif", "launch")
DELAY_ENV = "TRAJVIZ_TEST_WORKER_DELAY_S"


class Cancelled(Exception):
    """Raised inside a cancellable request when the app sends SIGUSR1."""


class _Guard:
    """While a cancellable request runs: SIGUSR1 raises ``Cancelled`` in it, and (if
    asked) a thread writes progress frames. Outside, the signal is ignored."""

    def __init__(self, stdout: BinaryIO, lock: threading.Lock):
        self.stdout, self.lock = stdout, lock
        self.active = False
        self.stage = ""
        if hasattr(signal, "SIGUSR1") and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGUSR1, self._signal)

    def _signal(self, signum, frame) -> None:
        if self.active:
            self.active = False
            raise Cancelled("cancelled")

    def run(self, fn: Callable[[], Any], kind: str, progress: bool, cancellable: bool,
            period: float = PROGRESS_S) -> Any:
        done = threading.Event()
        started = time.perf_counter()
        self.stage = {"whatif": "recomputing the held-out paths",
                      "launch": "training from the clicked point",
                      "keep": "recomputing with sharpness and storing the variant",
                      "keep_launch": "storing the point in the run",
                      "warm-up": "warming up (the worker's first computation)"}.get(kind, kind)

        def tick() -> None:
            while not done.wait(period):
                with self.lock:
                    if not done.is_set():
                        write_frame(self.stdout, {"progress": True, "stage": self.stage,
                                                  "elapsed": time.perf_counter() - started})

        ticker = threading.Thread(target=tick, daemon=True) if progress else None
        try:
            try:
                self.active = cancellable
                if ticker is not None:
                    ticker.start()
                if cancellable:
                    _test_delay()
                return fn()
            finally:
                self.active = False
        finally:  # even when the signal landed in the inner finally (it clears ``active``)
            done.set()
            if ticker is not None and ticker.is_alive():
                ticker.join()


def _test_delay() -> None:
    """Tests only (``DELAY_ENV``): wait, in short sleeps a cancel can interrupt."""
    try:
        delay = float(os.environ.get(DELAY_ENV, "0") or 0)
    except ValueError:
        delay = 0.0
    end = time.perf_counter() + min(max(delay, 0.0), 600.0)
    while time.perf_counter() < end:
        time.sleep(0.05)


@dataclass
class WorkerState:
    """What one worker keeps warm: the run (light, with its slices), its contexts (built on first use), the
    last variant and the latest launch."""

    path: Path
    run: Any
    contexts: dict = field(default_factory=dict)
    last: dict = field(default_factory=dict)
    launched: dict = field(default_factory=dict)

    @property
    def context(self):
        """The run's what-if context (``rerun.whatif_context``)."""
        if "whatif" not in self.contexts:
            from trajviz.pipeline.whatif import whatif_context

            self.contexts["whatif"] = whatif_context(self.run)
        return self.contexts["whatif"]

    @property
    def launch_context(self):
        """The run's launch context (``launch.launch_context``)."""
        if "launch" not in self.contexts:
            from trajviz.pipeline.launch import launch_context

            self.contexts["launch"] = launch_context(self.run)
        return self.contexts["launch"]


def _whatif(state: WorkerState, header: dict, _payload: bytes) -> tuple[dict, bytes]:
    from trajviz.pipeline.whatif import whatif
    from trajviz.store.inner_variants import variant_to_bytes

    started = time.perf_counter()
    variant = whatif(state.run, dict(header.get("changes") or {}), header.get("learners"),
                     context=state.context, name=str(header.get("name") or "whatif"),
                     diagnostics=str(header.get("diagnostics", "norms")))
    state.last = {"key": json.dumps(header.get("changes"), sort_keys=True), "variant": variant,
                  "diagnostics": str(header.get("diagnostics", "norms"))}
    text, data = variant_to_bytes(variant)
    return {"ok": True, "variant": text, "seconds": time.perf_counter() - started}, data


def _keep(state: WorkerState, header: dict, _payload: bytes) -> tuple[dict, bytes]:
    from dataclasses import replace

    from trajviz.pipeline.whatif import check_variant_name, keep_variant, whatif

    changes = dict(header.get("changes") or {})
    name = check_variant_name(header.get("name"))
    variant = state.last.get("variant")
    if variant is None or state.last.get("key") != json.dumps(changes, sort_keys=True) \
            or len(variant.learners) != len(state.run.learners) or state.last.get("diagnostics") != "full":
        variant = whatif(state.run, changes, context=state.context)  # full diagnostics
    path = keep_variant(state.path, replace(variant, name=name))
    return {"ok": True, "path": str(path)}, b""


def light_launch(result) -> dict[str, Any]:
    """A ``Launch`` as JSON data without its [.., P] arrays (params, grads, meta_path
    become [.., 0], as ``store.load_run(heavy=False)`` reads them): record fields,
    views {view: {coords, residual, plane_loss, meta_coords, meta_residual}}, seconds.
    The app's ``launches.decode_launch`` reads it back."""
    import numpy as np

    rec = result.record

    def arr(x) -> dict[str, Any]:
        x = np.asarray(x)
        return {"dtype": str(x.dtype), "shape": list(x.shape), "data": x.ravel().tolist()}

    def empty(x) -> dict[str, Any]:
        return arr(np.zeros(np.asarray(x).shape[:-1] + (0,), dtype=np.float32))

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


def _launch(state: WorkerState, header: dict, _payload: bytes) -> tuple[dict, bytes]:
    from trajviz.data.jsonfloats import strict_json
    from trajviz.pipeline.launch import launch, point_on_view

    ctx = state.launch_context
    theta0 = point_on_view(ctx, str(header["view"]), float(header["a"]), float(header["b"]))
    result = launch(ctx, theta0, name=str(header["name"]), diagnostics="norms")
    state.launched = {result.record.name: result}  # only the latest launch can be kept
    light, nonfinite = strict_json(light_launch(result))  # a diverged path's inf and NaN
    return {"ok": True, "launch": light, "nonfinite": nonfinite, "seconds": result.seconds}, b""


def _keep_launch(state: WorkerState, header: dict, _payload: bytes) -> tuple[dict, bytes]:
    from trajviz.pipeline.launch import keep, launch
    from trajviz.problem.inits import check_init_name

    name, new = str(header.get("name")), check_init_name(str(header.get("as")))
    if name not in state.launched:
        raise ValueError(f"no launch named {name!r} to keep; click the surface first")
    # stored as a run stores a fixed initialisation: sharpness included (same paths)
    ctx = state.launch_context
    keep(state.path, launch(ctx, state.launched[name].record.theta0, name=new, diagnostics="full"),
         ctx)
    state.launched.pop(name)
    return {"ok": True, "name": new}, b""


HANDLERS: dict[str, Callable[[WorkerState, dict, bytes], tuple[dict, bytes]]] = {
    "ping": lambda state, header, payload: ({"ok": True}, b""),
    "whatif": _whatif,
    "keep": _keep,
    "launch": _launch,
    "keep_launch": _keep_launch,
}
WARM = ("whatif", "launch")


def warm_up(state: WorkerState, work: str = "whatif") -> None:
    """One request of the worker's kind of ``work``, discarded, while the page is still
    being read: the first call of a process pays for torch's first dispatches (several
    times a steady call), so the user's first request does not. what-if: the run's own
    settings; launch: from the first view's origin."""
    try:
        if work == "launch":
            import numpy as np

            from trajviz.pipeline.launch import launch

            ctx = state.launch_context
            first = next(iter(ctx.slices.values()))
            launch(ctx, np.asarray(first.origin, dtype=np.float64), name="warmup",
                   diagnostics="norms")
        else:
            from trajviz.data.stats import t_quantile
            from trajviz.pipeline.whatif import whatif

            # one rollout of one step: torch's first dispatches at a small fraction of a
            # what-if's cost (a 1M-parameter run's full one takes minutes on 2 busy cores)
            whatif(state.run, {"steps": 1}, learners=list(state.run.learners)[:1], tasks=[0],
                   context=state.context, diagnostics="norms")
            t_quantile(0.975, 2)  # the summary's import (one task above is summarised alone)
    except Exception:  # noqa: BLE001, S110 - a request will report what is wrong
        pass


def serve(path: Path, stdin: BinaryIO, stdout: BinaryIO, warm: str = "whatif") -> int:
    """Answer frames from ``stdin`` until it closes; ``warm``: see ``warm_up``."""
    from trajviz.store import load_run

    lock = threading.Lock()  # the progress thread and the replies share stdout
    guard = _Guard(stdout, lock)  # before "ready": a cancel sent during the warm-up is ignored
    try:
        state = WorkerState(path, load_run(path, heavy="slices"))  # never the paths' params
        _ = state.launch_context if warm == "launch" else state.context
        write_frame(stdout, {"ok": True, "ready": True})
    except Exception as exc:  # noqa: BLE001 - reported to the app in one line
        write_frame(stdout, {"ok": False, "error": " ".join(str(exc).split())[:400]})
        return 1
    # heartbeats while warming up (slow: nothing reads them before the first request), so
    # a request sent meanwhile is not taken for one the worker never answers
    guard.run(lambda: warm_up(state, warm), "warm-up", True, False, period=WARM_BEAT_S)
    while (frame := read_frame(stdin)) is not None:
        header, payload = frame
        kind = str(header.get("kind"))
        handler = HANDLERS.get(kind)
        try:
            if handler is None:
                raise ValueError(f"unknown request {header.get('kind')!r}; accepted: {sorted(HANDLERS)}")
            reply, data = guard.run(lambda h=handler, f=header, b=payload: h(state, f, b), kind,
                                    bool(header.get("progress")), kind in CANCELLABLE)
        except Cancelled:
            reply, data = {"ok": False, "cancelled": True,
                           "error": f"the {kind} was cancelled"}, b""
        except Exception as exc:  # noqa: BLE001 - a bad request must not kill the worker
            reply, data = {"ok": False, "error": " ".join(str(exc).split())[:400]}, b""
        with lock:
            write_frame(stdout, reply, data)
    return 0


def main(argv: list[str]) -> int:
    if not (len(argv) == 1 or (len(argv) == 3 and argv[1] == "--warm" and argv[2] in WARM)):
        print(f"usage: python -m trajviz.cli.worker RUN_PATH [--warm {'|'.join(WARM)}]", file=sys.stderr)
        return 2
    from trajviz.spec.priority import lower_priority

    lower_priority()  # a worker warming up never slows the page
    import torch

    torch.set_num_threads(1)
    channel = sys.stdout.buffer
    sys.stdout = sys.stderr  # stray prints must not corrupt the frames
    return serve(Path(argv[0]), sys.stdin.buffer, channel, argv[2] if len(argv) == 3 else "whatif")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
