"""A 2-worker Dask LocalCluster gives what the in-process executor gives: bitwise in float64,
within 1e-6 in float32, also when a worker dies mid-job; an unreachable cluster is one line."""
from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed (pip install 'trajviz[dask]')")

from dask_faults import DyingFirst  # noqa: E402  (tests/, importable by the workers too)

from trajviz.cli.main import main  # noqa: E402
from trajviz.engine import context as ctx_module  # noqa: E402
from trajviz.engine.context import ProblemRef  # noqa: E402
from trajviz.engine.executors import dask_cluster as executor_dask  # noqa: E402
from trajviz.engine.executors.dask_cluster import DaskExecutor  # noqa: E402
from trajviz.engine.slices import Slice  # noqa: E402
from trajviz.engine.surface import evaluate_surface  # noqa: E402
from trajviz.engine.work import Work  # noqa: E402
from trajviz.pipeline.experiment import run_experiment  # noqa: E402
from trajviz.problem.models import flatten  # noqa: E402
from trajviz.problem.tasks import make_family  # noqa: E402

OPTIONS = {"hidden": (16, 16), "shots": 9}
REF = ProblemRef.of("sinusoid", OPTIONS)


@pytest.mark.parametrize(("n_chunks", "threads", "sizes"), [
    (10, 2, [1] * 10), (40, 2, [2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3]), (3, 8, [1, 1, 1]),
    (0, 2, []), (17, 1, [2, 2, 2, 2, 2, 2, 2, 3]),
])
def test_chunks_go_out_in_about_eight_consecutive_batches_per_thread(n_chunks, threads, sizes):
    groups = executor_dask.batches(n_chunks, threads)
    assert [len(g) for g in groups] == sizes
    assert [i for g in groups for i in g] == list(range(n_chunks))


@pytest.fixture(scope="module")
def cluster():
    with DaskExecutor.local(2) as ex:
        yield ex


@pytest.fixture(scope="module")
def job():
    problem, tasks = REF.problem(), make_family("sinusoid", OPTIONS).sample(2, 4)
    spec = problem.model.spec
    origin = flatten(problem.model.init(0), spec).double().numpy()
    basis = np.linalg.qr(np.random.default_rng(1).normal(size=(spec.size, 2)))[0].T
    return problem, tasks, Slice("random", origin, basis, np.full(2, np.nan), (-1.0, 1.0, -2.0, 0.5))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_two_workers_give_the_in_process_surface(cluster, job, dtype):
    problem, tasks, slc = job
    here = evaluate_surface(problem, slc, tasks.to("cpu", dtype), (13, 11), work=Work(chunk=12))
    calls = []
    there = evaluate_surface(problem, slc, tasks.to("cpu", dtype), (13, 11),
                             work=Work(cluster, lambda done, total: calls.append((done, total)),
                                       REF, 12))
    if dtype == torch.float64:
        assert np.array_equal(here.loss, there.loss) and np.array_equal(here.mean, there.mean)
    else:
        np.testing.assert_allclose(there.loss, here.loss, rtol=1e-6, atol=1e-6)
    assert there.loss.dtype == here.loss.dtype
    done = [d for d, _ in calls]  # fed from completed futures: rising, ending at every point
    assert done == sorted(done) and calls[-1] == (143, 143) and len(calls) > 1
    # both workers took part, and each rebuilt the problem from its reference once (the
    # context is broadcast to both; the next dtype reuses the same problem)
    builds = cluster.client.run(lambda: ctx_module._problem.cache_info().misses)
    assert sorted(builds.values()) == [1, 1], f"problems built per worker: {builds}"
    # with malloc thresholds that keep chunk-sized buffers in the heap (see MALLOC_ENV)
    env = cluster.client.run(lambda: {k: os.environ.get(k) for k in executor_dask.MALLOC_ENV})
    assert list(env.values()) == [executor_dask.MALLOC_ENV] * 2


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_run_experiment_surfaces_birth_maps_and_sharpness_on_the_cluster_equal_in_process(cluster, dtype):
    from trajviz.spec.config import from_dict
    config = from_dict({"family": "linear2d", "learners": ["random"], "dtype": dtype,
                        "inner": {"steps": 3, "lr": 0.1}, "heldout_tasks": 2,
                        "outer": {"meta_steps": 1, "meta_batch": 2, "eval_every": 1, "eval_tasks": 2},
                        "slices": {"kinds": ["exact"], "resolution": 7},
                        "birthmap": {"enabled": True, "grid": 6, "tasks": 2}})
    here, there = run_experiment(config), run_experiment(config, executor=cluster)
    pairs = [(here.views["exact"].surface.loss, there.views["exact"].surface.loss)]
    a, b = here.birthmaps["exact"], there.birthmaps["exact"]
    pairs += [(a.mean[k], b.mean[k]) for k in a.mean] + [(a.spread[k], b.spread[k]) for k in a.spread]
    pairs += [(a.specialisation, b.specialisation), (a.predicted, b.predicted)]
    pairs += [(a.learner_table[k], b.learner_table[k]) for k in a.learner_table]
    diag_here, diag_there = here.learners["random"].diagnostics, there.learners["random"].diagnostics
    pairs += [(diag_here[k], diag_there[k]) for k in diag_here]  # sharpness chunks ran there too
    assert np.isfinite(diag_here["sharpness"]).any()
    assert a.mean["auc"].shape == (6, 6) and np.isfinite(a.mean["auc"]).all()
    for want, got in pairs:
        if dtype == "float64":
            assert np.array_equal(want, got, equal_nan=True)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert np.array_equal(a.birth, b.birth)


def test_unreachable_cluster_is_one_line_and_exit_2(monkeypatch, tmp_path, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(executor_dask, "CONNECT_TIMEOUT_S", 1.0)
    code = main(["run", "--family", "linear2d", "--quiet", "--out", str(tmp_path / "runs"),
                 "--scheduler", f"tcp://127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in err
    assert not (tmp_path / "runs").exists()


def test_a_worker_killed_mid_job_still_gives_the_whole_grid(cluster, job, tmp_path):
    # last in this module: its nannies are told not to replace the dead worker (a replacement
    # would only slow the teardown, which waits for it to load torch)
    for nanny in cluster.cluster.workers.values():
        nanny.close_gracefully()
    problem, tasks, slc = job
    marker = tmp_path / "died"
    here = evaluate_surface(problem, slc, tasks.to("cpu", torch.float64), (9, 9),
                            work=Work(chunk=9))
    there = evaluate_surface(problem, slc, tasks.to("cpu", torch.float64), (9, 9),
                             work=Work(DyingFirst(cluster, str(marker)), ref=REF, chunk=9))
    assert marker.exists()  # a worker really started chunk 0 and died in it
    assert np.array_equal(here.loss, there.loss)
