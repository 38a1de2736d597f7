"""What every command of the CLI shares: a bad command line as one line (exit status 2),
and TOML values given on the command line (``--set key=value``)."""
from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any


class UsageError(ValueError):
    """A bad command line: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise UsageError(f"{self.prog}: {message} (see --help)")


def parse_value(text: str) -> Any:
    """A TOML value (``0.05``, ``true``, ``"adam"``, ``["pca"]``); bare words are strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def add_trust_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trust-plugin", action="append", default=[], metavar="MODULE:FUNCTION",
                   help="run this undeclared family plugin of your own (repeatable); a config "
                        "file can name declared plugins only (docs/plugins.md)")


def check_runs_dir(path: Path, flag: str = "--out") -> None:
    if path.exists() and not path.is_dir():
        raise UsageError(f"runs directory {str(path)!r} is a file; give a folder"
                         + (f" with {flag}" if flag else ""))


def _threads(args: argparse.Namespace) -> int | None:
    if args.threads is not None and args.threads <= 0:
        raise UsageError(f"--threads must be a positive integer, got {args.threads}")
    return args.threads
