"""The "Shown" picker of the what-if box: its entries (the run's own setting, the kept
variants, and a what-if on screen but not kept) and how each setting is described."""
from __future__ import annotations

from typing import Any

from dash import no_update

from trajviz.app.whatif_layout import LIVE, OWN
from trajviz.data.run import Run
from trajviz.store import RunError


def describe(inner: dict) -> str:
    opt = inner.get("optimizer", "sgd")
    extra = {"momentum": f", β {inner.get('momentum')}", "adam": f", β1 {inner.get('beta1')}"}.get(opt, "")
    return f"{opt}, lr {inner.get('lr'):.3g}{extra}, K {inner.get('steps')}"


def variant_options(run: Run) -> list[dict]:
    own = {"label": f"the run's own ({describe(run.config.get('inner', {}))})", "value": OWN}
    return [own, *({"label": f"{n} ({describe(v.inner)})", "value": n}
                   for n, v in run.inner_variants.items())]


def picker_for(state, run_id: Any, shown: Any, current: Any, listed: Any = None) -> tuple:
    """("Shown" picker options, value) for what is on screen (``shown``, the WHATIF_SHOWN
    store): a what-if not kept is listed as "on screen now" and picked; a kept variant or
    the run's own setting is picked. ``no_update`` where the picker already says so
    (``current`` value, ``listed`` options): a value set here would start the picker's own
    callback again, and options written twice at page load raced the run's own."""
    try:
        run = state.cache.get(run_id) if isinstance(run_id, str) else None
    except RunError:
        run = None
    if run is None:
        return no_update, no_update
    options = variant_options(run)
    shown = shown if isinstance(shown, dict) and shown.get("run") == run_id else {}
    live = state.whatif.live.get(run_id)
    if shown.get("live") is not None and live is not None:
        options.append({"label": f"on screen now: {describe(live[1].inner)} (not kept)",
                        "value": LIVE})
        value = LIVE
    else:
        value = shown.get("variant") or OWN
    return (no_update if options == listed else options), (no_update if value == current else value)


__all__ = ["describe", "picker_for", "variant_options"]
