"""Every value a browser sends, type-checked into a message before it is used.

The page's values arrive as JSON from any client, not only from our layout, so each
callback step parses its inputs here first: a wrong type or size raises ValueError
with one line naming the field and what is accepted (shown in the page, never an
HTTP 500). ``public`` removes the server's absolute runs path from a message.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trajviz.viewmodel.selection import PANEL_GROUPS, PANEL_KEYS, PANELS

MAX_REQUEST_BYTES = 256 * 1024      # a callback request body (Flask MAX_CONTENT_LENGTH)
MAX_TEXT = 200                      # ids, names, option values
MAX_NAME = 120                      # the job name field
MAX_LIST = 32                       # learner ticks
MAX_INT = 10**9
MEAN = "mean"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def run_id(value: Any) -> str | None:
    """A run folder name, or None; never a path."""
    if value is None:
        return None
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValueError(f"run {_show(value)} is not a run folder of this app; accepted: 1-{MAX_TEXT} "
                         "letters, digits, '.', '_', '-'")
    return value


def family(value: Any) -> str:
    """A family the New-run form offers: built in or an installed ``trajviz.families``
    entry point (``spec.plugins.offered_families``); never a ``module:function``."""
    from trajviz.spec.plugins import offered_families

    value = text(value, "family", empty=False)
    offered = offered_families()
    if value not in offered:
        raise ValueError(f"family {_show(value)} is not one of {', '.join(offered)}; the page "
                         "starts runs of these only (declare your own: docs/plugins.md)")
    return value


def query_run(search: Any) -> str | None:
    """The run a page URL's query names (``?run=<id>``, as ``trajviz.show`` links a run), or
    None when it names none or no valid run id (the page then shows the newest run)."""
    from urllib.parse import parse_qs

    if not isinstance(search, str) or len(search) > 4 * MAX_TEXT:
        return None
    wanted = parse_qs(search.lstrip("?")).get("run", [None])[-1]
    return wanted if wanted is not None and _ID.fullmatch(wanted) else None


def text(value: Any, what: str, limit: int = MAX_TEXT, empty: bool = True) -> str | None:
    """A short string (or None when ``empty``)."""
    if value is None and empty:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"{what} must be text of at most {limit} characters, got {_show(value)}")
    return value


def choice(value: Any, what: str, accepted: tuple[str, ...], default: str | None = None) -> str:
    if value is None and default is not None:
        return default
    if not isinstance(value, str) or value not in accepted:
        raise ValueError(f"{what} {_show(value)} is not one of {', '.join(accepted)}")
    return value


def task(value: Any) -> int | None:
    """'mean' or nothing -> None; a whole number ≥ 0 (3 or '3') -> 3. 1.5 and true are refused."""
    if value in (None, "", MEAN):
        return None
    if _is_int(value) and 0 <= value <= MAX_INT:
        return value
    if isinstance(value, str) and value.isdigit() and len(value) <= 9:
        return int(value)
    raise ValueError(f"task {_show(value)} is not a held-out task; accepted: 'mean' or a "
                     "whole number 0, 1, 2, …")


def names(value: Any, what: str = "learners") -> list[str]:
    """A list of at most MAX_LIST short strings (None -> [])."""
    if value is None:
        return []
    if (not isinstance(value, list) or len(value) > MAX_LIST
            or not all(isinstance(v, str) and len(v) <= MAX_TEXT for v in value)):
        raise ValueError(f"{what} must be a list of at most {MAX_LIST} names, got {_show(value)}")
    return list(value)


def frame(value: Any) -> int | None:
    """A playback step ≥ 0, or None."""
    if value is None:
        return None
    if not _is_int(value) or not 0 <= value <= MAX_INT:
        raise ValueError(f"frame {_show(value)} must be a whole number ≥ 0")
    return value


def whole(value: Any, what: str) -> int:
    """A form's whole number: 3, 3.0 or '3' (a browser's number field); not 1.5 or true."""
    if value is None or value == "":
        raise ValueError(f"{what} is empty")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or (
            isinstance(value, str) and len(value) > 12):
        raise ValueError(f"{what} must be a whole number, got {_show(value)}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{what} must be a whole number, got {_show(value)}") from None
    if not number.is_integer() or abs(number) > MAX_INT:
        raise ValueError(f"{what} must be a whole number, got {_show(value)}")
    return int(number)


def job_id(value: Any) -> str | None:
    """The job store's id: a short name (an unknown one is reported by the job manager)."""
    if isinstance(value, dict):
        value = value.get("id")
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value):
        raise ValueError(f"job {_show(value)} is not a job id")
    return value


def public(message: str, runs_dir: Path) -> str:
    """``message`` with the server's absolute runs path shown as its folder name only."""
    root = str(Path(runs_dir))
    return message.replace(root + "/", "").replace(root, Path(root).name or ".")


def _show(value: Any) -> str:
    """A value for a message: its repr, cut to 40 characters."""
    text_ = repr(value)
    return text_ if len(text_) <= 40 else text_[:37] + "..."


@dataclass(frozen=True)
class PageInputs:
    """What the page shows, as its controls send it (raw: each value is parsed by the
    functions above where it is used): run, slice (``view``), task, ticked learners, mode
    ("2d" | "3d"), frame, zoom, the what-if setting ``shown`` and the panel set ``group``
    (``PANEL_GROUPS``; None: every panel). One bundle for the callback steps that draw or
    export the page's picture (``draw.draw``, ``callbacks.export``, ``whatif_fast``)."""

    run_id: Any = None
    view: Any = None
    task: Any = None
    learners: Any = None
    mode: Any = "2d"
    frame: Any = None
    zoom: Any = "fit"
    shown: Any = None
    group: Any = None


def shown_keys(group: Any) -> tuple[str, ...]:
    """The panels of set ``group`` (PANELS order); every panel for None or an unknown set."""
    if group not in {g for g, _ in PANEL_GROUPS}:
        return PANEL_KEYS
    return tuple(p.key for p in PANELS if group in p.groups)
