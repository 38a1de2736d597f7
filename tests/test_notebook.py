"""docs/example.ipynb runs top to bottom in a real Jupyter kernel (nbclient), and the app it
shows inline with ``trajviz.show`` answers while the kernel lives and stops with it."""
from __future__ import annotations

import os
import re
import socket
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from page_http import picker

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "example.ipynb"


def _text(cell, mime: str = "text/plain") -> str:
    """A code cell's printed text and its result's ``mime`` representation."""
    return "".join(o.get("text", "") or o.get("data", {}).get(mime, "")
                   for o in cell.get("outputs", []))


def _refused(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(5)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_example_notebook_runs_and_shows_the_app_inline(tmp_path, monkeypatch):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    root = str(NOTEBOOK.parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    client = nbclient.NotebookClient(nb, timeout=240, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        code = [c for c in nb.cells if c.cell_type == "code"]
        outputs = [_text(c) for c in code]
        assert "meta:leap" in outputs[0]
        assert "['leap', 'random']" in outputs[1]
        assert "317 px wide" in outputs[3]
        # the last cell: trajviz.show(run) saved the run (one line says where) and showed it
        run_id = re.search(r"/(\d{8}-\d{6}-linear2d-[0-9a-f]{4}) ", outputs[1]).group(1)
        saved = re.search(r"trajviz: run (\S+) saved to (\S+) for the page", outputs[4])
        assert saved, outputs[4]
        url = re.search(r"trajviz: (http://127\.0\.0\.1:\d+/[0-9a-f]{48}/\?run=\S+)",
                        outputs[4]).group(1)
        html = _text(code[4], "text/html")
        assert f'<iframe src="{url}"' in html and 'target="_blank"' in html
        with urllib.request.urlopen(url, timeout=60) as reply:  # the inline app answered
            assert reply.status == 200 and b"_dash-config" in reply.read()
        listed, shown = picker(url)
        assert listed == [run_id] == [saved.group(1)] and shown == run_id
        assert Path(saved.group(2)).is_dir()
        port = urlsplit(url).port
        with pytest.raises(urllib.error.HTTPError) as refused:  # no token, no page
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_dash-layout", timeout=60)
        assert refused.value.code == 403
    assert _refused(port), "the kernel's server outlived the kernel"
    assert not Path(saved.group(2)).exists(), "the temporary runs folder outlived the kernel"


@pytest.mark.browser
def test_the_shown_page_works_inside_a_cross_site_iframe(tmp_path):
    """As in VS Code or a JupyterLab on localhost: the frame is a third party, whose cookies a
    browser drops; the token in the path still carries every request, the what-if route's too."""
    import functools
    import http.server
    import threading

    from app_fixtures import make_run
    from browser_kit import CHROMIUM, chromium, new_page

    import trajviz

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}")
    pytest.importorskip("playwright.sync_api")
    shown = trajviz.show(make_run(n_params=3))
    token = urlsplit(shown.url).path.strip("/")
    (tmp_path / "nb.html").write_text(shown._repr_html_())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    notebook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=notebook.serve_forever, daemon=True).start()
    try:
        with chromium() as browser:
            page = new_page(browser, 1400, 1000)
            errors = page.errors
            page.goto(f"http://localhost:{notebook.server_port}/nb.html")  # another site
            frame = page.frame_locator("iframe")
            frame.locator("#surface-graph .scatterlayer .trace").first.wait_for(timeout=120_000)
            with page.expect_response(lambda r: r.url.endswith("/_trajviz/whatif"),
                                      timeout=120_000) as answer:
                frame.locator("#whatif-lr [role=slider]").first.focus()
                page.keyboard.press("ArrowLeft")
            assert answer.value.status == 200
            assert urlsplit(answer.value.url).path == f"/{token}/_trajviz/whatif"
        assert errors == []
    finally:
        notebook.shutdown()
