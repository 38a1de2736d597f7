"""Plugins are declared (issue 23): a declared factory runs, the same function undeclared
does not, and an undeclared module is never imported. Marker files prove what ran: each
test factory writes its ``marker`` when called, and each module writes ``<name>.imported``
beside itself when imported."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from trajviz.cli import main as cli
from trajviz.problem.tasks import Linear2D, make_family
from trajviz.spec import plugins
from trajviz.spec.config import from_dict, load_toml

SOURCE = textwrap.dedent('''
    from pathlib import Path

    import trajviz
    from trajviz.problem.tasks import Linear2D

    Path(__file__).with_suffix(".imported").write_text("imported")

    def _called(marker):
        Path(marker).write_text("called")
        return Linear2D()

    {deco}
    def make(marker=""):
        return _called(marker)

    def plain(marker=""):
        return _called(marker)

    @trajviz.task_family
    def marked(marker=""):
        return _called(marker)
    ''')


def _module(folder: Path, name: str, deco: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(SOURCE.format(deco=deco))
    return path


def _imported(folder: Path, name: str) -> bool:
    return (folder / f"{name}.imported").exists()


@pytest.fixture()
def site(tmp_path, monkeypatch):
    """A folder on sys.path; its modules are forgotten after the test."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    before = set(sys.modules)
    yield folder
    for name in set(sys.modules) - before:
        if name.startswith("tvt_"):
            del sys.modules[name]


def test_a_decorated_factory_runs_and_the_same_function_undecorated_does_not(site, tmp_path):
    _module(site, "tvt_deco", deco="@trajviz.task_family")
    import tvt_deco  # your own code imports its module: the decorator declares `make`

    called = tmp_path / "called"
    family = make_family("tvt_deco:make", {"marker": str(called)})
    assert isinstance(family, Linear2D) and called.read_text() == "called"

    not_called = tmp_path / "not-called"
    with pytest.raises(ValueError, match="'tvt_deco:plain' is not a declared plugin"):
        make_family("tvt_deco:plain", {"marker": str(not_called)})
    assert not not_called.exists()
    # the config layer refuses the same, before any option is looked at
    with pytest.raises(ValueError, match="'tvt_deco:plain' is not a declared plugin"):
        from_dict({"family": "tvt_deco:plain", "family_options": {"marker": str(not_called)}})
    assert from_dict({"family": "tvt_deco:make"}).family == "tvt_deco:make"
    assert plugins.is_marked(tvt_deco.make) and not plugins.is_marked(tvt_deco.plain)


def test_an_undeclared_module_is_never_imported(site, tmp_path):
    _module(site, "tvt_never", deco="@trajviz.task_family")  # decorated, but nobody imports it
    marker = tmp_path / "called"
    for call in (lambda: make_family("tvt_never:make", {"marker": str(marker)}),
                 lambda: from_dict({"family": "tvt_never:make"})):
        with pytest.raises(ValueError, match=r"not a declared plugin, so it is neither imported "
                                             r"nor run; .*--trust-plugin tvt_never:make"):
            call()
    assert "tvt_never" not in sys.modules and not _imported(site, "tvt_never")
    assert not marker.exists()
    # the explicit escape, from code: the same factory now runs
    config = from_dict({"family": "tvt_never:make"}, trust_plugins=["tvt_never:make"])
    make_family(config.family, {"marker": str(marker)})
    assert marker.read_text() == "called" and _imported(site, "tvt_never")


def _distribution(site: Path, dist: str, entry_points: str) -> None:
    """A tiny installed distribution: ``<dist>-0.1.dist-info`` with METADATA and
    entry_points.txt on sys.path, as pip would leave it (no network, no install)."""
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{plugins.GROUP}]\n{entry_points}\n")


def test_an_entry_point_plugin_runs_and_its_undeclared_twin_does_not(site, tmp_path):
    _module(site, "tvt_ep")       # no decorator on `make`: the entry point declares it
    _module(site, "tvt_ep_twin")  # the same source, declared nowhere
    _distribution(site, "tvt-ep", "tvt-line = tvt_ep:make")
    assert plugins.entry_point_families()["tvt-line"] == "tvt_ep:make"
    assert "tvt-line" in plugins.offered_families()
    assert not _imported(site, "tvt_ep")  # listing entry points imports nothing

    by_name, by_spec = tmp_path / "by-name", tmp_path / "by-spec"
    assert isinstance(make_family("tvt-line", {"marker": str(by_name)}), Linear2D)
    make_family("tvt_ep:make", {"marker": str(by_spec)})
    assert by_name.exists() and by_spec.exists()
    assert from_dict({"family": "tvt-line"}).family == "tvt-line"

    # a declared module's other functions: called only if decorated
    marked, plain = tmp_path / "marked", tmp_path / "plain"
    make_family("tvt_ep:marked", {"marker": str(marked)})
    assert marked.exists()
    with pytest.raises(ValueError, match="tvt_ep is a declared module but plain is not marked "
                                         "@trajviz.task_family"):
        make_family("tvt_ep:plain", {"marker": str(plain)})
    assert not plain.exists()

    twin = tmp_path / "twin"
    with pytest.raises(ValueError, match="'tvt_ep_twin:make' is not a declared plugin"):
        make_family("tvt_ep_twin:make", {"marker": str(twin)})
    assert not twin.exists() and not _imported(site, "tvt_ep_twin")


def test_entry_points_never_shadow_a_built_in_family(site):
    _distribution(site, "tvt-shadow", "sinusoid = tvt_shadow:make")
    assert "sinusoid" not in plugins.entry_point_families()
    assert type(make_family("sinusoid")).__name__ == "Sinusoid"


def test_the_decorator_refuses_a_built_in_or_odd_name():
    with pytest.raises(ValueError, match="@task_family name 'sinusoid' must be"):
        plugins.task_family(name="sinusoid")(lambda: None)
    with pytest.raises(ValueError, match="@task_family name 'a:b' must be"):
        plugins.task_family(name="a:b")(lambda: None)


# ---------------------------------------------------------------------------- the CLI and TOML

def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


TINY = ["--meta-steps", "1", "--steps", "2", "--learners", "random", "--set", "heldout_tasks=2",
        "--set", "slices.resolution=5", "--set", "outer.eval_tasks=2", "--quiet"]

# (id, TOML text or None, extra argv, what the one line says); nothing runs or is written
TRUST_BAD = [
    ("toml-os-system", 'family = "os:system"\n[family_options]\ncommand = "touch {marker}"\n', [],
     "family 'os:system' is not a declared plugin, so it is neither imported nor run"),
    ("toml-undeclared-module", 'family = "tvt_cli:make"\n[family_options]\nmarker = "{marker}"\n',
     [], "family 'tvt_cli:make' is not a declared plugin"),
    ("flag-undeclared-module", None, ["--family", "tvt_cli:make"],
     "family 'tvt_cli:make' is not a declared plugin"),
    ("toml-cannot-trust", 'trust_plugins = ["os:system"]\nfamily = "os:system"\n', [],
     "family 'os:system' is not a declared plugin"),
    ("toml-trust-key-unknown", 'trust_plugins = ["tvt_cli:make"]\n', [],
     "unknown config key(s) ['trust_plugins']"),
    ("trust-flag-bad-form", None, ["--trust-plugin", "os.system"],
     "--trust-plugin takes 'package.module:function', got 'os.system'"),
]


@pytest.mark.parametrize("toml, argv, needle", [c[1:] for c in TRUST_BAD],
                         ids=[c[0] for c in TRUST_BAD])
def test_an_undeclared_family_from_a_file_or_flag_runs_nothing(toml, argv, needle, site,
                                                               tmp_path, capsys):
    _module(site, "tvt_cli", deco="@trajviz.task_family")
    marker = tmp_path / "MARKER"
    args = ["run", "--out", str(tmp_path / "runs"), *TINY, *argv]
    if toml is not None:
        (tmp_path / "c.toml").write_text(toml.format(marker=marker))
        args += ["--config", str(tmp_path / "c.toml")]
    before = _files(tmp_path)
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("trajviz: error: ") and needle in err, err
    assert _files(tmp_path) == before and not marker.exists()
    assert "tvt_cli" not in sys.modules


@pytest.mark.parametrize("command", [["serve"], ["demo"], ["list"], ["export", "r", "--format", "html"]])
def test_the_page_and_other_commands_take_no_trust_flag(command, tmp_path, capsys):
    assert cli.main([*command, "--trust-plugin", "os:system"]) == 2
    assert "unrecognized arguments: --trust-plugin" in capsys.readouterr().err


def test_trust_plugin_on_the_command_line_runs_your_own_script(site, tmp_path, capsys):
    _module(site, "tvt_script")  # undecorated: a quick script of one's own
    marker = tmp_path / "called"
    out = tmp_path / "runs"
    assert cli.main(["run", "--family", "tvt_script:make", "--trust-plugin", "tvt_script:make",
                     "--set", f"family_options={{marker='{marker}'}}", "--out", str(out),
                     *TINY]) == 0, capsys.readouterr().err
    assert marker.read_text() == "called"
    (run,) = out.iterdir()
    assert '"family": "tvt_script:make"' in (run / "run.json").read_text()


def test_load_toml_takes_the_keyword_not_the_file(site, tmp_path):
    _module(site, "tvt_kw")
    (tmp_path / "c.toml").write_text('family = "tvt_kw:make"\n')
    with pytest.raises(ValueError, match="'tvt_kw:make' is not a declared plugin"):
        load_toml(tmp_path / "c.toml")
    assert load_toml(tmp_path / "c.toml", trust_plugins=["tvt_kw:make"]).family == "tvt_kw:make"
    assert "tvt_kw" not in sys.modules  # trusted, but only a run imports it


@pytest.mark.parametrize("command", [["birthmap", "{run}", "--quiet"],
                                     ["whatif", "{run}", "--set", "inner.lr=0.02"]])
def test_a_stored_run_cannot_name_undeclared_code(command, tmp_path, capsys):
    """run.json is data too: a run whose config names os:system is refused when rebuilt."""
    import dataclasses
    import json

    from app_fixtures import make_run, write_run_dir

    marker = tmp_path / "MARKER"
    run = make_run(run_id="hostile", learners=("leap",), n_tasks=2, steps=3)
    config = {**run.config, "family": "os:system", "family_options": {"command": f"touch {marker}"}}
    path = write_run_dir(tmp_path / "runs", dataclasses.replace(run, config=config))
    assert json.loads((path / "run.json").read_text())["config"]["family"] == "os:system"
    before = _files(tmp_path)
    assert cli.main([a.replace("{run}", str(path)) for a in command]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'os:system' is not a declared plugin" in err, err
    assert _files(tmp_path) == before and not marker.exists()


def test_a_worker_rebuilds_only_what_this_process_checked(site, tmp_path):
    """A Dask worker rebuilds the problem from a ProblemRef this process made: the ref is
    made only for a declared or trusted family, and carries that it was checked."""
    import copy

    from trajviz.engine.context import ProblemRef

    _module(site, "tvt_ref")
    with pytest.raises(ValueError, match="'os:system' is not a declared plugin"):
        ProblemRef.of("os:system", {"command": "id"})
    plugins.trust("tvt_ref:make")
    ref = ProblemRef.of("tvt_ref:make", {"marker": str(tmp_path / "m")})
    assert ref.trusted and ref.family == "tvt_ref:make"
    assert not ProblemRef.of("sinusoid").trusted
    plugins._TRUSTED.clear()  # as in a fresh worker process
    # a Dask worker gets the ref by its reduce protocol (what copy uses too), untrusted there
    assert copy.deepcopy(ref).problem().model.spec.size == 2
    assert (tmp_path / "m").exists()
