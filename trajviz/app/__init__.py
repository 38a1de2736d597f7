"""The Dash app: ``create_app(runs_dir)`` builds it, ``serve(runs_dir)`` runs it.

Layout in ``layout.py`` (built from the reusable pieces in ``components.py``),
thin callbacks in ``callbacks.py`` (parse, call ``trajviz.viewmodel.selection`` and a
builder, return), the locked run cache in ``state.py``, ids in ``ids.py``,
background runs in ``jobs.py``; CSS and the clientside playback live in the
repository's ``assets/`` folder. Nothing here imports torch: names come from
``trajviz.spec.names``.
"""
from __future__ import annotations

import atexit
from pathlib import Path

from dash import Dash

ASSETS = Path(__file__).resolve().parent / "assets"  # the CSS and clientside JS (package data)


def create_app(runs_dir: str | Path, token: str | None = None, *, prefix: str = "/",
               demo=None) -> Dash:
    """A Dash app showing the runs in ``runs_dir`` (read when the page loads, not here).
    With ``token``, every request must carry it (``guard.install``). ``prefix``: the path
    the browser reaches it under (``trajviz.show`` mounts apps at ``/<token>/``; the app's
    own routes stay at ``/``). ``demo``: a ``demo.DemoJob``, the runs to make behind the
    page as one background job (``trajviz demo``; its progress is shown in the page)."""
    from trajviz.app.callbacks import register
    from trajviz.app.demo import register_demo
    from trajviz.app.guard import install
    from trajviz.app.layout import build_layout
    from trajviz.app.state import AppState
    from trajviz.app.whatif import register_whatif
    from trajviz.app.whatif_route import register_route
    from trajviz.spec.names import LEARNER_NAMES
    from trajviz.spec.plugins import offered_families

    if not (ASSETS / "playback.js").is_file():
        raise ValueError(f"trajviz's browser assets are missing from {ASSETS}; "
                         "reinstall with: pip install -e . (from the repository)")
    state = AppState.for_dir(Path(runs_dir))
    app = Dash(__name__, assets_folder=str(ASSETS), title="trajviz", update_title=None,
               serve_locally=True, routes_pathname_prefix="/", requests_pathname_prefix=prefix)
    app.layout = build_layout(offered_families(), list(LEARNER_NAMES))
    register(app, state)
    register_whatif(app, state)
    register_route(app, state)  # the sliders' fast JSON route (assets/whatif.js)
    register_demo(app, state)
    install(app, token)
    if demo is not None and demo.configs:
        state.demo = demo.start(state.jobs)
    app.trajviz_state = state  # for tests and shutdown
    return app


def serve(runs_dir: Path, host: str = "127.0.0.1", port: int = 8050, token: bool = True,
          demo=None) -> None:
    """Serve the app on ``host:port`` until interrupted (127.0.0.1: this machine only).

    A non-loopback ``host`` prints a warning and, unless ``token`` is False, requires a
    generated access token (printed in the URL, like Jupyter's). SIGTERM stops the
    server like Ctrl-C, so running jobs are stopped; stale temporary run folders are
    swept first. ``demo``: runs made behind the page (a ``demo.DemoJob``)."""
    import signal
    import sys

    from trajviz.app.guard import is_loopback, new_token
    from trajviz.store import sweep_stale

    secret = None
    query = ""
    if not is_loopback(host):
        print(f"trajviz: warning: serving on {host}, reachable from the network; anyone who "
              "can reach it can read these runs and start jobs", file=sys.stderr)
        if token:
            secret = new_token()
            query = f"?token={secret}"
        else:
            print("trajviz: warning: --no-token: no access token is required", file=sys.stderr)
    sweep_stale(runs_dir)
    app = create_app(runs_dir, token=secret, demo=demo)
    atexit.register(app.trajviz_state.shutdown)  # every worker and job it started

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    shown = f"[{host}]" if ":" in host else host
    print(f"trajviz: serving {Path(runs_dir).name or runs_dir} on http://{shown}:{port}/{query} "
          "(Ctrl-C stops)", flush=True)
    app.run(host=host, port=port, debug=False)


__all__ = ["ASSETS", "create_app", "serve"]
