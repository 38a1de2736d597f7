"""Fingerprint every figure, playback payload and app output, to prove a refactor
changed nothing: run it before and after, and diff the two JSON files.

    python bench/figure_fingerprint.py OUT.json [RUN_DIR ...]

For the synthetic runs of ``tests/app_fixtures.py`` (P = 2 and P = 3 with a
diverged learner) and every run folder given, it builds the surface figure
(2D/3D, several frames), each panel, the metrics figure, the meta view and
curves, the summary rows and table, the paper figures, the playback data, the
animated figures, the HTML page, the export figure lists and the app's
callback outputs, and writes {name: sha256 of its JSON} plus one digest of all.
Not a test (it reads run folders outside the repository) and not timed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
from pathlib import Path

import plotly.utils

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ADDRESS = re.compile(r" at 0x[0-9a-f]+>")


def _digest(obj) -> str:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)  # a typed record hashes as the dict it replaced
    if hasattr(obj, "to_json"):
        text = obj.to_json()
    else:
        text = json.dumps(obj, cls=plotly.utils.PlotlyJSONEncoder, sort_keys=True, default=repr)
    # what differs between two identical calls: plotly's random div ids in HTML, and the
    # memory address in the repr of dash's no_update
    text = UUID.sub("<uuid>", ADDRESS.sub("0x?", text))
    return hashlib.sha256(text.encode()).hexdigest()


def _draw(cb, state, *page):
    """``callbacks.draw`` on the page's inputs: bundled since issue 21, positional before."""
    if hasattr(cb, "PageInputs"):
        return cb.draw(state, cb.PageInputs(*page))
    return cb.draw(state, *page)


def _html_page(figs, title, notes):
    try:
        from trajviz.figures.formats import html_page
    except ImportError:
        from trajviz.figures import html_page
    return html_page(figs, title, notes)


def fingerprint_run(run, tag: str, out: dict[str, str]) -> None:
    from trajviz.figures import export as E
    from trajviz import figures as F

    def put(name, obj):
        out[f"{tag}/{name}"] = _digest(obj)

    names = list(run.learners)
    subsets = {"all": None, "sub": names[:2]}
    tasks = {"mean": None, "t0": 0}
    for view in run.views:
        for sname, learners in subsets.items():
            for tname, task in tasks.items():
                sel = F.select(run, view, task, learners)
                p = f"{view}/{sname}/{tname}"
                put(f"{p}/honesty", F.honesty(sel))
                put(f"{p}/honesty_line", F.honesty_line(sel))
                put(f"{p}/notes", list(sel.notes))
                for frame in (None, 0, 3):
                    put(f"{p}/surface2d/{frame}", F.surface_figure(sel, frame))
                    put(f"{p}/metrics/{frame}", F.metrics_figure(sel, frame))
                    for key in F.PANEL_KEYS:
                        put(f"{p}/panel/{key}/{frame}", F.panel_figure(sel, key, frame))
                put(f"{p}/surface3d", F.surface_figure(sel, 2, three_d=True))
                panel_ids = {k: f"panel-{k}" for k in F.PANEL_KEYS}
                for frame in (None, 1):
                    put(f"{p}/frame_data/{frame}", F.frame_data(sel, "main", panel_ids,
                                                                 frame=frame))
                put(f"{p}/frame_data3d", F.frame_data(sel, "main", panel_ids, True, 2))
                put(f"{p}/paper_surface", F.paper_surface_figure(sel))
                put(f"{p}/paper_metrics", F.paper_metrics_figure(sel))
                put(f"{p}/anim_surface", F.animated_surface_figure(sel))
                put(f"{p}/anim_metrics", F.animated_metrics_figure(sel))
            meta = F.select_meta(run, view, learners)
            q = f"{view}/{sname}/meta"
            for frame in (None, 0, 2):
                put(f"{q}/fig/{frame}", F.meta_figure(meta, frame))
                put(f"{q}/curves/{frame}", F.meta_curves_figure(meta, frame))
                put(f"{q}/data/{frame}", F.meta_frame_data(meta, "mg", "mc", frame))
            put(f"{q}/paper", F.paper_meta_figure(meta))
            put(f"{q}/anim", F.animated_meta_figure(meta))
        for what in ("surface", "metrics", "meta", "all"):
            put(f"{view}/export/paper/{what}",
                [(s, f.to_json()) for s, f in E.paper_figures(run, what, view, None)])
            put(f"{view}/export/anim/{what}",
                [f.to_json() for f in E.animated_figures(run, what, view, 0)])
    for sname, learners in subsets.items():
        rows = F.summary_rows(run, learners)
        put(f"summary/{sname}/rows", rows)
        put(f"summary/{sname}/best", F.best_learners(rows))
        put(f"summary/{sname}/table", F.summary_table_figure(rows))
        put(f"summary/{sname}/table_paper", F.summary_table_figure(rows, paper=True))
    for t in (None, 0):
        put(f"task_label/{t}", F.task_label(run, t))
    view = next(iter(run.views))
    put("html_page", _html_page(E.animated_figures(run, "all", view, None), "t", "n"))


def fingerprint_app(run, tag: str, out: dict[str, str], tmp: Path) -> None:
    """The app's callback outputs (figures, playback data, honesty card, summary table)."""
    from app_fixtures import write_run_dir

    from trajviz.app import callbacks as cb

    write_run_dir(tmp, run)
    state = cb.AppState.for_dir(tmp)
    run_id = run.run_id
    out[f"{tag}/app/controls"] = _digest(cb.run_controls(state, run_id))
    for view in run.views:
        for mode in ("2d", "3d"):
            for task in ("mean", "0"):
                for frame in (None, 2, 99):
                    out[f"{tag}/app/draw/{view}/{mode}/{task}/{frame}"] = _digest(
                        _draw(cb, state, run_id, view, task, list(run.learners), mode, frame))
        out[f"{tag}/app/draw/{view}/none"] = _digest(
            _draw(cb, state, run_id, view, "mean", [], "2d", 0))
        for frame in (None, 1, -5):
            out[f"{tag}/app/meta/{view}/{frame}"] = _digest(
                cb.draw_meta(state, run_id, view, list(run.learners), frame))


def main(argv: list[str]) -> None:
    import tempfile

    from app_fixtures import make_run

    from trajviz.store import load_run

    out: dict[str, str] = {}
    fixtures = {"fixture2": make_run(run_id="fixture2"),
                "fixture3": make_run(run_id="fixture3", n_params=3, diverge="reptile")}
    for tag, run in fixtures.items():
        fingerprint_run(run, tag, out)
        with tempfile.TemporaryDirectory() as tmp:
            fingerprint_app(run, tag, out, Path(tmp))
    for folder in argv[1:]:
        run = load_run(Path(folder), heavy=False)
        fingerprint_run(run, Path(folder).name, out)
    total = hashlib.sha256("".join(f"{k}={v}\n" for k, v in sorted(out.items())).encode())
    out["ALL"] = total.hexdigest()
    Path(argv[0]).write_text(json.dumps(out, indent=1, sort_keys=True))
    print(f"{len(out) - 1} fingerprints, digest {out['ALL']}")


if __name__ == "__main__":
    main(sys.argv[1:])
