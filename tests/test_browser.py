"""Real-browser tests: Debian's chromium driven by Playwright against a live app.

The server runs in a thread on 127.0.0.1 (a free port) over a runs folder with
one good run and one broken run. Screenshots go to each test's tmp_path.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import shutil
import threading
from pathlib import Path

import pytest
from app_fixtures import make_run, write_broken_run, write_run_dir
from browser_kit import CHROMIUM, new_page, painted, wait_drawn, wait_js

pytestmark = pytest.mark.browser

DATA_BUDGET = 2 * 1024 * 1024  # bytes of Dash data on the default page, beside plotly.js

sync_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
    pytest.skip("no chromium at /usr/bin/chromium", allow_module_level=True)


@contextlib.contextmanager
def serving(runs: Path):
    """The app over ``runs`` served in a thread on a free port: (URL, its AppState). On exit
    the server stops and so does every worker and job the app started."""
    from werkzeug.serving import make_server

    from trajviz.app import create_app

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = create_app(runs)
    srv = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}/", app.trajviz_state
    finally:
        srv.shutdown()
        thread.join(timeout=10)
        app.trajviz_state.shutdown()  # every worker and job it started


def _serve(runs: Path):
    """Serve the app over ``runs`` (``serving``); yields its URL."""
    with serving(runs) as (url, _):
        yield url


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    write_run_dir(runs, make_run(run_id="demo", n_params=3, steps=12, resolution=61))
    write_broken_run(runs, "broken-run")
    yield from _serve(runs)


@pytest.fixture(scope="module")
def two_runs_server(tmp_path_factory):
    """The default (newest) run holds fewer learners than the other one."""
    runs = tmp_path_factory.mktemp("two-runs")
    small = make_run(run_id="small", learners=("leap", "random"), steps=6)
    small = dataclasses.replace(small, config={**small.config, "name": "two-learners"},
                                info={**small.info, "created": "2026-01-01T00:00:00+00:00"})
    write_run_dir(runs, small)
    write_run_dir(runs, make_run(run_id="big", steps=6))
    yield from _serve(runs)


# The inner player is paused at step k (null: its label's) and every panel's cursor is there.
SHOWN_JS = """(want) => { const m = /inner step (\\d+) of/.exec(
        document.getElementById('inner-label').textContent);
    if (!m || !document.getElementById('inner-play').innerText.includes('Play')) { return false; }
    const k = +m[1];
    return (want === null || k === want) && [...document.querySelectorAll(
        '[id^=panel-] .js-plotly-plot')].every(gd => { const c = (gd.data || []).find(
            t => t.name === 'cursor'); return !c || c.x[0] === k; }); }"""


class Page:
    """A loaded page with its console errors and network traffic recorded."""

    def __init__(self, browser, url, width: int = 1440, height: int = 1000):
        self.page = new_page(browser, width, height, accept_downloads=True)
        self.context = self.page.context
        self.errors: list[str] = self.page.errors  # uncaught errors, console errors too
        self.requests: list[str] = []
        self.responses = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("response", lambda r: self.responses.append(r))
        self.page.goto(url)
        self.wait_drawn()

    DRAW_TIMEOUT_S = 30.0

    def wait_drawn(self, graph: str = "surface-graph", key_not: str | None = None):
        wait_drawn(self.page, graph, key_not, self.DRAW_TIMEOUT_S)

    def js(self, expression: str, arg=None):
        return self.page.evaluate(expression, arg)

    def graph(self, graph: str):
        return self.js("""id => { const gd = document.querySelector('#' + id + ' .js-plotly-plot');
            return {key: gd.layout.meta.key, title: gd.layout.title && gd.layout.title.text,
                    traces: gd._fullData.map(t => ({name: t.name, type: t.type,
                      x: t.x ? Array.from(t.x) : null, y: t.y ? Array.from(t.y) : null}))}; }""",
                       graph)

    def frame(self) -> int:
        return int(re.search(r"inner step (\d+) of", self.page.inner_text("#inner-label")).group(1))

    def wait_shown(self, k: int | None = None, timeout_s: float = 15.0) -> int:
        """Until the inner player is paused at step ``k`` (None: whichever its label says)
        and every panel's cursor stands there; returns that step."""
        wait_js(self.page, SHOWN_JS, f"the paused player and every panel's cursor showed step "
                f"{'its label names' if k is None else k}", arg=k, timeout_s=timeout_s)
        painted(self.page)
        return self.frame()

    def close(self):
        self.context.close()


@pytest.fixture()
def app_page(tv_browser, server):
    p = Page(tv_browser, server)
    yield p
    p.close()


PANELS = ["panel-loss", "panel-length", "panel-oscillation", "panel-monotonicity",
          "panel-residual"]


def test_page_loads_without_errors_within_the_data_budget(app_page, tmp_path):
    for graph in PANELS:
        app_page.wait_drawn(graph)
    app_page.page.wait_for_selector(".tv-table")
    app_page.page.wait_for_load_state("networkidle")  # every first callback has answered
    assert app_page.errors == []
    main = app_page.graph("surface-graph")
    assert main["traces"][0]["type"] == "scatter" and main["traces"][0]["name"] == "surface"
    assert "PC1 (" in app_page.js("""() => document.querySelector('#surface-graph .xtitle')
                                  .textContent""")
    dash = [r for r in app_page.responses
            if re.search(r"/_dash-(layout|dependencies|update-component)", r.url)]
    sizes = [len(r.body()) for r in dash]
    total = sum(sizes)
    print(f"\nDash data on the default page: {total} bytes in {len(sizes)} responses "
          f"(budget {DATA_BUDGET}); plotly.js itself is not counted")
    assert 0 < total <= DATA_BUDGET
    app_page.page.screenshot(path=str(tmp_path / "default.png"), full_page=True)


def test_play_moves_head_and_every_cursor_together_without_requests(app_page, tmp_path):
    start = app_page.graph("surface-graph")
    assert app_page.frame() == 0
    app_page.requests.clear()
    app_page.page.click("#inner-play")
    app_page.page.wait_for_function(
        "() => /step ([4-9]|1\\d) of/.test(document.getElementById('inner-label').textContent)",
        timeout=15_000)
    app_page.page.click("#inner-play")  # pause
    k = app_page.wait_shown()  # the last frame drawn everywhere
    assert 4 <= k <= 12
    assert [u for u in app_page.requests if "_dash-" in u] == []  # clientside: no server requests
    main = app_page.graph("surface-graph")
    learners = ["leap", "reptile", "random"]
    for i, name in enumerate(learners):
        path, head = main["traces"][1 + 5 * i], main["traces"][5 + 5 * i]
        assert path["name"] == head["name"] == name
        assert head["x"][0] == pytest.approx(path["x"][k], rel=1e-3, abs=1e-4)
        assert head["y"][0] == pytest.approx(path["y"][k], rel=1e-3, abs=1e-4)
        assert head["x"][0] != pytest.approx(start["traces"][5 + 5 * i]["x"][0])
    for panel in PANELS:
        cursor = app_page.graph(panel)["traces"][-2]
        assert cursor["name"] == "cursor" and cursor["x"] == [k, k], panel
    app_page.page.screenshot(path=str(tmp_path / "playing.png"))
    # stepping and scrubbing move the same index
    app_page.page.click("#inner-back")
    assert app_page.wait_shown(k - 1) == k - 1
    assert app_page.graph("panel-length")["traces"][-2]["x"] == [k - 1, k - 1]
    assert app_page.errors == []


def test_learner_toggle_hides_its_path(app_page):
    before = app_page.graph("surface-graph")
    app_page.page.locator("#learner-toggles label", has_text="reptile").click()
    app_page.wait_drawn(key_not=before["key"])
    after = app_page.graph("surface-graph")
    names = {t["name"] for t in after["traces"]}
    assert "reptile" not in names and {"leap", "random"} <= names
    assert "reptile" not in {t["name"] for t in app_page.graph("panel-loss")["traces"]}
    assert app_page.errors == []


def test_changing_task_redraws(app_page, tmp_path):
    before = app_page.graph("surface-graph")
    assert "task 0" in before["title"]  # one task by default; the mean is one click away
    app_page.page.click("#task-picker")
    app_page.page.locator("[role=option]", has_text=re.compile(r"^task 1 ")).click()
    app_page.wait_drawn(key_not=before["key"])
    after = app_page.graph("surface-graph")
    assert "task 1" in after["title"] and after["traces"][1]["x"] != before["traces"][1]["x"]
    app_page.wait_drawn("panel-loss", key_not=before["key"])
    app_page.page.click("#tabs >> text=Meta-training")
    app_page.wait_drawn("meta-graph")
    painted(app_page.page)
    app_page.page.screenshot(path=str(tmp_path / "meta.png"), full_page=True)
    assert app_page.errors == []


def test_exports_produce_valid_files(app_page, tmp_path):
    for fmt, magic in (("png", b"\x89PNG\r\n\x1a\n"), ("svg", b"<svg"), ("pdf", b"%PDF-")):
        with app_page.page.expect_download(timeout=60_000) as info:
            app_page.page.click(f"#export-{fmt}")
        download = info.value
        target = tmp_path / download.suggested_filename
        download.save_as(target)
        assert target.name.endswith(f"-surface-pca-task0.{fmt}")  # task 0 is the default
        assert target.read_bytes().lstrip()[:len(magic)] == magic
        app_page.page.wait_for_selector(f"#export-status:has-text('Saved {target.name}')")
    assert app_page.errors == []


def test_a_broken_run_shows_its_message(app_page, tmp_path):
    app_page.page.click("#run-picker")
    app_page.page.locator("[role=option]", has_text="broken-run").click()
    message = app_page.page.wait_for_selector("#run-message .tv-msg-error", timeout=15_000)
    text = message.inner_text()
    assert "Run broken-run cannot be shown" in text and "not valid JSON" in text
    assert not app_page.page.is_visible("#workspace")
    assert "Traceback" not in app_page.page.content()
    app_page.page.screenshot(path=str(tmp_path / "broken.png"), full_page=True)
    assert app_page.errors == []


def test_switching_between_runs_with_different_learners(tv_browser, two_runs_server, tmp_path):
    """Dash 4.4's renderer failed ("reading 'props'") and kept the old run when the learner
    checklist grew on the first switch; it now always lists every learner, greying out
    the ones a run does not hold."""
    app_page = Page(tv_browser, two_runs_server)
    page = app_page.page
    assert "two-learners" in page.inner_text("#run-picker")
    for name, present in (("fixture", ["leap", "reptile", "random"]),
                          ("two-learners", ["leap", "random"])):
        old = app_page.graph("surface-graph")["key"]
        page.click("#run-picker")
        page.locator("[role=option]", has_text=name).first.click()
        app_page.wait_drawn(key_not=old)
        assert name in page.inner_text("#run-picker")
        enabled = page.eval_on_selector_all(
            "#learner-toggles input:not([disabled])", "els => els.map(e => e.value)")
        assert enabled == present
        paths = {t["name"] for t in app_page.graph("surface-graph")["traces"] if t["name"]}
        assert set(present) <= paths
    assert app_page.errors == []
    page.screenshot(path=str(tmp_path / "switched.png"), full_page=True)
    app_page.close()
