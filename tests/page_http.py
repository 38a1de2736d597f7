"""The page's run picker, asked over HTTP as the browser asks it: the Dash callback that
fills it on page load (``app/callbacks.py``'s ``_runs``). For tests and bench scripts."""
from __future__ import annotations

import json
import urllib.request
from urllib.parse import urlsplit


def _post(url: str, body: dict, timeout: float) -> dict:
    """One Dash callback request to the app at ``url``: its ``response``."""
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/"
    request = urllib.request.Request(base + "_dash-update-component", method="POST",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        return json.loads(reply.read())["response"]


def picker(url: str, timeout: float = 60) -> tuple[list[str], str | None]:
    """(run ids the picker lists, the run it shows) of the page at ``url`` (prefix, and
    ``?run=`` if any, included), as a freshly loaded page sees them."""
    parts = urlsplit(url)
    body = {"output": "..run-picker.options...run-picker.value..",
            "outputs": [{"id": "run-picker", "property": "options"},
                        {"id": "run-picker", "property": "value"}],
            "inputs": [{"id": "url", "property": "pathname", "value": parts.path or "/"},
                       {"id": "runs-refresh", "property": "n_clicks", "value": None},
                       {"id": "runs-version", "property": "data",
                        "value": {"n": 0, "select": None}}],
            "changedPropIds": ["url.pathname"],
            "state": [{"id": "run-picker", "property": "value", "value": None},
                      {"id": "url", "property": "search",
                       "value": f"?{parts.query}" if parts.query else ""}]}
    answer = _post(url, body, timeout)["run-picker"]
    return [o["value"] for o in answer["options"]], answer["value"]


def demo_line(url: str, timeout: float = 60) -> str:
    """What the page's demo progress line says on load ("" when no demo runs are made)."""
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/"
    with urllib.request.urlopen(base + "_dash-dependencies", timeout=timeout) as reply:
        spec = next(c for c in json.loads(reply.read()) if "demo-text.children" in c["output"])
    outputs = [dict(zip(("id", "property"), o.split("@")[0].rsplit(".", 1)))
               for o in spec["output"].strip(".").split("...")]
    body = {"output": spec["output"], "outputs": outputs,
            "inputs": [{"id": "url", "property": "pathname", "value": parts.path},
                       {"id": "demo-poll", "property": "n_intervals", "value": None}],
            "changedPropIds": ["url.pathname"],
            "state": [{"id": "demo-seen", "property": "data", "value": 0},
                      {"id": "runs-version", "property": "data", "value": {"n": 0}}]}
    return _post(url, body, timeout).get("demo-text", {}).get("children", "")
