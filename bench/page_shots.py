"""Screenshots of the page as a first-time user meets it (issue 26's before/after).

``python bench/page_shots.py URL PREFIX`` writes PREFIX-WxH-{first,present,linear2d}.png
at 1024x768, 1366x768 and 1440x900 (viewport only: what is on screen without scrolling),
and prints the page's height at each size.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser_kit import chromium, new_page, wait_quiet  # noqa: E402  (as the tests use them)

SIZES = ((1024, 768), (1366, 768), (1440, 900))


def _drawn(page) -> None:
    page.wait_for_function("""() => { const g = document.querySelector('#surface-graph .js-plotly-plot');
        return g && g._fullData && g._fullData.length > 1; }""", timeout=180000)
    wait_quiet(page, timeout_s=180)  # the page's other first draws


def shoot(url: str, prefix: str) -> None:
    with chromium() as browser:
        for w, h in SIZES:
            page = new_page(browser, w, h)
            page.goto(url)
            _drawn(page)
            tall = page.evaluate("() => document.documentElement.scrollHeight")
            print(f"{w}x{h}: page height {tall} px")
            page.screenshot(path=f"{prefix}-{w}x{h}-first.png")
            page.click("#present-toggle") if page.query_selector("#present-toggle") else None
            wait_quiet(page)  # the larger fonts' relayout
            page.screenshot(path=f"{prefix}-{w}x{h}-present.png")
            page.context.close()
            page = new_page(browser, w, h)
            page.goto(url)
            _drawn(page)
            names = page.evaluate("""() => Array.from(document.querySelectorAll('#run-picker'))
                                    .map(e => e.innerText)""")
            page.click("#run-picker")
            opts = page.query_selector_all("#run-picker [role=option], .VirtualizedSelectOption, .dash-dropdown-option")
            other = [o for o in opts if "linear2d" in o.inner_text()]
            if other:
                other[0].click()
                page.wait_for_function("() => /linear2d/.test((document.querySelector('#surface-graph .gtitle') || {}).textContent || '') || /exact/.test((document.querySelector('#surface-graph .gtitle') || {}).textContent || '')", timeout=120000)
                wait_quiet(page)
                page.screenshot(path=f"{prefix}-{w}x{h}-linear2d.png")
            else:
                print("no linear2d option found", names)
            page.context.close()


if __name__ == "__main__":
    shoot(sys.argv[1], sys.argv[2])
