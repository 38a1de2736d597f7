"""The thread policy: hand-computed choices, the override, and the CLI flag."""
from __future__ import annotations

import threading

import pytest
import torch

from trajviz.cli.main import main
from trajviz.kernels import threads
from trajviz.pipeline.heldout import config_threads
from trajviz.spec.config import ExperimentConfig, from_dict, to_dict


def test_small_work_runs_single_threaded_whatever_the_machine():
    assert threads.choose_threads(1_000, cpus=64, load=0.0) == 1
    assert threads.choose_threads(threads.ELEMENTS_PER_THREAD - 1, cpus=2, load=0.0) == 1


def test_large_work_takes_idle_cores_only():
    big = 8 * threads.ELEMENTS_PER_THREAD
    assert threads.choose_threads(big, cpus=2, load=0.0) == 2
    assert threads.choose_threads(big, cpus=2, load=0.9) == 1  # int(2 − 0.9) = 1 idle core
    assert threads.choose_threads(big, cpus=2, load=6.0) == 1  # busy: never 0
    assert threads.choose_threads(big, cpus=16, load=3.5) == 8  # one per ELEMENTS_PER_THREAD, ≤ 12 idle
    assert threads.choose_threads(2 * threads.ELEMENTS_PER_THREAD, cpus=16, load=0.0) == 2
    assert threads.idle_cores(cpus=4, load=1.2) == 2


def test_override_and_environment(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.threads_for(10, 4, requested=3) == 3
    assert threads.threads_for(10, 4) == 1
    assert threads.threads_for(10, 4, device="cuda") is None
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.threads_for(10, 4) is None  # the user's environment wins
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads must be a positive integer"):
            threads.check_threads(bad)


def test_thread_scope_sets_and_restores():
    before = torch.get_num_threads()
    with threads.thread_scope(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with threads.thread_scope(None):
        assert torch.get_num_threads() == before


def test_config_threads_uses_the_model_size(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    config = ExperimentConfig()
    assert config_threads(config, 2) == 2
    assert config_threads(config) == 1  # the default sinusoid MLP is small
    data = to_dict(config)
    data["device"] = "cuda"
    assert config_threads(from_dict(data)) is None


def test_cli_rejects_a_bad_thread_count(capsys, tmp_path):
    assert main(["run", "--threads", "0", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--threads must be a positive integer" in err


def test_kernel_threads_count_idle_cores_net_of_the_run_itself(monkeypatch):
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 4)
    with threads.thread_scope(1, policy=True):
        for load, idle in ((0.0, 4), (1.0, 4), (1.2, 3), (2.9, 2), (9.0, 1)):
            monkeypatch.setattr(threads.os, "getloadavg", lambda load=load: (load, load, load))
            assert threads.kernel_threads() == idle, load  # 4 − (load − 1), in [1, 4]


def test_native_kernels_take_idle_cores_inside_the_policy_only(monkeypatch):
    from trajviz.kernels import native

    monkeypatch.setattr(threads, "idle_cores", lambda *a, **k: 3)
    parts = []

    def record(lo, hi):
        parts.append((lo, hi))

    seen = set()

    def record_thread(lo, hi):
        record(lo, hi)
        seen.add(threading.get_ident())

    with threads.thread_scope(1, policy=True):  # the policy's count: idle cores for kernels
        assert torch.get_num_threads() == 1 and threads.kernel_threads() == 3
        native.split(30, record_thread)
    # 4 parts per thread (12), contiguous and covering every item once
    assert sorted(parts) == [(30 * i // 12, 30 * (i + 1) // 12) for i in range(12)]
    assert 1 <= len(seen) <= 3
    parts.clear()
    with threads.thread_scope(2):  # the user's count: kept, also for kernels
        assert threads.kernel_threads() == 2
        native.split(5, record)
        with threads.thread_scope(1, policy=True):
            assert threads.kernel_threads() == 3
        assert threads.kernel_threads() == 2  # restored
    assert sorted(parts) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]  # at most one item a part
    parts.clear()
    with threads.thread_scope(1):
        native.split(7, record)
    assert parts == [(0, 7)]  # one thread: one call
    assert threads.kernel_threads() == torch.get_num_threads()  # outside any scope


def test_run_experiment_marks_the_policy_scope(monkeypatch):
    from trajviz.pipeline import experiment

    seen = []
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(experiment, "_run_experiment",
                        lambda *a, **k: seen.append(threads._policy_scope))
    experiment.run_experiment(ExperimentConfig())
    experiment.run_experiment(ExperimentConfig(), threads=1)
    assert seen == [True, False]
