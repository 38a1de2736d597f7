"""The page's run picker, asked over HTTP as the browser asks it: the Dash callback that
fills it on page load (``app/callbacks.py``'s ``_runs``). For tests and bench scripts."""
from __future__ import annotations

import json
import urllib.request
from urllib.parse import urlsplit


def picker(url: str, timeout: float = 60) -> tuple[list[str], str | None]:
    """(run ids the picker lists, the run it shows) of the page at ``url`` (prefix, and
    ``?run=`` if any, included), as a freshly loaded page sees them."""
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/"
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
    request = urllib.request.Request(base + "_dash-update-component", method="POST",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        answer = json.loads(reply.read())["response"]["run-picker"]
    return [o["value"] for o in answer["options"]], answer["value"]
