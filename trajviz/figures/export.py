"""Figures of a run written to files: paper figures (PDF, SVG, PNG) and standalone HTML.

``export_run`` is what ``trajviz export`` calls: multi-panel figures at fixed
sizes and fonts in the app's colours. ``export_current`` renders what the
browser shows (selection and playback step) as one file's bytes. Both build
their figures with ``trajviz.figures``; static images go through kaleido,
HTML inlines plotly.js so the file works offline.
"""
from __future__ import annotations

import re
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trajviz import figures as F
from trajviz.data.run import Run
from trajviz.figures.formats import figure_bytes, html_page, png_dpi, write_images
from trajviz.figures.options import FigureOptions, figure_options
from trajviz.figures.presets import CSS_DPI, preset_of
from trajviz.store.files import write_file
from trajviz.viewmodel.selection import select, select_meta, summary_rows, task_label

FORMATS = ("pdf", "svg", "png", "html")
VIEWS = ("surface", "metrics", "meta", "all")
PNG_SCALE = 3  # 3 × 96 dpi: print quality at the figure's size in inches
PAPER_DPI = 300  # PNGs of paper presets
# Each static export runs kaleido, which starts Chromium: at most KALEIDO_SLOTS at once in
# this process; others wait up to KALEIDO_WAIT_S and are then refused with a message.
KALEIDO_SLOTS = 1
KALEIDO_WAIT_S = 30.0
_KALEIDO = threading.BoundedSemaphore(KALEIDO_SLOTS)


def file_stem(text: str) -> str:
    """``text`` as a safe file-name part: ``[A-Za-z0-9._-]``, no leading dot, ≤ 200 chars.
    Names in a run.json are untrusted: a view named ``../x`` becomes ``x``."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip(".-_")[:200].strip(".-_")
    return stem or "view"


def _inside(out: Path, name: str) -> Path:
    """``out/name``, refused unless it stays directly inside ``out``."""
    path = out / name
    if path.resolve().parent != out.resolve():
        raise ValueError(f"refusing to write {name!r} outside the output folder")
    return path


class _Kaleido:
    """The process-wide cap on concurrent kaleido (Chromium) renders."""

    def __enter__(self) -> None:
        if not _KALEIDO.acquire(timeout=KALEIDO_WAIT_S):
            raise ValueError("another static export is still rendering; try again in a moment "
                             "(HTML exports need no renderer)")

    def __exit__(self, *exc: Any) -> None:
        _KALEIDO.release()


def check_request(run: Run, fmt: str, view: str, slice_name: str | None,
                  task: int | None) -> str:
    """Validate an export request; returns the slice name. ValueError (one line) if bad."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; accepted: {', '.join(FORMATS)}")
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; accepted: {', '.join(VIEWS)}")
    if not run.learners or not run.views:
        raise ValueError(f"run {run.run_id!r} holds no learners or no slices: nothing to draw")
    name = slice_name or next(iter(run.views))
    if name not in run.views:
        raise ValueError(f"unknown slice {name!r}; run {run.run_id!r} has {', '.join(run.views)}")
    n = len(run.task_ids)
    if task is not None and (isinstance(task, bool) or not isinstance(task, int)
                             or not 0 <= task < n):
        raise ValueError(f"task must be a held-out task index 0..{n - 1} (or none for the "
                         f"mean), got {task!r}")
    return name


def paper_figures(run: Run, view: str, slice_name: str, task: int | None,
                  learners: Sequence[str] | None = None) -> list[tuple[str, object]]:
    """[(file stem, figure)] of the paper figures for ``view``."""
    sel = select(run, slice_name, task, learners)
    tag = f"{slice_name}-{'mean' if task is None else f'task{task}'}"
    out = []
    if view in ("surface", "all"):
        out.append((f"surface-{tag}", F.paper_surface_figure(sel)))
    if view in ("metrics", "all"):
        out.append((f"metrics-{tag}", F.paper_metrics_figure(sel)))
    if view in ("meta", "all"):
        out.append((f"meta-{slice_name}", F.paper_meta_figure(select_meta(run, slice_name,
                                                                            learners))))
    if view == "all":
        table = F.summary_table_figure(summary_rows(run, learners), paper=True)
        table.update_layout(width=F.PAPER_WIDTH, height=80 + 28 * (len(sel.learners) + 1))
        out.append(("summary", table))
    return out


def animated_figures(run: Run, view: str, slice_name: str, task: int | None,
                     learners: Sequence[str] | None = None) -> list[object]:
    """The plotly-frames animations of ``view`` for standalone HTML."""
    sel = select(run, slice_name, task, learners)
    figs = []
    if view in ("surface", "all"):
        fig = F.animated_surface_figure(sel)
        fig.update_layout(height=760)
        figs.append(fig)
    if view in ("metrics", "all"):
        fig = F.animated_metrics_figure(sel)
        fig.update_layout(height=720)
        figs.append(fig)
    if view in ("meta", "all"):
        meta = select_meta(run, slice_name, learners)
        fig = F.animated_meta_figure(meta)
        fig.update_layout(height=760)
        figs.append(fig)
        curves = F.meta_curves_figure(meta)
        curves.update_layout(height=380)
        figs.append(curves)
    if view == "all":
        table = F.summary_table_figure(summary_rows(run, learners))
        table.update_layout(height=90 + 30 * (len(sel.learners) + 1))
        figs.append(table)
    return figs


def _html_notes(run: Run, task: int | None) -> str:
    label = task_label(run, task)
    return (f"Run {run.run_id} ({run.config.get('family', '?')}), {label}. Press ▶ Play under each "
            "figure. Made with trajviz; plotly.js is inlined, so this file works offline.")


def export_run(run: Run, out: Path, fmt: str, view: str, *, slice_name: str | None = None,
               task: int | None = None, preset: str | None = None) -> list[Path]:
    """Write the figures of ``view`` (surface, metrics, meta or all) of ``run`` to folder
    ``out`` as ``fmt`` (pdf, svg, png: fixed-size paper figures; html: one standalone
    animated page). ``task`` None draws the mean over held-out tasks. Returns the paths.
    Raises ValueError with one line on a bad request or when rendering fails."""
    name = check_request(run, fmt, view, slice_name, task)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output {str(out)!r} is a file; give a folder")
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "html":
        path = _inside(out, f"{view}-{file_stem(name)}-{'mean' if task is None else f'task{task}'}.html")
        page = html_page(animated_figures(run, view, name, task), f"trajviz · {run.run_id}",
                           _html_notes(run, task))
        return [write_file(path, page)]
    if preset is not None:
        from trajviz.figures.api import figure
        views = ("surface", "metrics", "meta") if view == "all" else (view,)
        where = "mean" if task is None else f"task{task}"
        figs = [(f"{v}-{name}-{'mean' if v == 'meta' else where}-{preset}",
                 figure(run, v, slice_name=name, task=task, preset=preset)) for v in views]
    else:
        figs = paper_figures(run, view, name, task)
    paths = [_inside(out, f"{file_stem(stem)}.{fmt}") for stem, _ in figs]
    scale = (PAPER_DPI / CSS_DPI if preset else PNG_SCALE) if fmt == "png" else 1
    try:
        with _Kaleido(), tempfile.TemporaryDirectory() as scratch:
            # one kaleido session for all (much faster than one at a time), rendered aside
            # and moved into ``out`` whole: a failed export leaves nothing half-written there
            rendered = [Path(scratch) / p.name for p in paths]
            write_images([f for _, f in figs], rendered, fmt, scale=scale)
            for src, path in zip(rendered, paths, strict=True):
                data = src.read_bytes()
                write_file(path, png_dpi(data, CSS_DPI * scale) if fmt == "png" else data)
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - kaleido/Chrome fail in many types: one line
        raise ValueError(f"could not render {fmt} with kaleido: {' '.join(str(exc).split())}"
                         ) from None
    return paths


def export_current(run: Run, fmt: str, view: str, options: FigureOptions | None = None,
                   **keywords: Any) -> tuple[str, bytes]:
    """What the page shows, as (file name, bytes): the surface, metric panels or meta view
    at the current step (static formats) or animated (html). ``options`` (a
    ``FigureOptions``, its fields also as keywords): slice, task, learners, frame, three_d;
    ``preset`` (column, page) makes a paper figure of that width instead of the screen one,
    with ``title``. The name says what is in the file: run, view, slice, task (or mean) and
    preset."""
    o = figure_options(options, keywords)
    slice_name, task, learners, frame = o.slice_name, o.task, o.learners, o.frame
    three_d, preset, title = o.three_d, o.preset, o.title
    if view == "all":
        raise ValueError("the page exports one view at a time: surface, metrics or meta")
    name = check_request(run, fmt, view, slice_name, task)
    if learners is not None and not list(learners):
        raise ValueError("no learner is ticked: tick at least one to export")
    if preset is not None:
        preset_of(preset)
    where = "mean" if task is None or view == "meta" else f"task{task}"
    stem = file_stem(f"trajviz-{run.run_id}-{view}-{name}-{where}"
                     + (f"-{preset}" if preset else ""))
    if fmt == "html":
        page = html_page(animated_figures(run, view, name, task, learners),
                           f"trajviz · {run.run_id} · {view}", _html_notes(run, task))
        return f"{stem}.html", page.encode("utf-8")
    if preset is not None:
        from trajviz.figures.api import figure
        fig = figure(run, view, slice_name=name, task=task, learners=learners, frame=frame,
                     preset=preset, title=title)
        try:
            with _Kaleido():
                data = figure_bytes(fig, fmt, scale=PAPER_DPI / CSS_DPI if fmt == "png" else 1)
        except ValueError:
            raise
        except Exception as exc:  # noqa: BLE001 - as below
            raise ValueError(f"could not render {fmt} with kaleido: "
                             f"{' '.join(str(exc).split())}") from None
        return f"{stem}.{fmt}", data
    sel = select(run, name, task, learners)
    if view == "surface":
        fig = F.surface_figure(sel, frame, three_d=three_d)
        fig.update_layout(width=900, height=720)
    elif view == "metrics":
        fig = F.metrics_figure(sel, frame)
        fig.update_layout(width=1100, height=640)
    else:
        fig = F.paper_meta_figure(select_meta(run, name, learners))
    try:
        with _Kaleido():
            data = figure_bytes(fig, fmt, scale=2 if fmt == "png" else 1)
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - as above
        raise ValueError(f"could not render {fmt} with kaleido: {' '.join(str(exc).split())}"
                         ) from None
    return f"{stem}.{fmt}", data
