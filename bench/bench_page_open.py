"""Open a run in the page and time what a person waits for (issue 22 item 5).

    python bench/bench_page_open.py RUNS_DIR [--port 8130] [--whatif-steps 20]

Serves RUNS_DIR (``python -m trajviz serve``, its own process, so its memory is its
own), opens the page in headless Chromium and prints: seconds from navigation to the
first drawn surface, the bytes the page downloaded (Dash data and the scripts apart),
the server's resident memory (VmRSS, VmHWM) with the run open; then one what-if change
(K): seconds until its progress row is on screen, the estimate it showed, and seconds
until the new picture landed (or that it was cancelled after ``--cancel-after`` s).
Timings are this machine's under its load (printed); nothing is asserted.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser_kit import chromium, new_page, wait_quiet  # noqa: E402  (as the tests use them)

DRAWN_JS = """() => { const gd = document.querySelector('#surface-graph .js-plotly-plot');
    return !!(gd && gd._fullData && gd._fullData.length > 1); }"""
SHOWN_JS = "(id) => { const el = document.getElementById(id); return !!el && el.offsetParent !== null; }"


def memory(pid: int) -> str:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return f"RSS {fields.get('VmRSS', 0):.0f} MiB (peak {fields.get('VmHWM', 0):.0f} MiB)"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs")
    parser.add_argument("--port", type=int, default=8130)
    parser.add_argument("--whatif-steps", type=int, default=20, help="0: only open the run")
    parser.add_argument("--cancel-after", type=float, default=0.0,
                        help="cancel the what-if after this many seconds (0: let it land)")
    parser.add_argument("--timeout", type=float, default=1200.0)
    args = parser.parse_args(argv)
    print(f"load: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    server = subprocess.Popen([sys.executable, "-m", "trajviz", "serve", args.runs, "--port",
                               str(args.port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        server.stdout.readline()  # "serving ... on http://..."
        url = f"http://127.0.0.1:{args.port}/"
        with chromium() as browser:
            page = new_page(browser, 1366, 768)
            sizes = {"data": 0, "scripts": 0}

            def count(response) -> None:
                kind = "scripts" if ".js" in response.url.rsplit("/", 1)[-1] else "data"
                try:
                    sizes[kind] += len(response.body() or b"")
                except Exception:  # noqa: BLE001, S110 - a redirect or an aborted request has no body
                    pass

            page.on("response", count)
            started = time.perf_counter()
            page.goto(url)
            page.wait_for_function(DRAWN_JS, timeout=args.timeout * 1000)
            print(f"first surface drawn: {time.perf_counter() - started:.2f} s after navigation")
            wait_quiet(page)  # the opening's other requests answered
            print(f"downloaded: Dash data {sizes['data'] / 1e6:.2f} MB, scripts "
                  f"{sizes['scripts'] / 1e6:.2f} MB")
            print(f"server with the run open: {memory(server.pid)}")
            if args.whatif_steps <= 0:  # only the opening
                return 0
            steps = page.locator("#whatif-steps")
            steps.fill(str(args.whatif_steps))
            asked = time.perf_counter()
            steps.press("Enter")
            page.wait_for_function(SHOWN_JS, arg="whatif-progress-row", timeout=60_000)
            print(f"what-if K={args.whatif_steps}: progress on screen after "
                  f"{time.perf_counter() - asked:.2f} s: {page.inner_text('#whatif-progress-text')!r}")
            if args.cancel_after > 0:
                page.wait_for_timeout(args.cancel_after * 1000)
                clicked = time.perf_counter()
                page.click("#whatif-progress-cancel")
                page.wait_for_function(f"() => !({SHOWN_JS})('whatif-progress-row')", timeout=60_000)
                print(f"cancelled: the row went {time.perf_counter() - clicked:.2f} s after the click; "
                      f"status {page.inner_text('#whatif-status')!r}")
            else:
                page.wait_for_function(f"() => !({SHOWN_JS})('whatif-progress-row')",
                                       timeout=args.timeout * 1000)
                print(f"what-if landed {time.perf_counter() - asked:.1f} s after the change: "
                      f"{page.inner_text('#whatif-status')!r}")
            print(f"server afterwards: {memory(server.pid)}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
