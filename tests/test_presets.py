"""Paper presets through kaleido, checked in the files: page size, smallest font in
points at that size, no bitmap in the vector formats, DPI in PNGs, names that say
what is in the file; and the Python API that builds them."""
from __future__ import annotations

import re
import struct

import pytest
from app_fixtures import make_run

import trajviz
from trajviz.figures.export import export_current, export_run
from trajviz.figures.formats import figure_bytes, png_dpi
from trajviz.figures.presets import FONT_PX, PRESETS


@pytest.fixture(scope="module")
def run():
    return make_run(n_params=3)


def svg_size_in(svg: str) -> tuple[float, float]:
    """The SVG's page (width, height) in inches: plotly writes CSS px, 96 per inch."""
    head = re.search(r"<svg[^>]*>", svg).group(0)
    w = float(re.search(r'width="([\d.]+)', head).group(1))
    h = float(re.search(r'height="([\d.]+)', head).group(1))
    return w / 96, h / 96


def smallest_font_pt(svg: str) -> float:
    """The smallest font-size in the SVG in points (1 px = 0.75 pt at 96 px per inch)."""
    sizes = [float(s) for s in re.findall(r"font-size:\s*([\d.]+)px", svg)]
    assert sizes, "no text in the SVG"
    return min(sizes) * 0.75


@pytest.mark.parametrize("preset,inches", [("column", 3.3), ("page", 6.9)])
def test_surface_preset_svg_size_fonts_and_no_bitmap(run, preset, inches):
    fig = trajviz.figure(run, "surface", task=1, preset=preset, title="A title")
    svg = figure_bytes(fig, "svg").decode("utf-8")
    w, h = svg_size_in(svg)
    assert w == pytest.approx(inches, abs=0.01) and 0.5 * inches < h < 1.6 * inches
    assert smallest_font_pt(svg) >= 7.0
    assert "<image" not in svg  # the fill is vector contour paths, not a bitmap
    assert svg.count('class="contour"') >= 1 and "A title" in svg
    assert "start θ0" in svg and "end (step K)" in svg  # the marker key is in the figure


def test_metrics_and_meta_presets_keep_fonts_at_7pt(run):
    for what in ("metrics", "meta"):
        svg = figure_bytes(trajviz.figure(run, what, preset="column"), "svg").decode("utf-8")
        assert svg_size_in(svg)[0] == pytest.approx(3.3, abs=0.01)
        assert smallest_font_pt(svg) >= 7.0, what
        assert "<image" not in svg


def test_pdf_page_is_the_preset_size(run):
    fig = trajviz.figure(run, "surface", preset="column")
    pdf = figure_bytes(fig, "pdf")
    box = re.search(rb"/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", pdf)
    width_pt = float(box.group(3)) - float(box.group(1))
    assert width_pt / 72 == pytest.approx(PRESETS["column"].inches, abs=0.02)
    assert b"/Subtype /Image" not in pdf and b"/Subtype/Image" not in pdf


def phys_dpi(png: bytes) -> float:
    i = png.index(b"pHYs")
    x, y, unit = struct.unpack(">IIB", png[i + 4:i + 13])
    assert unit == 1 and x == y
    return x * 0.0254


def test_page_export_names_what_is_in_it_and_png_carries_its_dpi(run):
    name, data = export_current(run, "png", "surface", slice_name="pca", task=2,
                                learners=["leap", "random"], preset="column")
    assert name == "trajviz-fixture-run-surface-pca-task2-column.png"
    assert phys_dpi(data) == pytest.approx(300, abs=1)
    width = struct.unpack(">I", data[16:20])[0]
    assert width == pytest.approx(3.3 * 300, abs=4)  # 3.3 in at 300 dpi
    name, _ = export_current(run, "svg", "meta", slice_name="pca", task=2, learners=None)
    assert name == "trajviz-fixture-run-meta-pca-mean.svg"  # the meta view is the task mean


def test_png_dpi_rewrites_the_chunk():
    png = bytes.fromhex("89504e470d0a1a0a") + struct.pack(">I", 13) + b"IHDR" + bytes(13) + \
        b"\0\0\0\0" + struct.pack(">I", 0) + b"IEND" + b"\xaeB`\x82"
    once = png_dpi(png, 96)
    twice = png_dpi(once, 300)
    assert twice.count(b"pHYs") == 1 and phys_dpi(twice) == pytest.approx(300, abs=0.5)
    assert phys_dpi(once) == pytest.approx(96, abs=0.5)
    with pytest.raises(ValueError, match="not a PNG"):
        png_dpi(b"GIF89a", 96)


def test_cli_style_export_with_a_preset(run, tmp_path):
    paths = export_run(run, tmp_path, "svg", "all", slice_name="pca", task=0, preset="page")
    assert [p.name for p in paths] == ["surface-pca-task0-page.svg", "metrics-pca-task0-page.svg",
                                       "meta-pca-mean-page.svg"]


def test_api_names_and_errors(run):
    fig = trajviz.figure(run, "surface", task=0)
    assert fig.data[0].name == "surface" and fig.layout.meta["key"].startswith(run.run_id)
    assert trajviz.figure(run, "panel", panel="oscillation").data
    with pytest.raises(ValueError, match="unknown preset 'poster'; accepted: column, page"):
        trajviz.figure(run, "surface", preset="poster")
    with pytest.raises(ValueError, match="unknown figure"):
        trajviz.figure(run, "histogram")
    with pytest.raises(ValueError, match="unknown zoom"):
        trajviz.figure(run, "surface", zoom="wide")
    assert FONT_PX * 0.75 >= 7.0
