"""The Dash app: ``create_app(runs_dir)`` builds it, ``serve(runs_dir)`` runs it.

Layout in ``layout.py`` (built from the reusable pieces in ``components.py``),
thin callbacks in ``callbacks.py`` (parse, call ``trajviz.selection`` and a
builder, return), the locked run cache in ``state.py``, ids in ``ids.py``,
background runs in ``jobs.py``; CSS and the clientside playback live in the
repository's ``assets/`` folder. Nothing here imports torch: names come from
``trajviz.names``.
"""
from __future__ import annotations

import atexit
from pathlib import Path

from dash import Dash


def _assets_folder() -> Path:
    """The CSS and clientside JS: the repository's assets/ (editable installs and
    checkouts), shipped as ``trajviz.assets`` in a wheel (pyproject.toml)."""
    checkout = Path(__file__).resolve().parents[2] / "assets"
    if (checkout / "playback.js").is_file():
        return checkout
    return Path(__file__).resolve().parents[1] / "assets"


ASSETS = _assets_folder()


def create_app(runs_dir: str | Path) -> Dash:
    """A Dash app showing the runs in ``runs_dir`` (read when the page loads, not here)."""
    from ..names import FAMILY_NAMES, LEARNER_NAMES
    from .callbacks import register
    from .layout import build_layout
    from .state import AppState

    if not (ASSETS / "playback.js").is_file():
        raise ValueError(f"trajviz's browser assets are missing from {ASSETS}; "
                         "reinstall with: pip install -e . (from the repository)")
    state = AppState.for_dir(Path(runs_dir))
    app = Dash(__name__, assets_folder=str(ASSETS), title="trajviz", update_title=None,
               serve_locally=True)
    app.layout = build_layout(sorted(FAMILY_NAMES), list(LEARNER_NAMES))
    register(app, state)
    app.trajviz_state = state  # for tests and shutdown
    return app


def serve(runs_dir: Path, host: str = "127.0.0.1", port: int = 8050) -> None:
    """Serve the app on ``host:port`` until interrupted (127.0.0.1: this machine only)."""
    app = create_app(runs_dir)
    atexit.register(app.trajviz_state.jobs.shutdown)
    print(f"trajviz: serving {Path(runs_dir).resolve()} on http://{host}:{port}/ (Ctrl-C stops)")
    app.run(host=host, port=port, debug=False)


__all__ = ["ASSETS", "create_app", "serve"]
