"""``trajviz.show``: the app inline in a notebook (Jupyter, JupyterLab, VS Code).

One server per kernel: the first ``show`` starts a werkzeug server in a daemon thread on a
free 127.0.0.1 port; every runs folder shown gets its own app on it, mounted under a
secret path ``/<token>/`` (``guard.PrefixGate``: the URL is the key, as a Jupyter URL's
token is), and later calls reuse both. When the kernel stops, ``atexit`` stops the server
and the apps' background jobs. The cell shows the page in an iframe, with a link to open it
in a browser tab. A ``Run`` that is not in a folder yet is written to the kernel's temporary
runs folder first (one line says where). No torch here.
"""
from __future__ import annotations

import atexit
import html
import shutil
import sys
import tempfile
import threading
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Shown:
    """What ``show`` returns: the page's ``url`` (token included), drawn as an iframe
    ``height`` px tall by notebooks (``_repr_html_``) and as the URL elsewhere."""

    url: str
    runs_dir: Path
    run_id: str | None
    height: int = 820

    def _repr_html_(self) -> str:
        url = html.escape(self.url, quote=True)
        return (f'<iframe src="{url}" width="100%" height="{int(self.height)}" '
                'style="border:1px solid #ddd;border-radius:4px" title="trajviz"></iframe>'
                f'<div style="font-size:12px"><a href="{url}" target="_blank" rel="noopener">'
                'open trajviz in a browser tab</a></div>')

    def __repr__(self) -> str:
        return f"trajviz: {self.url}"


class NotebookServer:
    """The kernel's server: one port, one app per runs folder under its own token."""

    def __init__(self, port: int = 0):
        from werkzeug.serving import make_server

        from trajviz.app.guard import PrefixGate

        self.gate = PrefixGate()
        self._apps: dict[Path, tuple[str, Any]] = {}  # runs folder -> (token, Dash app)
        self._lock = threading.Lock()
        self._server = make_server(HOST, port, self.gate, threaded=True,
                                   request_handler=_quiet_handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="trajviz-show")
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_port

    def url_for(self, runs_dir: Path) -> str:
        """The page of ``runs_dir`` (an app is made on first use), with a trailing slash."""
        from trajviz.app import create_app
        from trajviz.app.guard import new_token
        from trajviz.store import sweep_stale

        runs_dir = Path(runs_dir).resolve()
        with self._lock:
            if runs_dir not in self._apps:
                token = new_token()
                sweep_stale(runs_dir)
                app = create_app(runs_dir, prefix=f"/{token}/")
                self.gate.mount(token, app.server)
                self._apps[runs_dir] = (token, app)
            token = self._apps[runs_dir][0]
        return f"http://{HOST}:{self.port}/{token}/"

    def stop(self) -> None:
        """Stop serving, and every app's background jobs and workers."""
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            apps = [app for _, app in self._apps.values()]
            self._apps.clear()
        for app in apps:
            app.trajviz_state.shutdown()


def _quiet_handler():
    from werkzeug.serving import WSGIRequestHandler

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args, **kwargs) -> None:  # no line per request in the cells
            pass

    return Quiet


class _Kernel:
    """What ``show`` keeps for the life of the kernel: its server and its scratch runs."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.server: NotebookServer | None = None
        self.scratch: Path | None = None  # runs written by show, removed at exit
        self.written: dict[str, weakref.ref] = {}  # run id in scratch -> the Run shown

    def serve(self, port: int | None) -> NotebookServer:
        with self.lock:
            if self.server is None:
                self.server = NotebookServer(port or 0)
                atexit.register(self.close)
            elif port and port != self.server.port:
                print(f"trajviz: the kernel's server is on port {self.server.port} already; "
                      f"port={port} is ignored", file=sys.stderr)
            return self.server

    def close(self) -> None:
        with self.lock:
            server, self.server = self.server, None
        if server is not None:
            server.stop()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def write(self, run) -> tuple[Path, str]:
        """``run`` in the scratch runs folder (written once per Run object): (folder, id)."""
        from trajviz.store import new_run_id, write_run

        with self.lock:
            if self.scratch is None:
                self.scratch = Path(tempfile.mkdtemp(prefix="trajviz-show-"))
            for run_id, ref in self.written.items():
                if ref() is run:
                    return self.scratch, run_id
            if not run.run_id or (self.scratch / run.run_id).exists():
                run = replace(run, run_id=new_run_id(str(run.config.get("family", "run"))))
            path = write_run(run, self.scratch)
            self.written[path.name] = weakref.ref(run)
        print(f"trajviz: run {path.name} saved to {path} for the page (a temporary folder, "
              "removed when the kernel stops; trajviz.store.write_run(run, 'runs') keeps it)")
        return self.scratch, path.name


_KERNEL = _Kernel()  # one per process: the "one server per kernel" the notebook reuses


def where(run_or_folder: Any) -> tuple[Path, str | None]:
    """(runs folder, run id or None) for a Run, a run folder or a runs folder."""
    from trajviz.data.run import Run

    if isinstance(run_or_folder, Run):
        return _KERNEL.write(run_or_folder)
    if not isinstance(run_or_folder, (str, Path)):
        raise ValueError("trajviz.show takes a Run (from trajviz.run_experiment or "
                         "trajviz.load_run), a run folder or a runs folder; got "
                         f"{type(run_or_folder).__name__}")
    path = Path(run_or_folder).expanduser()
    if not path.is_dir():
        raise ValueError(f"{str(path)!r} is not a folder; give a runs folder (e.g. 'runs'), "
                         "one run's folder in it, or a Run")
    if (path / "run.json").is_file():
        return path.resolve().parent, path.resolve().name
    return path, None


def show(run_or_folder: Any = "runs", *, height: int = 820, port: int | None = None) -> Shown:
    """The trajviz page of ``run_or_folder`` (a Run, a run folder, or a runs folder; default
    ``runs``), inline in the notebook. ``height``: of the iframe, in px; ``port``: for the
    kernel's server when this call starts it (default: a free one), e.g. to forward it.

    Every call reuses the kernel's one server; a run is picked in the page (``?run=<id>``)."""
    if not isinstance(height, int) or isinstance(height, bool) or not 200 <= height <= 4000:
        raise ValueError(f"height must be a whole number of pixels, 200..4000; got {height!r}")
    if port is not None and (not isinstance(port, int) or not 1 <= port <= 65535):
        raise ValueError(f"port must be 1..65535 (or None for a free one); got {port!r}")
    runs_dir, run_id = where(run_or_folder)
    url = _KERNEL.serve(port).url_for(runs_dir)
    return Shown(url + (f"?run={run_id}" if run_id else ""), Path(runs_dir).resolve(), run_id,
                 height)


__all__ = ["NotebookServer", "Shown", "show", "where"]
