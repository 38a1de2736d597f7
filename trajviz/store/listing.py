"""Listing a runs folder: every run, broken ones with their reason, never fatal."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from trajviz.store.read import check_run
from trajviz.store.safe import MAX_RUN_JSON_BYTES, read_capped, run_folder
from trajviz.store.schema import RUN_FILE, RunEntry, RunError


def list_runs(runs_dir: str | Path) -> list[RunEntry]:
    """Every run folder in ``runs_dir``, newest first (by info's ``created``, then run_id).

    Cheap: reads run.json and the npz zip directories and array headers
    (``check_run``), never array data. A broken run is listed with ok=False and
    its reason and never stops the others. Dot-folders (including unfinished
    ``.tmp-*`` writes), plain files and symbolic links (a symlinked run is never
    listed or served) are ignored; a missing runs_dir gives [].
    """
    runs_dir = Path(runs_dir)
    try:
        with os.scandir(runs_dir) as it:
            names = [e.name for e in it]
    except (FileNotFoundError, NotADirectoryError):
        return []
    paths = [p for p in (_listed(runs_dir, n) for n in names) if p is not None]
    entries = [_entry(p) for p in paths]
    return sorted(entries, key=lambda e: (e.created, e.run_id), reverse=True)


def _listed(runs_dir: Path, name: str) -> Path | None:
    """The run folder ``name`` if ``safe.run_folder`` (the check every request naming a run
    passes) accepts it, else None: the listing shows exactly what can be named."""
    try:
        return run_folder(runs_dir, name)
    except RunError:
        return None


def _entry(path: Path) -> RunEntry:
    doc: Any = None
    ok, reason = True, ""
    try:
        doc = check_run(path)
    except RunError as exc:
        ok, reason = False, exc.reason
    except Exception as exc:  # noqa: BLE001 (a broken run must never stop the listing)
        ok, reason = False, " ".join(f"{type(exc).__name__}: {exc}".split())
    if doc is None:  # schema mismatch etc.: still show what run.json says, if anything
        try:
            doc = json.loads(read_capped(path, RUN_FILE, MAX_RUN_JSON_BYTES).decode("utf-8"))
        except Exception:  # noqa: BLE001
            doc = None
    doc = doc if isinstance(doc, dict) else {}
    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    return RunEntry(
        run_id=path.name, path=path, ok=ok, reason=reason,
        name=_text(config.get("name")), family=_text(config.get("family")),
        learners=_names(doc.get("learners")), created=_text(info.get("created")),
        views=_names(doc.get("views")),
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _names(items: Any) -> tuple[str, ...]:
    if not isinstance(items, list):
        return ()
    return tuple(p[0] for p in items if isinstance(p, list) and p and isinstance(p[0], str))
