"""Debian's headless chromium for the browser tests and the page benches, and waits on
conditions (never on the clock alone) that fail saying what did not happen.

No pytest here: bench/ scripts import it too (with tests/ on ``sys.path``). The browser
tests take it through test_browser.py, which skips where playwright or chromium is missing.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run"]

# Resolves once ten animation frames in a row came less than 50 ms apart (the page has
# finished drawing), or after 20 s.
IDLE_JS = """() => new Promise(done => {
  let last = performance.now(), calm = 0; const t0 = last;
  const tick = () => { const now = performance.now();
    calm = now - last < 50 ? calm + 1 : 0; last = now;
    if (calm >= 10 || now - t0 > 20000) { done(); } else { requestAnimationFrame(tick); } };
  requestAnimationFrame(tick); })"""
# A graph's figure is drawn: plotly laid it out and its meta key (the selection it shows)
# is set and differs from old.
DRAWN_JS = """([id, old]) => { const gd = document.querySelector('#' + id + ' .js-plotly-plot');
    return !!(gd && gd.layout && gd.layout.meta && gd.layout.meta.key
              && gd.layout.meta.key !== old && gd._fullLayout); }"""


def launch(playwright):
    """Debian's chromium, headless, through a started Playwright (``sync_playwright()``)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)


@contextlib.contextmanager
def chromium() -> Iterator:
    """A headless chromium with its own Playwright, both stopped on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser, width: int = 1440, height: int = 1000, **context_options):
    """A page of ``browser`` in a context of its own at ``width`` x ``height``.

    It keeps ``page.errors`` (uncaught page errors, as text) and ``page.in_flight`` (a
    one-element list: requests sent and not yet answered, for ``wait_quiet``). Close it
    with ``page.context.close()``."""
    context = browser.new_context(viewport={"width": width, "height": height}, **context_options)
    page = context.new_page()
    page.errors = []
    page.in_flight = [0]
    page.on("pageerror", lambda e: page.errors.append(str(e)))

    def count(step: int):
        def on(_request):
            page.in_flight[0] += step
        return on
    page.on("request", count(1))
    page.on("requestfinished", count(-1))
    page.on("requestfailed", count(-1))
    return page


def wait_until(condition: Callable[[], object], what: str, timeout_s: float = 60.0,
               page=None, every_s: float = 0.05):
    """Poll ``condition()`` until it is truthy and return its value; past ``timeout_s``
    fail with an AssertionError saying ``what`` did not happen. With ``page``, the pauses
    are the page's own (``wait_for_timeout``), so its event handlers keep running."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting until {what}")
        if page is not None:
            page.wait_for_timeout(every_s * 1000)
        else:
            time.sleep(every_s)


def wait_js(page, predicate: str, what: str, arg=None, timeout_s: float = 30.0):
    """``page.wait_for_function(predicate, arg)``; past ``timeout_s`` an AssertionError
    saying ``what`` did not happen (instead of Playwright's bare timeout)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        return page.wait_for_function(predicate, arg=arg, timeout=timeout_s * 1000)
    except PlaywrightTimeout:
        raise AssertionError(f"timed out after {timeout_s:g} s waiting until {what}") from None


def wait_drawn(page, graph: str = "surface-graph", key_not: str | None = None,
               timeout_s: float = 30.0) -> None:
    """Until graph ``graph`` shows a figure whose meta key is set and is not ``key_not``."""
    wait_js(page, DRAWN_JS, f"#{graph} was drawn (a key other than {key_not!r})",
            arg=[graph, key_not], timeout_s=timeout_s)


def painted(page) -> None:
    """Until the browser has painted what the page holds now (two animation frames)."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def wait_quiet(page, quiet_s: float = 0.5, timeout_s: float = 60.0) -> None:
    """Until no request of ``page`` (``new_page``) has been in flight for ``quiet_s`` and
    the page has finished drawing. ``quiet_s`` is how long silence must last to count as
    the end of the page's requests: longer than any poll interval that may still fire."""
    calm_since = [None]

    def calm():
        if page.in_flight[0] > 0:
            calm_since[0] = None
            return False
        calm_since[0] = calm_since[0] or time.monotonic()
        return time.monotonic() - calm_since[0] >= quiet_s

    wait_until(calm, f"no request was in flight for {quiet_s:g} s", timeout_s, page=page)
    page.evaluate(IDLE_JS)


__all__ = ["ARGS", "CHROMIUM", "IDLE_JS", "chromium", "launch", "new_page", "painted",
           "wait_drawn", "wait_js", "wait_quiet", "wait_until"]
