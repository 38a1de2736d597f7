"""What stands between the network and the callbacks: size limits, an access token for
non-loopback hosts, and no HTTP 500 (an unexpected error is one log line, no update).

``install(app, token)``: Flask's ``MAX_CONTENT_LENGTH`` caps a request body (413
beyond it); with a ``token``, every request must carry it, either as ``?token=…``
(which sets a cookie, as Jupyter does) or in that cookie, else 403.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import socket

from trajviz.app.inputs import MAX_REQUEST_BYTES

COOKIE = "trajviz_token"
_log = logging.getLogger("trajviz.app")


def is_loopback(host: str) -> bool:
    """Whether ``host`` serves this machine only (127.0.0.0/8, ::1, localhost)."""
    try:
        addrs = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError, ValueError):
        return False
    return bool(addrs) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs)


def new_token() -> str:
    return secrets.token_hex(24)


def install(app, token: str | None = None) -> None:
    """Limits and the error net on ``app`` (a Dash app); the token check if ``token``."""
    from flask import Response, request
    from werkzeug.exceptions import HTTPException

    server = app.server
    server.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    server.config["MAX_FORM_MEMORY_SIZE"] = MAX_REQUEST_BYTES

    @server.errorhandler(Exception)
    def _no_500(exc):  # an unexpected error: one log line, and the page keeps its state
        if isinstance(exc, HTTPException):
            return exc
        _log.error("trajviz: %s in %s: %s", type(exc).__name__, request.path,
                   " ".join(str(exc).split())[:300])
        return Response(status=204)

    if token is None:
        return

    @server.before_request
    def _check_token():
        given = request.args.get("token", "")
        if given and hmac.compare_digest(given, token):
            request.environ["trajviz.set_cookie"] = True
            return None
        if hmac.compare_digest(request.cookies.get(COOKIE, ""), token):
            return None
        return Response("trajviz: this server needs its access token: open the URL with "
                        "?token=... that it printed when it started\n", status=403,
                        mimetype="text/plain")

    @server.after_request
    def _set_cookie(response):
        if request.environ.get("trajviz.set_cookie"):
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
        return response


class PrefixGate:
    """A WSGI app serving apps each under a secret path prefix ``/<token>/`` (a capability
    URL): ``trajviz.show``'s server, shared by every runs folder a kernel shows.

    The token is in the path, not in a cookie: inside a notebook's iframe (VS Code's
    webview, a JupyterLab on ``localhost`` showing ``127.0.0.1``) the page is a third
    party, whose cookies browsers drop, while Dash prefixes every request it makes with
    its ``requests_pathname_prefix``. Any other path is 403; ``/<token>`` redirects to
    ``/<token>/``. Each app keeps ``install``'s limits and error net."""

    def __init__(self) -> None:
        self._apps: dict[str, object] = {}

    def mount(self, token: str, wsgi_app) -> None:
        """Serve ``wsgi_app`` (a Flask app, say) under ``/<token>/``; it sees paths without it."""
        self._apps = {**self._apps, token: wsgi_app}  # replaced whole: requests read it unlocked

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "") or "/"
        head, slash, rest = path[1:].partition("/")
        app = next((a for t, a in self._apps.items() if hmac.compare_digest(t, head)), None)
        if app is None or not head:
            start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"trajviz: this server needs the URL trajviz.show gave, token and all\n"]
        if not slash:
            query = environ.get("QUERY_STRING", "")
            start_response("308 Permanent Redirect", [("Location", f"{path}/" + (query and f"?{query}")),
                                                      ("Content-Length", "0")])
            return [b""]
        environ = {**environ, "SCRIPT_NAME": environ.get("SCRIPT_NAME", "") + "/" + head,
                   "PATH_INFO": "/" + rest}
        return app(environ, start_response)
