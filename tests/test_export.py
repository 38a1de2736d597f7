"""Paper figures and standalone HTML: real files through kaleido, checked by their bytes."""
from __future__ import annotations

import re

import pytest
from app_fixtures import make_run

from trajviz import figures as F
from trajviz.figures.export import export_current, export_run
from trajviz.figures.formats import html_page


@pytest.fixture(scope="module")
def run():
    return make_run(n_params=3)


def test_all_views_as_pdf(run, tmp_path):
    paths = export_run(run, tmp_path / "figs", "pdf", "all")
    assert [p.name for p in paths] == ["surface-pca-mean.pdf", "metrics-pca-mean.pdf",
                                       "meta-pca.pdf", "summary.pdf"]
    for p in paths:
        data = p.read_bytes()
        assert data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]


def test_surface_as_svg_and_metrics_as_png(run, tmp_path):
    (svg,) = export_run(run, tmp_path, "svg", "surface", slice_name="random", task=1)
    assert svg.name == "surface-random-task1.svg"
    text = svg.read_text(encoding="utf-8")
    assert text.lstrip().startswith("<svg") and "task 1" in text
    width = re.search(r'<svg[^>]*width="(\d+)"', text).group(1)
    assert int(width) == 720  # paper width: fixed, whatever the screen
    (png,) = export_run(run, tmp_path, "png", "metrics")
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (w, h) == (720 * 3, 470 * 3)  # print resolution, same aspect


def test_html_is_standalone_and_animated(run, tmp_path):
    (page,) = export_run(run, tmp_path, "html", "all", task=0)
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert '<script src="http' not in text  # plotly.js inlined: works offline
    assert text.count("Plotly.addFrames") == 3  # surface, metric panels, meta-training
    assert "▶ Play" in text and "task 0" in text


@pytest.mark.parametrize("kwargs, match", [
    ({"fmt": "jpg", "view": "all"}, "unknown format 'jpg'; accepted: pdf, svg, png, html"),
    ({"fmt": "pdf", "view": "everything"}, "unknown view 'everything'"),
    ({"fmt": "pdf", "view": "all", "slice_name": "exact"}, "unknown slice 'exact'"),
    ({"fmt": "pdf", "view": "all", "task": 9}, r"task must be a held-out task index 0\.\.3"),
])
def test_bad_requests_are_one_line_errors(run, tmp_path, kwargs, match):
    fmt, view = kwargs.pop("fmt"), kwargs.pop("view")
    with pytest.raises(ValueError, match=match) as err:
        export_run(run, tmp_path, fmt, view, **kwargs)
    assert "\n" not in str(err.value)
    assert not any(tmp_path.iterdir())


def test_output_must_be_a_folder(run, tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        export_run(run, target, "html", "surface")


def test_export_current_view(run):
    name, data = export_current(run, "html", "meta", slice_name=None, task=None,
                                learners=["leap", "random"])
    assert name.endswith("-meta-pca-mean.html") and b"reptile" not in data.split(b"<body>")[1]
    with pytest.raises(ValueError, match="no learner is ticked"):
        export_current(run, "png", "surface", slice_name=None, task=None, learners=[])
    with pytest.raises(ValueError, match="one view at a time"):
        export_current(run, "png", "all", slice_name=None, task=None, learners=None)


def test_html_page_inlines_plotly_once(run):
    sel = F.select(run)
    page = html_page([F.animated_surface_figure(sel), F.animated_metrics_figure(sel)], "t", "n")
    assert page.count("plotly.js v") == 1  # the library's banner: inlined exactly once
    assert page.count('class="plotly-graph-div"') == 2 and page.count("Plotly.newPlot(") == 2
    assert "<script src=" not in page  # nothing loaded from a CDN: works offline
    assert len(page) > 3_000_000  # plotly.js itself is inside
