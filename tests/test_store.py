"""Runs on disk: bit-identical round trips, light loads, atomic writes, broken runs listed."""
from __future__ import annotations

import json
import math
import os
import re
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from trajviz import store
from trajviz.data.run import SCHEMA_VERSION, LearnerRecord, Run, Slice, Surface, View
from trajviz.store import RunEntry, RunError, list_runs, load_run, new_run_id, write_run

T, K, P, S, E, A, B = 3, 4, 7, 5, 4, 5, 6  # tasks, inner steps, params, meta-steps, evals, grid
HEAVY = {"params", "grads", "meta_path", "origin", "basis"}


# ---------------------------------------------------------------------------- helpers

def _f32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _learner(rng: np.random.Generator, name: str) -> LearnerRecord:
    params = _f32(rng, T, K + 1, P)
    params[1, 3, 2] = np.nan
    losses = rng.random((T, K + 1)).astype(np.float32)
    losses[2, 4] = np.nan
    losses[2, 3] = np.inf
    meta_path = _f32(rng, S + 1, P)
    meta_path[0, 0] = -np.inf
    return LearnerRecord(
        name=name,
        theta0=_f32(rng, P),
        meta_path_steps=np.arange(0, 10 * (S + 1), 10, dtype=np.int64),
        meta_path=meta_path,
        eval_steps=np.arange(E, dtype=np.int32) * 20,
        evals={"loss": rng.random(E), "accuracy": rng.random(E).astype(np.float32)},
        params=params,
        losses=losses,
        grads=_f32(rng, T, K + 1, P),
        query_losses=rng.random((T, K + 1)).astype(np.float32),
        diverged_at=np.array([-1, -1, 3], dtype=np.int64),
        metrics={"path_length": rng.random(T), "monotone": np.array([True, False, True])},
        running={"loss_auc": rng.random((T, K + 1)).astype(np.float32)},
    )


def _view(rng: np.random.Generator, name: str, learners: list[str], ev: list[float]) -> View:
    sl = Slice(kind=name, origin=_f32(rng, P), basis=_f32(rng, 2, P),
               explained_variance=np.array(ev, dtype=np.float32),
               extent=(-1.5, 2.0, -0.25, 3.0), label=f"{name} axes (µ)")
    loss = rng.random((T, B, A)).astype(np.float32)
    loss[0, 0, 0] = np.nan
    surface = Surface(alpha=np.linspace(-1.5, 2.0, A, dtype=np.float32),
                      beta=np.linspace(-0.25, 3.0, B, dtype=np.float32),
                      loss=loss, mean=loss.mean(axis=0), task_ids=np.arange(T, dtype=np.int64))
    return View(
        name=name, slice=sl, surface=surface,
        coords={n: _f32(rng, T, K + 1, 2) for n in learners},
        residual={n: rng.random((T, K + 1)).astype(np.float32) for n in learners},
        plane_loss={n: rng.random((T, K + 1)).astype(np.float32) for n in learners},
        meta_coords={n: _f32(rng, S + 1, 2) for n in learners},
        meta_residual={n: rng.random(S + 1) for n in learners[:1]},  # dicts may differ in keys
    )


def make_run(run_id: str = "20261127-063012-sinusoid-3fa9", created: str = "2026-11-27T06:30:12",
             seed: int = 0) -> Run:
    rng = np.random.default_rng(seed)
    names = ["leap", "a learner/with odd name"]
    return Run(
        run_id=run_id,
        config={"name": "demo", "family": "pkg.mod:fn", "learners": names,
                "inner": {"lr": 0.01, "steps": K, "nesterov": False}, "margin": float("inf"),
                "family_options": {"amplitude": [0.1, 5.0]}},
        info={"schema_version": SCHEMA_VERSION, "seed": 0, "created": created,
              "versions": {"numpy": np.__version__}, "timings": {"meta_train_s": 1.25},
              "summary": {"leap": {"path_length": float("nan"), "final_loss": -float("inf")}}},
        task_ids=np.array([11, 12, 13], dtype=np.int64),
        task_info={"amplitude": rng.random(T), "phase": rng.random(T).astype(np.float32)},
        learners={n: _learner(rng, n) for n in names},
        views={"pca": _view(rng, "pca", names, [0.75, 0.125]),
               "exact": _view(rng, "exact", names, [np.nan, np.nan])},
        extra={"note": "synthetic"},
    )


def same_data(a, b) -> bool:
    """Deep equality of JSON-like data, with NaN equal to NaN and the same key order."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict):
        return (isinstance(b, dict) and list(a) == list(b)
                and all(same_data(a[k], b[k]) for k in a))
    if isinstance(a, (list, tuple)):
        return (isinstance(b, (list, tuple)) and len(a) == len(b)
                and all(same_data(x, y) for x, y in zip(a, b)))
    return type(a) is type(b) and a == b


def assert_same_array(a: np.ndarray, b: np.ndarray, what: str) -> None:
    assert isinstance(b, np.ndarray), what
    assert a.dtype == b.dtype and a.dtype.str == b.dtype.str, (what, a.dtype, b.dtype)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), what
    assert a.tobytes() == b.tobytes(), what  # bit-identical, NaN payloads included


def array_fields(run: Run):
    """(label, array, is_heavy) for every array of a run."""
    yield "task_ids", run.task_ids, False
    for k, v in run.task_info.items():
        yield f"task_info.{k}", v, False
    for name, rec in run.learners.items():
        for field in ("theta0", "meta_path_steps", "meta_path", "eval_steps", "params", "losses",
                      "grads", "query_losses", "diverged_at"):
            yield f"{name}.{field}", getattr(rec, field), field in HEAVY
        for field in ("evals", "metrics", "running"):
            for k, v in getattr(rec, field).items():
                yield f"{name}.{field}.{k}", v, False
    for name, view in run.views.items():
        for field in ("origin", "basis", "explained_variance"):
            yield f"{name}.slice.{field}", getattr(view.slice, field), field in HEAVY
        for field in ("alpha", "beta", "loss", "mean", "task_ids"):
            yield f"{name}.surface.{field}", getattr(view.surface, field), False
        for field in ("coords", "residual", "plane_loss", "meta_coords", "meta_residual"):
            for k, v in getattr(view, field).items():
                yield f"{name}.{field}.{k}", v, False


def assert_same_structure(run: Run, back: Run) -> None:
    assert back.run_id == run.run_id
    assert list(back.learners) == list(run.learners)
    assert list(back.views) == list(run.views)
    assert [r.name for r in back.learners.values()] == [r.name for r in run.learners.values()]
    for name, view in run.views.items():
        got = back.views[name]
        assert got.name == view.name
        assert (got.slice.kind, got.slice.label) == (view.slice.kind, view.slice.label)
        assert got.slice.extent == view.slice.extent and isinstance(got.slice.extent, tuple)
        for field in ("coords", "residual", "plane_loss", "meta_coords", "meta_residual"):
            assert list(getattr(got, field)) == list(getattr(view, field))
    for name, rec in run.learners.items():
        for field in ("evals", "metrics", "running"):
            assert list(getattr(back.learners[name], field)) == list(getattr(rec, field))
    assert list(back.task_info) == list(run.task_info)
    assert same_data(back.config, run.config)
    assert same_data(back.info, run.info)
    assert same_data(back.extra, run.extra)


# ---------------------------------------------------------------------------- round trip

def test_round_trip_is_bit_identical(tmp_path: Path) -> None:
    run = make_run()
    path = write_run(run, tmp_path / "runs")  # runs_dir is created
    assert path == tmp_path / "runs" / run.run_id
    assert sorted(os.listdir(path)) == ["heavy.npz", "light.npz", "run.json"]
    back = load_run(path)
    assert_same_structure(run, back)
    for (label, a, _), (_, b, _) in zip(array_fields(run), array_fields(back), strict=True):
        assert_same_array(a, b, label)
    assert back.steps == K


def test_a_run_written_before_the_meta_path_steps_rename_still_loads(tmp_path: Path) -> None:
    """Runs written before stored each learner's meta-step indices as ``meta_steps``
    (field, index entry and npz key); they load with the same values as ``meta_path_steps``."""
    run = make_run()
    path = write_run(run, tmp_path)
    doc = json.loads((path / "run.json").read_text())
    light = dict(np.load(path / "light.npz", allow_pickle=False))
    for _, entry in doc["learners"]:
        new_key = entry["arrays"].pop("meta_path_steps")
        old_key = new_key.replace("meta_path_steps", "meta_steps")
        entry["arrays"]["meta_steps"] = old_key
        doc["arrays"][old_key] = doc["arrays"].pop(new_key)
        light[old_key] = light.pop(new_key)
    (path / "run.json").write_text(json.dumps(doc))
    os.remove(path / "light.npz")
    np.savez(path / "light.npz", **light)
    assert "learner0.meta_steps" in np.load(path / "light.npz").files
    back = load_run(path)
    for name, rec in run.learners.items():
        assert_same_array(rec.meta_path_steps, back.learners[name].meta_path_steps, name)
    assert store.check_run(path)["learners"][0][1]["arrays"]["meta_path_steps"] == \
        "learner0.meta_steps"


def test_heavy_file_holds_exactly_the_p_sized_arrays(tmp_path: Path) -> None:
    run = make_run()
    path = write_run(run, tmp_path)
    heavy_keys = set(np.load(path / "heavy.npz", allow_pickle=False).files)
    light_keys = set(np.load(path / "light.npz", allow_pickle=False).files)
    assert not heavy_keys & light_keys
    assert {k.rsplit(".", 1)[-1] for k in heavy_keys} == HEAVY
    n_heavy = sum(1 for *_, h in array_fields(run) if h)
    n_light = sum(1 for *_, h in array_fields(run) if not h) - 1  # task_ids live in run.json
    assert (len(heavy_keys), len(light_keys)) == (n_heavy, n_light)


def test_light_load_skips_the_heavy_file(tmp_path: Path) -> None:
    run = make_run()
    path = write_run(run, tmp_path)
    back = load_run(path, heavy=False)
    assert_same_structure(run, back)
    for (label, a, heavy), (_, b, _) in zip(array_fields(run), array_fields(back), strict=True):
        if heavy:
            assert b.dtype == np.float32 and b.size == 0, label
            assert b.shape == a.shape[:-1] + (0,), label
        else:
            assert_same_array(a, b, label)
    rec = back.learners["leap"]
    assert rec.params.shape == (T, K + 1, 0) and rec.grads.shape == (T, K + 1, 0)
    assert rec.meta_path.shape == (S + 1, 0)
    assert back.views["pca"].slice.origin.shape == (0,)
    assert back.views["pca"].slice.basis.shape == (2, 0)
    # heavy=False still checks that heavy.npz is there, as list_runs does
    (path / "heavy.npz").unlink()
    with pytest.raises(RunError, match="heavy.npz is missing"):
        load_run(path, heavy=False)


def test_no_pickle_anywhere(tmp_path: Path) -> None:
    path = write_run(make_run(), tmp_path)
    for name in ("light.npz", "heavy.npz"):
        with np.load(path / name, allow_pickle=False) as npz:
            assert npz.files
            for key in npz.files:
                assert npz[key].dtype.kind in "biufc", (name, key)
    doc = json.loads((path / "run.json").read_text(encoding="utf-8"))
    assert doc["schema_version"] == SCHEMA_VERSION and doc["run_id"] == path.name
    assert [n for n, _ in doc["learners"]] == ["leap", "a learner/with odd name"]
    assert doc["views"][0][1]["slice"]["explained_variance"] == [0.75, 0.125]
    assert doc["views"][0][1]["slice"]["extent"] == [-1.5, 2.0, -0.25, 3.0]
    # strict JSON: non-finite floats are null, with their place and value listed in "nonfinite"
    text = (path / "run.json").read_text(encoding="utf-8")

    def refuse(token: str):
        raise ValueError(f"non-standard JSON token {token}")
    strict = json.loads(text, parse_constant=refuse)
    assert strict["config"]["margin"] is None
    assert strict["info"]["summary"]["leap"] == {"path_length": None, "final_loss": None}
    assert strict["views"][1][1]["slice"]["explained_variance"] == [None, None]
    assert [["config", "margin"], "Infinity"] in strict["nonfinite"]
    assert [["info", "summary", "leap", "path_length"], "NaN"] in strict["nonfinite"]
    assert [["info", "summary", "leap", "final_loss"], "-Infinity"] in strict["nonfinite"]
    assert len(strict["nonfinite"]) == 5


def test_object_arrays_and_non_json_values_are_refused_before_writing(tmp_path: Path) -> None:
    run = make_run()
    bad = dict(run.learners)
    rec = bad["leap"]
    bad["leap"] = LearnerRecord(**{**rec.__dict__, "metrics": {"x": np.array([1, "a"], dtype=object)}})
    with pytest.raises(ValueError, match=r"metrics\['x'\] has dtype object"):
        write_run(Run(**{**run.__dict__, "learners": bad}), tmp_path)
    with pytest.raises(TypeError, match=r"config\['f'\] holds a builtin_function_or_method"):
        write_run(Run(**{**run.__dict__, "config": {"f": print}}), tmp_path)
    with pytest.raises(TypeError, match="only string keys"):
        write_run(Run(**{**run.__dict__, "info": {1: "x"}}), tmp_path)
    assert os.listdir(tmp_path) == []


def test_numpy_scalars_in_info_become_plain_json(tmp_path: Path) -> None:
    run = make_run()
    info = {"seed": np.int64(3), "loss": np.float32(0.5), "ok": np.bool_(True),
            "v": np.arange(2), "t": (1, 2)}
    back = load_run(write_run(Run(**{**run.__dict__, "info": info}), tmp_path))
    assert back.info == {"seed": 3, "loss": 0.5, "ok": True, "v": [0, 1], "t": [1, 2]}


# ---------------------------------------------------------------------------- atomic writes

@pytest.mark.parametrize("fail_on_call", [1, 2])
def test_failure_mid_write_leaves_no_run_and_no_temp_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_on_call: int) -> None:
    real_savez = np.savez
    calls = []

    def flaky_savez(file, **arrays):
        calls.append(file)
        if len(calls) == fail_on_call:
            file.write(b"PK\x03\x04 half a file")
            raise OSError("disk full")
        return real_savez(file, **arrays)

    monkeypatch.setattr(store.np, "savez", flaky_savez)
    runs = tmp_path / "runs"
    run = make_run()
    with pytest.raises(OSError, match="disk full"):
        write_run(run, runs)
    assert len(calls) == fail_on_call
    assert os.listdir(runs) == []  # neither the run nor its .tmp- folder
    assert list_runs(runs) == []
    monkeypatch.setattr(store.np, "savez", real_savez)
    load_run(write_run(run, runs))  # the same id can be written afterwards


def test_writing_an_existing_run_id_raises(tmp_path: Path) -> None:
    run = make_run()
    path = write_run(run, tmp_path)
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    with pytest.raises(ValueError, match=re.escape(str(path)) + " already exists"):
        write_run(make_run(seed=1), tmp_path)
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert os.listdir(tmp_path) == [run.run_id]


@pytest.mark.parametrize("run_id", ["", ".hidden", "../escape", "a/b", "-x", "a b", "x" * 201])
def test_unsafe_run_ids_are_refused(tmp_path: Path, run_id: str) -> None:
    with pytest.raises(ValueError, match="not a safe folder name"):
        write_run(make_run(run_id=run_id), tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_new_run_id_is_timestamped_and_sanitised(tmp_path: Path) -> None:
    when = datetime(2026, 11, 27, 6, 30, 12)
    rid = new_run_id("sinusoid", when)
    assert re.fullmatch(r"20261127-063012-sinusoid-[0-9a-f]{4}", rid)
    assert re.fullmatch(r"20261127-063012-my-pkg-tasks-make-wave-[0-9a-f]{4}",
                        new_run_id("My_pkg.tasks:make wave/../", when))
    assert re.fullmatch(r"20261127-063012-run-[0-9a-f]{4}", new_run_id(":::", when))
    long = new_run_id("a" * 100, when)
    assert len(long) == len("20261127-063012-") + 40 + 5
    assert re.fullmatch(r"\d{8}-\d{6}-linear2d-[0-9a-f]{4}", new_run_id("linear2d"))
    assert len({new_run_id("x", when) for _ in range(50)}) > 1
    write_run(make_run(run_id=new_run_id("pkg.mod:fn", when)), tmp_path)  # accepted by the writer


# ---------------------------------------------------------------------------- broken runs

def _corrupt_npz(path: Path) -> str:
    data = (path / "light.npz").read_bytes()
    (path / "light.npz").write_bytes(data[: len(data) // 2])  # truncated: no zip directory
    return "light.npz is not a readable npz"


def _invalid_json(path: Path) -> str:
    (path / "run.json").write_text('{"schema_version": 1, "run_id": ', encoding="utf-8")
    return "run.json is not valid JSON"


def _schema_mismatch(path: Path) -> str:
    doc = json.loads((path / "run.json").read_text(encoding="utf-8"))
    doc["schema_version"] = 99
    (path / "run.json").write_text(json.dumps(doc), encoding="utf-8")
    return f"schema version 99, this trajviz reads {SCHEMA_VERSION}"


def _missing_npz(path: Path) -> str:
    (path / "heavy.npz").unlink()
    return "heavy.npz is missing"


def _missing_json(path: Path) -> str:
    (path / "run.json").unlink()
    return "run.json is missing"


def _wrong_shape(path: Path) -> str:
    doc = json.loads((path / "run.json").read_text(encoding="utf-8"))
    doc["arrays"]["learner0.losses"]["shape"] = [T, K]
    (path / "run.json").write_text(json.dumps(doc), encoding="utf-8")
    return f"array 'learner0.losses' is [{T}, {K + 1}] <f4, run.json records [{T}, {K}] <f4"


BREAKERS = [_corrupt_npz, _invalid_json, _schema_mismatch, _missing_npz, _missing_json, _wrong_shape]


def test_broken_runs_are_listed_and_refused_while_good_runs_still_load(tmp_path: Path) -> None:
    good = write_run(make_run("good", created="2026-01-01T00:00:00"), tmp_path)
    expected = {}
    for i, breaker in enumerate(BREAKERS):
        path = write_run(make_run(f"bad{i}", created=f"2026-02-0{i + 1}T00:00:00"), tmp_path)
        expected[path.name] = breaker(path)
    (tmp_path / ".tmp-half-0000").mkdir()  # an unfinished write
    (tmp_path / "notes.txt").write_text("not a run")

    entries = {e.run_id: e for e in list_runs(tmp_path)}
    assert set(entries) == {"good", *expected}
    assert entries["good"].ok and entries["good"].reason == ""
    for run_id, reason in expected.items():
        entry = entries[run_id]
        assert not entry.ok, run_id
        assert reason in entry.reason, (run_id, entry.reason)
        with pytest.raises(RunError) as err:
            load_run(tmp_path / run_id)
        assert reason in str(err.value) and str(tmp_path / run_id) in str(err.value)
        assert "\n" not in str(err.value) and isinstance(err.value, ValueError)
        assert err.value.reason == entry.reason
    # what run.json still says is shown for a run that is readable but refused
    assert entries["bad2"].learners == ("leap", "a learner/with odd name")
    assert entries["bad1"].learners == () and entries["bad1"].created == ""
    back = load_run(good)
    assert_same_array(back.learners["leap"].params, make_run().learners["leap"].params, "params")


def test_corrupt_array_data_is_found_by_load_run(tmp_path: Path) -> None:
    path = write_run(make_run(), tmp_path)
    with zipfile.ZipFile(path / "heavy.npz") as zf:
        info = zf.getinfo("learner0.params.npy")
        offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    data = bytearray((path / "heavy.npz").read_bytes())
    data[offset] ^= 0xFF  # one flipped byte in the stored array data
    (path / "heavy.npz").write_bytes(bytes(data))
    with pytest.raises(RunError, match="heavy.npz is not a readable npz.*CRC"):
        load_run(path)
    entry = list_runs(tmp_path)[0]  # a small array's CRC is checked even by the header read
    assert not entry.ok and "CRC" in entry.reason


def test_list_runs_sorts_newest_first_and_fills_entries(tmp_path: Path) -> None:
    assert list_runs(tmp_path / "missing") == []
    assert list_runs(tmp_path) == []
    write_run(make_run("b-old", created="2026-01-01T00:00:00"), tmp_path)
    write_run(make_run("a-new", created="2026-03-01T00:00:00"), tmp_path)
    write_run(make_run("c-mid", created="2026-02-01T00:00:00"), tmp_path)
    write_run(make_run("d-mid", created="2026-02-01T00:00:00"), tmp_path)
    entries = list_runs(tmp_path)
    assert [e.run_id for e in entries] == ["a-new", "d-mid", "c-mid", "b-old"]
    assert entries[0] == RunEntry(
        run_id="a-new", path=tmp_path / "a-new", ok=True, reason="", name="demo",
        family="pkg.mod:fn", learners=("leap", "a learner/with odd name"),
        created="2026-03-01T00:00:00", views=("pca", "exact"))
    with pytest.raises(AttributeError):
        entries[0].ok = False  # frozen


@pytest.mark.parametrize("entry", [[["run_id"], "NaN"], [["info", "nope"], "NaN"], [["config", "margin"], "nan"],
                                   "garbage", [[], "NaN"]])
def test_a_malformed_nonfinite_list_is_refused(tmp_path: Path, entry) -> None:
    path = write_run(make_run(), tmp_path)
    doc = json.loads((path / "run.json").read_text(encoding="utf-8"))
    doc["nonfinite"].append(entry)
    (path / "run.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(RunError, match="nonfinite"):
        load_run(path)


def test_load_run_slices_reads_only_the_slices_of_heavy_npz(tmp_path):
    """heavy="slices" (the page's workers): slice origin and basis as written, the
    recorded paths' params and grads not read ([.., 0]), everything light as written."""
    from app_fixtures import make_run as make_app_run

    from trajviz.store import load_run, write_run

    path = write_run(make_app_run(n_params=3), tmp_path)
    full, some = load_run(path), load_run(path, heavy="slices")
    for name, view in full.views.items():
        np.testing.assert_array_equal(some.views[name].slice.origin, view.slice.origin)
        np.testing.assert_array_equal(some.views[name].slice.basis, view.slice.basis)
    for name, rec in full.learners.items():
        assert some.learners[name].params.shape == rec.params.shape[:-1] + (0,)
        assert some.learners[name].grads.shape == rec.grads.shape[:-1] + (0,)
        np.testing.assert_array_equal(some.learners[name].losses, rec.losses)
        np.testing.assert_array_equal(some.learners[name].theta0, rec.theta0)
    with pytest.raises(ValueError, match="heavy must be True, False or 'slices'"):
        load_run(path, heavy="params")
