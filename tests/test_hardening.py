"""Bad inputs, table-driven (issue 11): CLI flags and plugins, hostile run folders, and
every callback value. Each row asserts its one-line message, exit status 2 (or the
app's message) and that nothing was written. The config/--set/TOML rows are in
tests/test_config.py; together the tables hold well over 80 rows."""
from __future__ import annotations

import json
import os
import socket
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from app_fixtures import make_run, write_run_dir

from trajviz.app import callbacks as cb
from trajviz.app import create_app, inputs
from trajviz.cli import main as cli
from trajviz.figures.export import export_run, file_stem
from trajviz.store import RunError, check_run, list_runs, load_run, safe


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


# ---------------------------------------------------------------------------- CLI and plugins

PLUGINS = {
    "tvh_raises": "raise RuntimeError('boom at import')\n",
    "tvh_syntax": "def make(:\n    pass\n",
    "tvh_factory": "def make():\n    raise KeyError('no such thing')\n",
    "tvh_none": textwrap.dedent("""
        class F:
            name = "f"
            def problem(self):
                return None
            def sample(self, seed, n_tasks, split="train"):
                return None
        def make():
            return F()
        """),
    "tvh_problem_raises": textwrap.dedent("""
        class F:
            name = "f"
            def problem(self):
                raise ZeroDivisionError("division by zero in problem")
            def sample(self, seed, n_tasks, split="train"):
                return None
        def make():
            return F()
        """),
}


@pytest.fixture()
def plugins(tmp_path, monkeypatch):
    folder = tmp_path / "plugins"
    folder.mkdir()
    for name, source in PLUGINS.items():
        (folder / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(folder))
    return folder


@pytest.fixture()
def busy_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock.getsockname()[1]
    sock.close()


CLI_BAD = [
    ("plugin-raises-at-import", ["run", "--family", "tvh_raises:make", "--trust-plugin", "tvh_raises:make"],
     "failed to import: RuntimeError: boom at import"),
    ("plugin-syntax-error", ["run", "--family", "tvh_syntax:make", "--trust-plugin", "tvh_syntax:make"], "SyntaxError"),
    ("plugin-factory-raises", ["run", "--family", "tvh_factory:make", "--trust-plugin", "tvh_factory:make"],
     "make() raised KeyError"),
    ("plugin-problem-returns-none", ["run", "--family", "tvh_none:make", "--trust-plugin", "tvh_none:make"],
     "problem() returned NoneType, expected a trajviz.problem.tasks.Problem"),
    ("plugin-problem-raises", ["run", "--family", "tvh_problem_raises:make", "--trust-plugin", "tvh_problem_raises:make"],
     "problem() raised ZeroDivisionError"),
    ("plugin-no-colon", ["run", "--family", "tvh_none"], "unknown family"),
    ("plugin-undeclared", ["run", "--family", "tvh_factory:make"],
     "'tvh_factory:make' is not a declared plugin, so it is neither imported nor run"),
    ("plugin-os-system", ["run", "--family", "os:system", "--set", "family_options={command='id'}"],
     "'os:system' is not a declared plugin"),
    ("trust-flag-on-serve", ["serve", "{runs}", "--trust-plugin", "os:system"],
     "unrecognized arguments: --trust-plugin"),
    ("list-on-a-file", ["list", "{file}"], "is a file"),
    ("serve-on-a-file", ["serve", "{file}"], "is a file"),
    ("serve-port-in-use", ["serve", "{runs}", "--port", "{busy}"], "already in use"),
    ("demo-port-in-use", ["demo", "--runs", "{runs}", "--port", "{busy}"], "already in use"),
    ("serve-bad-host", ["serve", "{runs}", "--host", "no such host!", "--port", "8"],
     "is not an address or name"),
    ("serve-port-zero", ["serve", "{runs}", "--port", "0"], "--port must be 1..65535"),
    ("export-a-symlinked-run", ["export", "{link}", "--format", "html"], "symbolic link"),
    ("export-a-missing-run", ["export", "{runs}/nope", "--format", "html"], "does not exist"),
]


@pytest.mark.parametrize("argv, match", [c[1:] for c in CLI_BAD], ids=[c[0] for c in CLI_BAD])
def test_cli_bad_input_is_one_line_exit_2_nothing_written(argv, match, plugins, busy_port,
                                                          tmp_path, capsys):
    runs = tmp_path / "runs"
    afile = tmp_path / "a-file"
    afile.write_text("x")
    elsewhere = tmp_path / "elsewhere"
    write_run_dir(elsewhere, make_run(run_id="real", learners=("leap",)))
    runs.mkdir()
    (runs / "link").symlink_to(elsewhere / "real")
    subs = {"{file}": str(afile), "{runs}": str(runs), "{busy}": str(busy_port),
            "{link}": str(runs / "link")}
    argv = [a.replace(k, v) if k in a else a for a in argv for k, v in [_pick(a, subs)]]
    if argv[0] == "run":
        argv += ["--out", str(runs), "--quiet"]
    before = _files(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("trajviz: error: ") and match in err, err
    assert str(tmp_path) not in err or argv[0] in ("list", "serve", "export")
    assert _files(tmp_path) - before == set()


def _pick(arg: str, subs: dict[str, str]) -> tuple[str, str]:
    for k, v in subs.items():
        if k in arg:
            return k, v
    return "\0", ""


# ---------------------------------------------------------------------------- run folders

@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    write_run_dir(root, make_run(run_id="g", learners=("leap", "reptile"), n_tasks=2, steps=4))
    return root / "g"


def _copy(good: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    for f in good.iterdir():
        (dest / f.name).write_bytes(f.read_bytes())
    return dest


def _huge_header(run: Path) -> None:
    """run.json and light.npz both claim a 10⁵×10⁵ float64 array (80 GB)."""
    doc = json.loads((run / "run.json").read_text())
    key = next(k for k, s in doc["arrays"].items() if s["file"] == "light")
    doc["arrays"][key]["shape"] = [100_000, 100_000]
    doc["arrays"][key]["dtype"] = "<f8"
    (run / "run.json").write_text(json.dumps(doc))


def _lying_header(run: Path) -> None:
    """light.npz's header claims 10⁵×10⁵ where run.json records the real, small shape."""
    doc = json.loads((run / "run.json").read_text())
    key = next(k for k, s in doc["arrays"].items() if s["file"] == "light")
    header = {"descr": "<f8", "fortran_order": False, "shape": (100_000, 100_000)}
    with zipfile.ZipFile(run / "light.npz") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    buf = __import__("io").BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    members[key + ".npy"] = buf.getvalue() + b"\0" * 64
    with zipfile.ZipFile(run / "light.npz", "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)


def _fifo(name):
    def make(run: Path) -> None:
        (run / name).unlink()
        os.mkfifo(run / name)
    return make


def _symlink(name, target):
    def make(run: Path) -> None:
        (run / name).unlink()
        (run / name).symlink_to(target)
    return make


def _deep(run: Path) -> None:
    (run / "run.json").write_text("[" * 100_000 + "]" * 100_000)


def _bomb(run: Path) -> None:
    """A member whose unpacked size is far more than run.json records."""
    doc = json.loads((run / "run.json").read_text())
    key = next(k for k, s in doc["arrays"].items() if s["file"] == "light" and s["shape"] == [2])
    with zipfile.ZipFile(run / "light.npz") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members[key + ".npy"] += b"\0" * 2**20
    with zipfile.ZipFile(run / "light.npz", "w", zipfile.ZIP_DEFLATED) as zf:
        for n, data in members.items():
            zf.writestr(n, data)


FOLDER_BAD = [
    ("run-json-fifo", _fifo("run.json"), "run.json is not a regular file"),
    ("light-npz-fifo", _fifo("light.npz"), "light.npz is not a regular file"),
    ("heavy-npz-fifo", _fifo("heavy.npz"), "heavy.npz is not a regular file"),
    ("run-json-dev-zero", _symlink("run.json", "/dev/zero"), "run.json is a symbolic link"),
    ("light-npz-dev-zero", _symlink("light.npz", "/dev/zero"), "light.npz is a symbolic link"),
    ("run-json-symlink-out", _symlink("run.json", "/etc/hostname"), "is a symbolic link"),
    ("huge-declared-shape", _huge_header, "more than the 4294967296-byte limit"),
    ("npz-header-lies", _lying_header, "run.json records"),
    ("deep-json", _deep, "nested too deeply"),
    ("npz-member-too-big", _bomb, "unpacked, more than run.json records"),
]


@pytest.mark.parametrize("spoil, match", [c[1:] for c in FOLDER_BAD], ids=[c[0] for c in FOLDER_BAD])
def test_hostile_run_folder_is_refused_in_one_line(spoil, match, good, tmp_path, capsys):
    runs = tmp_path / "runs"
    run = _copy(good, runs / "bad")
    spoil(run)
    for read in (check_run, load_run):
        with pytest.raises(RunError, match=match.replace("(", r"\(").replace(")", r"\)")) as err:
            read(run)
        assert "\n" not in str(err.value)
    (entry,) = list_runs(runs)  # listed as broken, never a hang or a traceback
    assert not entry.ok and match in entry.reason
    before = _files(tmp_path)
    assert cli.main(["export", str(run), "--format", "html", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err
    assert _files(tmp_path) == before


def test_a_symlinked_run_is_not_listed_or_served(good, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "link").symlink_to(good)
    assert list_runs(runs) == []
    state = cb.AppState.for_dir(runs)
    out = cb.run_controls(state, "link")
    assert out["workspace_style"] == cb.HIDE and "symbolic link" in _text(out["message"])
    assert str(runs) not in _text(out["message"])


def test_run_json_over_the_cap_is_refused_before_reading(good, tmp_path, monkeypatch):
    run = _copy(good, tmp_path / "runs" / "big")
    from trajviz.store import read
    monkeypatch.setattr(read, "MAX_RUN_JSON_BYTES", 100)
    with pytest.raises(RunError, match=r"run.json is \d+ bytes, more than the 100-byte limit"):
        load_run(run)


def test_read_capped_never_reads_past_the_cap(tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 10)
    assert safe.read_capped(tmp_path, "f", 10) == b"x" * 10
    with pytest.raises(RunError, match="more than the 9-byte limit"):
        safe.read_capped(tmp_path, "f", 9)


def test_view_names_from_run_json_cannot_escape_the_export_folder(good, tmp_path):
    run = load_run(good)
    view = next(iter(run.views.values()))
    evil = run.__class__(**{**run.__dict__, "views": {"../../x": view}})
    out = tmp_path / "out"
    (path,) = export_run(evil, out, "html", "surface")
    assert path.parent == out and path.name == "surface-x-mean.html"
    assert _files(tmp_path) == {"out", "out/surface-x-mean.html"}
    assert file_stem("../x") == "x" and file_stem("/etc/passwd") == "etc-passwd"
    assert file_stem("..") == "view" and file_stem("a b\0c") == "a-b-c"


# ---------------------------------------------------------------------------- callback values

@pytest.fixture(scope="module")
def state(tmp_path_factory):
    root = tmp_path_factory.mktemp("cbruns")
    write_run_dir(root, make_run(run_id="good", learners=("leap", "reptile"), n_tasks=3))
    outside = tmp_path_factory.mktemp("outside")
    write_run_dir(outside, make_run(run_id="real", learners=("leap",), n_tasks=2))
    (root / "link-outside").symlink_to(outside / "real")  # never listed, never named
    return cb.AppState.for_dir(root)


def _text(component) -> str:
    if component is None:
        return ""
    if isinstance(component, (str, int, float)):
        return str(component)
    if isinstance(component, (list, tuple)):
        return " ".join(_text(c) for c in component)
    return _text(getattr(component, "children", None))


def _draw(**kw):
    args = {"run_id": "good", "view": None, "task": None, "learners": ["leap"], "mode": "2d",
            "frame": 0, **kw}
    return lambda st: _text(cb.draw(st, cb.PageInputs(**args))["notes"])


def _export(**kw):
    args = {"run_id": "good", "view": None, "task": None, "learners": ["leap"], "mode": "2d",
            "frame": 0, **kw}
    fmt, what = args.pop("fmt", "html"), args.pop("what", "surface")
    return lambda st: cb.export(st, fmt, what, cb.PageInputs(**args))[1]


def _job(**kw):
    args = {"family": "linear2d", "learners": ["leap"], "steps": 5, "meta_steps": 5, "seed": 0,
            "name": "", **kw}
    return lambda st: cb.start_job(st, **args)["status"]


CALLBACK_BAD = [
    ("task-float", _draw(task=1.5), "task 1.5 is not a held-out task"),
    ("task-true", _draw(task=True), "task True is not a held-out task"),
    ("task-list", _draw(task=[1]), "task [1] is not a held-out task"),
    ("task-negative-text", _draw(task="-1"), "task '-1' is not a held-out task"),
    ("task-out-of-range", _draw(task=99), "task must be 0..2 or the task mean, got 99"),
    ("run-id-300-chars", _draw(run_id="a" * 300), "is not a run folder of this app"),
    ("run-id-dict", _draw(run_id={"a": 1}), "is not a run folder of this app"),
    ("run-id-absolute", _draw(run_id="/etc"), "is not a run folder of this app"),
    ("run-id-dotdot", _draw(run_id=".."), "is not a run folder of this app"),
    ("learners-string", _draw(learners="leap"), "learners must be a list"),
    ("learners-too-many", _draw(learners=["leap"] * 100), "learners must be a list"),
    ("learners-non-text", _draw(learners=[1, 2]), "learners must be a list"),
    ("frame-text", _draw(frame="x"), "frame 'x' must be a whole number"),
    ("frame-negative", _draw(frame=-1), "frame -1 must be a whole number"),
    ("mode-list", _draw(mode=[]), "mode must be text"),
    ("view-number", _draw(view=3), "slice must be text"),
    ("export-what-none", _export(what=None), "Export failed: what to export must be text"),
    ("export-task-bool", _export(task=False), "Export failed: task False is not"),
    ("export-run-id-long", _export(run_id="b" * 300), "Export failed: run 'bbbbb"),
    ("job-name-huge", _job(name="n" * 10_000), "Not started: name must be text of at most 120"),
    ("job-steps-true", _job(steps=True), "Not started: inner steps must be a whole number, got True"),
    ("job-steps-inf", _job(steps="1e400"), "Not started: inner steps must be a whole number"),
    ("job-steps-list", _job(steps=[5]), "Not started: inner steps must be a whole number"),
    ("job-family-number", _job(family=5), "Not started: family must be text"),
    ("job-family-os-system", _job(family="os:system"),
     "Not started: family 'os:system' is not one of digits, linear2d, quadratic, sinusoid"),
    ("job-family-module", _job(family="demos.plugin_example:make_family"),
     "Not started: family 'demos.plugin_example:make_family' is not one of"),
    ("draw-symlinked-run", _draw(run_id="link-outside"), "is a symbolic link"),
    ("export-symlinked-run", _export(run_id="link-outside"), "Export failed: run link-outside"),
    ("run-controls-symlinked-run", lambda st: _text(cb.run_controls(st, "link-outside")["message"]),
     "is a symbolic link"),
    ("job-learners-dict", _job(learners={"leap": 1}), "Not started: learners must be a list"),
    ("job-seed-huge-text", _job(seed="9" * 400), "Not started: seed must be a whole number"),
    ("poll-job-list", lambda st: cb.poll_job(st, {"id": [1]}, None)["status"], "is not a job id"),
    ("run-controls-long-id", lambda st: _text(cb.run_controls(st, "c" * 300)["message"]),
     "is not a run folder of this app"),
]


@pytest.mark.parametrize("call, match", [c[1:] for c in CALLBACK_BAD],
                         ids=[c[0] for c in CALLBACK_BAD])
def test_callback_value_becomes_a_message(call, match, state):
    before = _files(state.runs_dir)
    text = call(state)
    assert match in text, text
    assert str(state.runs_dir) not in text
    assert state.jobs.running() is None and _files(state.runs_dir) == before


def test_callback_values_never_give_http_500(state):
    """Malformed payloads through the real endpoint: a message or no update, never 500."""
    app = create_app(state.runs_dir)
    client = app.server.test_client()
    payload = {"output": "..main-graph.figure...", "outputs": [], "inputs": [
        {"id": "run", "property": "value", "value": {"x": [1]}}], "changedPropIds": []}
    assert client.post("/_dash-update-component", json=payload).status_code in (200, 204, 400)
    assert client.post("/_dash-update-component", data=b"{not json",
                       content_type="application/json").status_code in (204, 400)
    big = b'{"x":"' + b"a" * (inputs.MAX_REQUEST_BYTES + 10) + b'"}'
    assert client.post("/_dash-update-component", data=big,
                       content_type="application/json").status_code == 413


def test_a_token_is_required_when_given(state):
    app = create_app(state.runs_dir, token="s3cret")
    client = app.server.test_client()
    assert client.get("/").status_code == 403
    assert client.get("/?token=wrong").status_code == 403
    response = client.get("/?token=s3cret")
    assert response.status_code == 200 and "trajviz_token=s3cret" in response.headers["Set-Cookie"]
    assert client.get("/_dash-layout").status_code == 200  # the cookie now carries it
    from trajviz.app.guard import is_loopback
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and not is_loopback("0.0.0.0")


def test_input_parsers_accept_what_the_page_sends():
    assert inputs.task("mean") is None and inputs.task("3") == 3 and inputs.task(2) == 2
    assert inputs.whole(3.0, "x") == 3 and inputs.whole("7", "x") == 7
    assert inputs.run_id("20261127-063012-sinusoid-3fa9") == "20261127-063012-sinusoid-3fa9"
    assert inputs.public("run /a/runs/x: bad", Path("/a/runs")) == "run x: bad"


def test_static_exports_wait_for_the_one_renderer_then_are_refused(good, monkeypatch):
    from trajviz.figures import export
    monkeypatch.setattr(export, "KALEIDO_WAIT_S", 0.05)
    run = load_run(good, heavy=False)
    assert export._KALEIDO.acquire(timeout=5)  # another export is rendering
    try:
        with pytest.raises(ValueError, match="another static export is still rendering"):
            export.export_current(run, "png", "surface", slice_name=None, task=None,
                                  learners=["leap"])
        name, data = export.export_current(run, "html", "surface", slice_name=None, task=None,
                                           learners=["leap"])  # html needs no renderer
        assert name.endswith(".html") and data.startswith(b"<!DOCTYPE html>")
    finally:
        export._KALEIDO.release()


def test_a_network_host_warns_and_prints_a_token(tmp_path, monkeypatch, capsys):
    import signal

    from dash import Dash

    from trajviz.app import serve
    seen = {}
    monkeypatch.setattr(signal, "signal", lambda *a: None)  # keep pytest's SIGTERM handler
    monkeypatch.setattr(Dash, "run", lambda self, **kw: seen.update(kw, app=self))
    serve(tmp_path, host="0.0.0.0", port=8123)
    out, err = capsys.readouterr()
    assert "warning: serving on 0.0.0.0, reachable from the network" in err
    token = out.split("?token=")[1].split()[0]
    assert len(token) == 48 and seen["host"] == "0.0.0.0"
    client = seen["app"].server.test_client()
    assert client.get("/").status_code == 403 and client.get(f"/?token={token}").status_code == 200
    serve(tmp_path, host="0.0.0.0", port=8123, token=False)
    out, err = capsys.readouterr()
    assert "--no-token: no access token is required" in err and "?token=" not in out
    assert seen["app"].server.test_client().get("/").status_code == 200
    serve(tmp_path, host="127.0.0.1", port=8123)
    out, err = capsys.readouterr()
    assert err == "" and "?token=" not in out
