"""``trajviz serve`` and ``trajviz demo``: the page on 127.0.0.1 (the demo runs made behind it
on a first start), after checking that the address can be served."""
from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

from trajviz.cli.args import UsageError, _threads, check_runs_dir


def cmd_serve(args: argparse.Namespace, demo=None) -> int:
    from trajviz.app import serve
    from trajviz.engine.executors import SCHEDULER_ENV, parse_scheduler

    check_runs_dir(args.runs, flag="")
    check_listen(args.host, args.port)
    if args.scheduler:  # the app's background jobs read it (they inherit the environment)
        parse_scheduler(args.scheduler)
        os.environ[SCHEDULER_ENV] = args.scheduler
    serve(args.runs, host=args.host, port=args.port, token=not args.no_token, demo=demo)
    return 0


def missing_demos(runs_dir: Path) -> list:
    """The demo configs with no readable run of their name in ``runs_dir``, the quickest
    first (by ``spec.budget``'s estimate), so the page has a run to show soonest."""
    from trajviz.spec import budget
    from trajviz.spec.config import demo_configs
    from trajviz.store import list_runs

    have = {e.name for e in list_runs(runs_dir) if e.ok}
    missing = [c for name, c in demo_configs().items() if name not in have]
    return sorted(missing, key=lambda c: budget.estimate(
        c, budget.family_sizes(c.family, c.family_options)).seconds)


def cmd_demo(args: argparse.Namespace) -> int:
    """Serve at once; the demo runs not made yet are made behind the page, quickest first,
    and fill its run picker as each is written (a second start reuses them)."""
    from trajviz.app.demo import DemoJob

    check_listen(args.host, args.port)
    check_runs_dir(args.runs, flag="--runs")
    threads = _threads(args)
    missing = missing_demos(args.runs)
    if missing:
        print(f"trajviz: making the demo runs {', '.join(c.name for c in missing)} behind the "
              "page (first start only); the page shows how far", file=sys.stderr)
    return cmd_serve(argparse.Namespace(runs=args.runs, host=args.host, port=args.port,
                                        scheduler=args.scheduler, no_token=args.no_token),
                     demo=DemoJob(tuple(missing), threads))


def _check_port(port: int) -> None:
    if not 1 <= port <= 65535:
        raise UsageError(f"--port must be 1..65535, got {port}")


def check_listen(host: str, port: int) -> None:
    """UsageError (one line) unless ``host:port`` can be served: a known interface and a
    free port. Checked by binding a socket, as the server will, then closing it."""
    _check_port(port)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise UsageError(f"--host {host!r} is not an address or name this machine can serve "
                         f"on ({exc}); e.g. 127.0.0.1") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as exc:
            if exc.errno in (98, 48):  # EADDRINUSE (Linux, macOS)
                raise UsageError(f"port {port} on {host} is already in use; "
                                 "choose another with --port") from None
            raise UsageError(f"cannot serve on {host}:{port}: {exc.strerror}") from None
