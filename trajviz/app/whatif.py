"""What if, in the page: change the inner optimiser, lr, β or K and watch every path recompute.

The controls live in the left column (``whatif_box``). A change sends one request
to the run's warm worker (``worker_client``: torch stays out of the app); one
recomputation runs at a time per run and a newer change replaces a pending one
(``LatestWins``), while the browser sends the lr and β sliders' values as they are
dragged. The result, an ``InnerVariant`` with light arrays only, is held here by token;
``WHATIF_SHOWN`` names what is drawn, and ``shown_run`` turns it into the run to
draw (``run.apply_inner_variant``), so paths, panels and summary come from the
same view-model as the stored run. Kept variants are listed in the picker.

A slider or optimiser change is drawn fast and outside Dash's callbacks: ``assets/whatif.js``
posts it to a small JSON route (``whatif_route``), whose reply carries only the new path data
(``whatif_fast.fast_update``), the status and the summary (or, for a slow change, the action
to follow with progress and Cancel); the browser restyles the figures already drawn with it;
once the controls rest, it names the variant in ``WHATIF_SHOWN`` and one full draw follows.
K and the picker go through the callback here.
"""
from __future__ import annotations

import math
import threading
from typing import Any

from dash import ClientsideFunction, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate

from trajviz.app import ids, inputs
from trajviz.app.actions import PROGRESS_KEYS, Report, poll_action, progress_wiring
from trajviz.app.components import summary_children
from trajviz.app.estimate import Estimate, whatif_estimate
from trajviz.app.whatif_layout import (  # noqa: F401 - the box's names, re-exported
    LIVE,
    LR_MARKS,
    OPTIMIZERS,
    OWN,
    READY,
    STEPS_DEBOUNCE,
    SURFACE_NOTE,
    beta_style,
    whatif_box,
)
from trajviz.app.whatif_pick import describe, picker_for, variant_options
from trajviz.app.worker_client import (
    SUPERSEDED,
    LatestWins,
    WorkerCancelled,
    WorkerError,
    WorkerPool,
)
from trajviz.data.run import InnerVariant, Run, apply_inner_variant
from trajviz.store import RunError

# A slider change whose estimate is below this (worker warm) is answered in the request
# itself and restyled at once; a longer one runs as an action with progress and Cancel.
SYNC_S = 1.5


class WhatIfService:
    """Per app: warm workers by run, one LatestWins gate per run, the live variants."""

    def __init__(self, size: int = 2):
        self.pool = WorkerPool(size)
        self.gates: dict[str, LatestWins] = {}
        self.live: dict[str, tuple[int, InnerVariant]] = {}
        self._token = 0
        self._lock = threading.Lock()

    def gate(self, run_id: str) -> LatestWins:
        with self._lock:
            return self.gates.setdefault(run_id, LatestWins())

    def store(self, run_id: str, variant: InnerVariant) -> int:
        with self._lock:
            self._token += 1
            self.live[run_id] = (self._token, variant)
            return self._token

    def shutdown(self) -> None:
        self.pool.shutdown()


def shown_run(state, run_id: str, shown: dict | None) -> Run:
    """The run to draw: the stored run, one of its kept variants, or the live what-if."""
    run = state.cache.get(run_id)
    if not shown or shown.get("run") != run_id:
        return run
    service: WhatIfService | None = getattr(state, "whatif", None)
    live = service.live.get(run_id) if service else None
    if shown.get("live") is not None and live and live[0] >= shown["live"]:  # the newest
        if all(n in run.learners for n in live[1].learners):
            return apply_inner_variant(run, live[1])
    name = shown.get("variant")
    if name in run.inner_variants:
        return apply_inner_variant(run, run.inner_variants[name])
    return run


def changes_of(optimizer: str, log_lr: Any, beta: Any, steps: Any) -> dict[str, Any]:
    """The inner changes the controls ask for (checked again by trajviz.spec.config in the worker)."""
    try:
        lr, k, b = 10.0 ** float(log_lr), int(steps), float(beta)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"the learning rate, β and K must be numbers, got {log_lr!r}, {beta!r} "
                         f"and {steps!r}") from None
    changes: dict[str, Any] = {"optimizer": str(optimizer), "lr": float(f"{lr:.6g}"), "steps": k}
    if optimizer == "momentum":
        changes["momentum"] = b
    elif optimizer == "adam":
        changes["beta1"] = b
    return changes


def recompute(state, run_id: str, changes: dict[str, Any], report: Report | None = None
              ) -> dict[str, Any] | None:
    """Ask the run's worker for the what-if; None when a newer request replaced this one.

    Returns {"shown", "status", "run"} (run: the variant applied, for the summary). With
    ``report`` (an action, ``actions.Report``): its stage follows the worker's progress, a
    cancel stops the worker's job (WorkerCancelled), and the variant is only made the live
    one if it was not cancelled meanwhile."""
    from trajviz.store.inner_variants import variant_from_bytes

    service: WhatIfService = state.whatif
    base = state.cache.get(run_id)

    def work():
        if report is not None and not service.pool.is_warm(run_id):
            report.stage("starting the worker for this run (importing torch, reading the run)")
        worker = service.pool.get(run_id, state.cache.path_of(run_id))
        if report is None:
            return worker.call("whatif", changes=changes)
        if report.cancelled:  # cancelled while it waited for the worker or the gate
            raise WorkerCancelled("cancelled before it began")
        report.on_cancel(worker.cancel)
        report.stage("waiting for the worker")  # its progress frames say when it has begun
        return worker.call("whatif", changes=changes,
                           on_progress=lambda frame: report.stage(frame.get("stage", "")))

    out = service.gate(run_id).run(work)
    if out is SUPERSEDED:
        if report is not None:
            raise WorkerCancelled("a newer change replaced this one")
        return None
    header, data = out
    variant = variant_from_bytes(header["variant"], data, base.learners, base.views)
    rollouts = len(variant.learners) * len(variant.task_index)
    rates = getattr(state, "rates", None)
    if rates is not None:
        rates.record(run_id, float(header["seconds"]), rollouts * (int(variant.inner["steps"]) + 1))
    token = (report.land if report is not None else _now)(lambda: service.store(run_id, variant))
    shown = apply_inner_variant(base, variant)
    text = (f"On screen: {describe(variant.inner)} (not kept) · {rollouts} rollouts "
            f"recomputed in {1e3 * header['seconds']:.0f} ms; the surface is reused.")
    return {"shown": {"run": run_id, "live": token, "variant": None}, "status": text, "run": shown}


def _now(fn):
    return fn()


def estimate_for(state, run_id: str, changes: dict[str, Any]) -> Estimate:
    """How long the what-if ``changes`` will take (``app.estimate``)."""
    run = state.cache.get(run_id)
    return whatif_estimate(run, run_id, state.cache.path_of(run_id), int(changes["steps"]),
                           getattr(state, "rates", None), state.whatif.pool.is_warm(run_id))


def answer(state, run_id: str, changes: dict[str, Any], background: bool = False
           ) -> dict[str, Any] | None:
    """``recompute``, or the stored run (``shown`` None) when ``changes`` are the run's own
    settings; None when a newer request replaced this one. Raises RunError, WorkerError
    or ValueError (one line).

    With ``background`` (or when the estimate is over ``SYNC_S`` or the worker is not
    warm) the recomputation becomes an action (``actions.ActionBoard``) and this returns
    at once {"job": {"id", "run"}, "status": what runs and how long it should take}; the
    page polls it (``poll_whatif``)."""
    run = state.cache.get(run_id)
    if changes_of(*own_controls(run)) == changes:
        state.actions.cancel_kind("whatif")
        return {"shown": None, "status": "On screen: the run's own setting (nothing to "
                                          "recompute).", "run": run}
    est = estimate_for(state, run_id, changes)
    if not background and state.whatif.pool.is_warm(run_id) and est.seconds <= SYNC_S:
        state.actions.cancel_kind("whatif")
        return recompute(state, run_id, changes)
    job = state.actions.start("whatif", run_id, est,
                              lambda report: recompute(state, run_id, changes, report))
    rollouts = len(run.learners) * len(run.task_ids)
    when = est.text()
    text = (f"Recomputing {rollouts} rollouts with {describe(changes)}"
            + (f": {when}." if when else "…"))
    return {"job": {"id": job, "run": run_id}, "status": text}


def poll_whatif(state, job: dict | None, cancel: bool) -> dict[str, Any]:
    """One poll (or the Cancel) of a background what-if: the progress row, and when it
    has landed {"shown", "status", "summary"} (else no_update for those)."""
    job_id = job.get("id") if isinstance(job, dict) else None
    out = poll_action(state.actions, job_id, cancel)
    out.update(shown=no_update, summary=no_update)
    if out["state"] == "done":
        result = state.actions.result(job_id)
        out.update(shown=result["shown"], status=result["status"],
                   summary=summary_children(result["run"]))
    elif out["state"] == "superseded":  # a newer change came after it finished: not drawn
        out["status"] = no_update
    elif out["state"] == "cancelled":
        out["status"] = ("Cancelled: nothing was changed; the picture shows the setting it "
                         "showed before (the controls may differ from it).")
    elif out["state"] in ("failed", "unknown"):
        out["status"] = f"Not recomputed: {inputs.public(out['error'], state.runs_dir)}"
    if out["status"] is None:
        out["status"] = no_update
    return out


def own_controls(run: Run) -> tuple:
    inner = run.config.get("inner", {})
    opt = inner.get("optimizer", "sgd")
    beta = inner.get("momentum", 0.9) if opt != "adam" else inner.get("beta1", 0.9)
    return opt, round(math.log10(inner.get("lr", 0.01)), 2), min(0.99, float(beta)), inner.get("steps", 16)


def same_picture(before: dict | None, after: dict | None, run_id: str | None) -> bool:
    """Whether WHATIF_SHOWN going from ``before`` to ``after`` leaves the picture as it is:
    both the stored run of ``run_id`` (a shown of another run draws the stored run too).
    Then no second full draw follows a run switch, whose controls move to the run's own."""
    def stored(shown):
        return not isinstance(shown, dict) or shown.get("run") != run_id
    return after is None and stored(before)


def keep_shown(state, run_id: str | None, shown: dict | None, name: str | None) -> dict:
    """Keep the what-if that is on screen (``shown``: the WHATIF_SHOWN store), not what the
    controls say: a change still being computed is not on screen. Returns {"status",
    "options", "pick"}: on success the picker lists the new variant and shows it."""
    keep = {"options": no_update, "pick": no_update}
    service: WhatIfService | None = getattr(state, "whatif", None)
    shown = shown if isinstance(shown, dict) and shown.get("run") == run_id else None
    live = service.live.get(run_id) if service and shown and run_id else None
    try:
        run = state.cache.get(run_id)
        if shown and shown.get("variant") in run.inner_variants:
            return {**keep, "status": f"Already kept: {shown['variant']!r} is on screen."}
        if not shown or shown.get("live") is None:
            return {**keep, "status": "Nothing to keep: the run's own setting is on screen. "
                                      "Change the optimiser, lr, β or K first."}
        if not live or live[0] != shown["live"]:
            return {**keep, "status": "Not kept: the picture is still being redrawn; press "
                                      "Keep again once it has settled."}
        variant = live[1]
        changes = dict(variant.info.get("changes") or {})
        name = (name or "").strip() or " ".join(f"{k}={v}" for k, v in changes.items())
        if name in run.inner_variants:
            raise ValueError(f"the run already has a variant named {name!r}; give another name")
        worker = service.pool.get(run_id, state.cache.path_of(run_id))
        worker.call("keep", changes=changes, name=name)  # never dropped: not behind the gate
        run = state.cache.get(run_id)  # re-read: run.json changed
    except (RunError, WorkerError, ValueError, TypeError) as exc:
        return {**keep, "status": f"Not kept: {exc}"}
    return {"options": variant_options(run), "pick": name,
            "status": f"Kept {name!r} ({describe(variant.inner)}), what is on screen: it is "
                      "in the run now, chosen under “Shown”."}


def run_changed(state, run_id: Any) -> tuple:
    """The controls for a picked run, its worker warmed only for a listed, readable run
    (``state.cache.checked``); the defaults, and no process, for anything else."""
    if run_id is None:  # nothing picked yet: leave the controls (a reset would start a what-if)
        return (no_update,) * 6
    try:
        path, run = state.cache.checked(run_id)
    except ValueError:  # RunError: not a run of this app
        return "sgd", -2, 0.9, 16, [], OWN
    state.whatif.pool.prewarm(run_id, path)
    return (*own_controls(run), variant_options(run), OWN)


def register_whatif(app, state) -> None:
    """Wire the what-if controls to ``app``; the service lives on ``state.whatif``."""
    state.whatif = WhatIfService()

    @app.callback(Output(ids.WHATIF_OPT, "value"), Output(ids.WHATIF_LR, "value"),
                  Output(ids.WHATIF_BETA, "value"), Output(ids.WHATIF_STEPS, "value"),
                  Output(ids.WHATIF_PICK, "options"), Output(ids.WHATIF_PICK, "value"),
                  Input(ids.RUN, "value"), Input(ids.RUNS_VERSION, "data"))
    def _run_changed(run_id, _version):
        return run_changed(state, run_id)

    pids = ids.WHATIF_PROGRESS

    @app.callback(Output(ids.WHATIF_SHOWN, "data"), Output(ids.WHATIF_STATUS, "children"),
                  Output(ids.SUMMARY, "children", allow_duplicate=True),
                  Output(pids.job, "data"), Output(pids.poll, "disabled"),
                  Output(pids.row, "style"), Output(pids.text, "children"),
                  Output(pids.bar, "style"),
                  State(ids.WHATIF_OPT, "value"), State(ids.WHATIF_LR, "value"),
                  State(ids.WHATIF_BETA, "value"), Input(ids.WHATIF_STEPS, "value"),
                  Input(ids.WHATIF_PICK, "value"), State(ids.RUN, "value"),
                  State(ids.WHATIF_SHOWN, "data"), prevent_initial_call=True)
    def _whatif(opt, log_lr, beta, steps, pick, run_id, before):
        # the optimiser and the lr and β sliders go to whatif_route (assets/whatif.js)
        if run_id is None:
            raise PreventUpdate
        idle = (no_update, True, {"display": "none"}, "", {"width": "0%"})
        try:
            if ctx.triggered_id == ids.WHATIF_PICK:
                if pick == LIVE:  # set by picker_for: the what-if on screen is shown already
                    raise PreventUpdate
                state.actions.cancel_kind("whatif")
                shown = {"run": run_id, "variant": None if pick == OWN else pick, "live": None}
                text = ("On screen: the run's own setting." if pick == OWN
                        else f"On screen: the kept variant {pick!r}.")
                return shown, text, summary_children(shown_run(state, run_id, shown)), *idle
            out = answer(state, run_id, changes_of(opt, log_lr, beta, steps), background=True)
        except (RunError, WorkerError, ValueError) as exc:
            return no_update, f"Not recomputed: {exc}", no_update, *idle
        if out is None:
            raise PreventUpdate  # a newer change replaced this one
        if "job" in out:  # progress shows at once; poll_whatif lands the result
            return (no_update, out["status"], no_update, out["job"], False, {}, out["status"],
                    {"width": "0%"})
        if same_picture(before, out["shown"], run_id):  # e.g. a new run's own settings
            return no_update, out["status"], no_update, *idle
        return out["shown"], out["status"], summary_children(out["run"]), *idle

    @app.callback(Output(ids.WHATIF_SHOWN, "data", allow_duplicate=True),
                  Output(ids.WHATIF_STATUS, "children", allow_duplicate=True),
                  Output(ids.SUMMARY, "children", allow_duplicate=True),
                  *progress_wiring(pids), prevent_initial_call=True)
    def _whatif_poll(_tick, _cancel, job):
        o = poll_whatif(state, job, ctx.triggered_id == pids.cancel)
        return o["shown"], o["status"], o["summary"], *(o[k] for k in PROGRESS_KEYS)

    @app.callback(Output(ids.WHATIF_STATUS, "children", allow_duplicate=True),
                  Output(ids.WHATIF_PICK, "options"), Output(ids.WHATIF_PICK, "value"),
                  Input(ids.WHATIF_KEEP, "n_clicks"), State(ids.WHATIF_SHOWN, "data"),
                  State(ids.WHATIF_NAME, "value"), State(ids.RUN, "value"),
                  prevent_initial_call=True)
    def _keep(_clicks, shown, name, run_id):
        o = keep_shown(state, run_id, shown, name)
        return o["status"], o["options"], o["pick"]

    @app.callback(Output(ids.WHATIF_PICK, "options", allow_duplicate=True),
                  Output(ids.WHATIF_PICK, "value", allow_duplicate=True),
                  Input(ids.WHATIF_SHOWN, "data"), State(ids.RUN, "value"),
                  State(ids.WHATIF_PICK, "value"), State(ids.WHATIF_PICK, "options"),
                  prevent_initial_call=True)
    def _follow(shown, run_id, current, listed):
        return picker_for(state, run_id, shown, current, listed)

    app.clientside_callback(  # no β for SGD
        "function (opt) { return (opt === 'momentum' || opt === 'adam') ? {} : {display: 'none'}; }",
        Output(ids.WHATIF_BETA_ROW, "style"), Input(ids.WHATIF_OPT, "value"))
    app.clientside_callback(  # the sliders and the optimiser: posted to whatif_route, drawn
        ClientsideFunction("trajviz_whatif", "change"),  # fast (assets/whatif.js)
        Input(ids.WHATIF_LR, "value"), Input(ids.WHATIF_BETA, "value"),
        Input(ids.WHATIF_OPT, "value"), State(ids.WHATIF_STEPS, "value"), State(ids.RUN, "value"),
        State(ids.SLICE, "value"), State(ids.TASK, "value"), State(ids.LEARNERS, "value"),
        State(ids.MODE, "value"), State(ids.INNER.frame, "data"), State(ids.WHATIF_SHOWN, "data"),
        State(ids.PANEL_SET, "value"), prevent_initial_call=True)


__all__ = ["WhatIfService", "answer", "beta_style", "changes_of", "keep_shown", "picker_for", "recompute",
           "register_whatif", "run_changed", "same_picture", "shown_run", "whatif_box"]
