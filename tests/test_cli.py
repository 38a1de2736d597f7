"""The CLI edge: bad configs and flags give one clear line, exit status 2, nothing written."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajviz.cli.main import main

TINY = ["--meta-steps", "2", "--set", "outer.meta_batch=2", "--set", "heldout_tasks=2",
        "--steps", "2", "--set", "slices.resolution=5", "--set", "outer.eval_tasks=2",
        "--learners", "leap,random", "--quiet"]


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


# (id, extra argv, config file text or None, what the message must mention)
BAD = [
    ("unknown-top-key", [], "colour = 'red'\n", "unknown config key"),
    ("unknown-inner-key", [], "[inner]\nlearning_rate = 0.1\n", "inner.learning_rate"),
    ("unknown-section", ["--set", "bogus.x=1"], None, "bogus"),
    ("wrong-type-steps", [], "[inner]\nsteps = 'ten'\n", "inner.steps"),
    ("float-steps", [], "[inner]\nsteps = 2.5\n", "inner.steps"),
    ("bool-seed", [], "seed = true\n", "seed"),
    ("negative-lr", ["--set", "inner.lr=-0.1"], None, "inner.lr"),
    ("zero-lr", ["--set", "inner.lr=0"], None, "inner.lr"),
    ("zero-steps", ["--steps", "0"], None, "inner.steps"),
    ("negative-steps", ["--steps", "-3"], None, "inner.steps"),
    ("zero-meta-steps", ["--meta-steps", "0"], None, "outer.meta_steps"),
    ("zero-meta-batch", ["--set", "outer.meta_batch=0"], None, "outer.meta_batch"),
    ("negative-outer-lr", ["--set", "outer.lr=-1"], None, "outer.lr"),
    ("zero-heldout", ["--set", "heldout_tasks=0"], None, "heldout_tasks"),
    ("negative-batch", ["--set", "inner.batch_size=-1"], None, "inner.batch_size"),
    ("huge-grid", ["--set", "slices.resolution=1000"], None, "resolution"),
    ("tiny-grid", ["--set", "slices.resolution=1"], None, "resolution"),
    ("unknown-learner", ["--learners", "leap,maml2"], None, "maml2"),
    ("no-known-learner", ["--learners", "foo,bar"], None, "accepted"),
    ("empty-learners", ["--set", "learners=[]"], None, "learners"),
    ("duplicate-learner", ["--learners", "leap,leap"], None, "twice"),
    ("unknown-family", ["--family", "cifar"], None, "cifar"),
    ("bad-plugin", ["--family", "no_such_module_xyz:make"], None, "no_such_module_xyz"),
    ("unknown-optimizer", ["--set", "inner.optimizer='rmsprop'"], None, "rmsprop"),
    ("unknown-outer-optimizer", ["--set", "outer.optimizer='lbfgs'"], None, "lbfgs"),
    ("unknown-slice", ["--set", "slices.kinds=['tsne']"], None, "tsne"),
    ("bad-origin", ["--set", "slices.origin='maml'", "--learners", "leap,random"], None, "origin"),
    ("bad-final-origin", ["--set", "slices.origin='final:maml'", "--learners", "leap,random"], None, "final"),
    ("exact-on-mlp", ["--set", "slices.kinds=['exact']"], None, "2-parameter"),
    ("bad-dtype", ["--set", "dtype='float16'"], None, "dtype"),
    ("bad-device", ["--device", "tpu"], None, "device"),
    ("cuda-missing", ["--device", "cuda"], None, "cuda"),
    ("unknown-family-option", ["--set", "family_options={colour='red'}"], None, "colour"),
    ("bad-family-option-type", ["--set", "family_options={shots='many'}"], None, "shots"),
    ("batch-exceeds-pool", ["--set", "inner.batch_size=500"], None, "batch_size"),
    ("bad-set-syntax", ["--set", "inner.lr"], None, "KEY=VALUE"),
    ("non-int-seed-flag", ["--seed", "abc"], None, "--seed"),
    ("unknown-flag", ["--colour", "red"], None, "unrecognized"),
    ("learner-option-unknown", [], "learners = ['leap']\n[learner_options.leap]\nnorms = true\n", "norms"),
    ("learner-options-stray", [], "learners = ['leap']\n[learner_options.maml]\nfirst_order = true\n", "maml"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_config_is_one_line_exit_2_nothing_written(case, tmp_path, capsys):
    name, argv, toml, needle = case
    out = tmp_path / "runs"
    args = ["run", "--out", str(out), *TINY, *argv]
    if toml is not None:
        args += ["--config", str(write(tmp_path, "c.toml", toml))]
    if name == "cuda-missing":
        pytest.importorskip("torch")
        import torch
        if torch.cuda.is_available():
            pytest.skip("a CUDA device is present")
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("trajviz: error:") or "trajviz" in err
    assert needle.lower() in err.lower(), err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("argv, needle", [
    (["run", "--config", "/no/such/file.toml"], "does not exist"),
    (["run", "--config", "{dir}"], "cannot read"),
    (["run", "--config", "{garbage}"], "not valid TOML"),
    (["run", "--config", "{binary}"], "cannot read"),
    (["run", "--out", "{file}"], "is a file"),
    (["serve", "--port", "70000"], "port"),
    (["export", "{missing_run}", "--format", "pdf"], "run"),
    (["export", "{missing_run}", "--format", "gif"], "invalid choice"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
], ids=["missing-file", "dir-as-file", "garbage-toml", "binary-toml", "out-is-file", "bad-port", "missing-run",
        "bad-format", "unknown-command", "no-command"])
def test_bad_files_and_flags(argv, needle, tmp_path, capsys):
    a_file = write(tmp_path, "plain.txt", "x")
    garbage = write(tmp_path, "g.toml", "a = = [")
    binary = write(tmp_path, "b.toml", b"\xff\xfe\x00")
    subst = {"{dir}": str(tmp_path), "{garbage}": str(garbage), "{binary}": str(binary), "{file}": str(a_file),
             "{missing_run}": str(tmp_path / "nope")}
    argv = [subst.get(a, a) for a in argv]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert needle.lower() in err.lower(), err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_run_then_list(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["run", "--out", str(out), "--family", "linear2d", "--seed", "3", *TINY,
                 "--set", "slices.kinds=['exact','pca']"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.parent == out and (path / "run.json").exists()
    meta = json.loads((path / "run.json").read_text())
    assert meta["config"]["seed"] == 3 and meta["config"]["family"] == "linear2d"
    assert meta["config"]["learners"] == ["leap", "random"]
    (out / "broken").mkdir()
    (out / "broken" / "run.json").write_text("{not json")
    assert main(["list", str(out)]) == 0
    listing = capsys.readouterr().out
    assert path.name in listing and "BROKEN" in listing


def test_help_lists_every_run_option(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--config", "--family", "--learners", "--seed", "--out", "--steps", "--meta-steps",
                 "--device", "--set"):
        assert flag in text


def test_an_internal_error_is_one_line_or_with_trajviz_debug_its_traceback(monkeypatch, capsys):
    from trajviz.cli import main as cli

    def broken(args):
        raise RuntimeError("an internal bug\nover two lines")
    monkeypatch.setitem(cli.COMMANDS, "list", broken)
    monkeypatch.delenv("TRAJVIZ_DEBUG", raising=False)
    assert main(["list", "."]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "RuntimeError: an internal bug over two lines" in err and "TRAJVIZ_DEBUG=1" in err
    monkeypatch.setenv("TRAJVIZ_DEBUG", "1")
    with pytest.raises(RuntimeError, match="an internal bug"):
        main(["list", "."])
