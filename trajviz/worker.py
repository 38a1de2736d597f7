"""A warm worker process for one run: the torch side of the page's recomputations.

``python -m trajviz.worker RUN_PATH`` loads the run once (heavy), then answers
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
"""
from __future__ import annotations

import json
import sys
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


@dataclass
class WorkerState:
    """What one worker keeps warm: the run (heavy), its what-if context, the last variant."""

    path: Path
    run: Any
    context: Any
    last: dict = field(default_factory=dict)


def _whatif(state: WorkerState, header: dict, _payload: bytes) -> tuple[dict, bytes]:
    from .rerun import whatif
    from .variantstore import variant_to_bytes

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

    from .rerun import check_variant_name, keep_variant, whatif

    changes = dict(header.get("changes") or {})
    name = check_variant_name(header.get("name"))
    variant = state.last.get("variant")
    if variant is None or state.last.get("key") != json.dumps(changes, sort_keys=True) \
            or len(variant.learners) != len(state.run.learners) or state.last.get("diagnostics") != "full":
        variant = whatif(state.run, changes, context=state.context)  # full diagnostics
    path = keep_variant(state.path, replace(variant, name=name))
    return {"ok": True, "path": str(path)}, b""


HANDLERS: dict[str, Callable[[WorkerState, dict, bytes], tuple[dict, bytes]]] = {
    "ping": lambda state, header, payload: ({"ok": True}, b""),
    "whatif": _whatif,
    "keep": _keep,
}


def warm_up(state: WorkerState) -> None:
    """One what-if with the run's own settings, discarded, while the page is still being
    read: the first call of a process pays for torch's first dispatches (several times a
    steady call), so the first slider change does not."""
    from .rerun import whatif

    try:
        whatif(state.run, {}, context=state.context, diagnostics="norms")
    except Exception:  # noqa: BLE001, S110 - a request will report what is wrong
        pass


def serve(path: Path, stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Answer frames from ``stdin`` until it closes."""
    from .rerun import whatif_context
    from .store import load_run

    try:
        run = load_run(path)
        state = WorkerState(path, run, whatif_context(run))
        write_frame(stdout, {"ok": True, "ready": True})
    except Exception as exc:  # noqa: BLE001 - reported to the app in one line
        write_frame(stdout, {"ok": False, "error": " ".join(str(exc).split())[:400]})
        return 1
    warm_up(state)
    while (frame := read_frame(stdin)) is not None:
        header, payload = frame
        handler = HANDLERS.get(str(header.get("kind")))
        try:
            if handler is None:
                raise ValueError(f"unknown request {header.get('kind')!r}; accepted: {sorted(HANDLERS)}")
            reply, data = handler(state, header, payload)
        except Exception as exc:  # noqa: BLE001 - a bad request must not kill the worker
            reply, data = {"ok": False, "error": " ".join(str(exc).split())[:400]}, b""
        write_frame(stdout, reply, data)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m trajviz.worker RUN_PATH", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(1)
    channel = sys.stdout.buffer
    sys.stdout = sys.stderr  # stray prints must not corrupt the frames
    return serve(Path(argv[0]), sys.stdin.buffer, channel)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
