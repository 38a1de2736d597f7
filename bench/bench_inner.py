"""Leap meta-training throughput: vectorised trajviz engine vs a sequential torch loop.

Both compute the same Leap meta-gradient (norm, loss and stabilizer on) for a
meta-batch of 16 sinusoid tasks, K=32 inner SGD steps, each step on a fresh
10-point minibatch (``Sinusoid(shots=330)``, ``InnerSpec(sgd(lr), 32, batch_size=10)``).
The baseline is what the reference implementation (amzn/metalearn-leap) does:
one ``nn.Module`` and ``torch.optim.SGD`` per task, run task after task,
cloning the parameters, their gradients and the loss after every backward and
adding the segment's increment to a meta-gradient buffer (all K segments, the
last one included). Both run in this process with the same thread count; the
two meta-gradients are checked to agree before anything is timed, and the
repeats of the two are interleaved so that load from other processes falls on
both alike.

Run: ``python bench/bench_inner.py [--repeats 7] [--threads 1]``. The last two
lines are ``ratio_w40: X`` and ``ratio_w256: Y`` (vectorised meta-steps per
second over sequential meta-steps per second, medians).

Notes from profiling (1 CPU thread). At width 40 both loops are bound by
per-op overhead, and running 16 tasks per op wins. At width 256 each [16, P]
array is 4 MB: the vectorised loop streams every weight-sized array through
memory several times a step, while the sequential loop works on one task's
256 kB at a time, in cache. Two further costs hit the vectorised loop there:
glibc returns the freed 4 MB blocks to the OS and page-faults them back on
the next step (tens of thousands of faults per meta-step; setting
``MALLOC_TRIM_THRESHOLD_``/``MALLOC_MMAP_THRESHOLD_`` high removes them), and
vmapped linear layers get their weight gradients transposed in memory, so
elementwise ops mixing gradients and parameters stride across memory. More
threads help the vectorised loop only on an otherwise idle machine; the
default is one thread.
"""
from __future__ import annotations

import argparse
import copy
import os
import time

import torch
from timing import median_times  # bench/timing.py (scripts run from bench/)
from torch import nn

from trajviz.kernels import kernels, recording
from trajviz.engine.inner import InnerSpec, minibatch_indices
from trajviz.engine.learners import Leap
from trajviz.problem.optim import sgd
from trajviz.problem.tasks import Sinusoid

META_BATCH = 16
STEPS = 32
BATCH = 10
LR = 0.01


def _clone(tensor: torch.Tensor) -> torch.Tensor:
    """The reference's ``utils.clone``: detach, clone, keep requires_grad, clone the grad."""
    cloned = tensor.detach().clone()
    cloned.requires_grad = tensor.requires_grad
    if tensor.grad is not None:
        cloned.grad = _clone(tensor.grad)
    return cloned


def _increment(meta: dict, prev: tuple, curr: tuple) -> None:
    """The reference's ``Updater.increment_grad`` with norm, loss and stabilizer on."""
    (prev_loss, prev_state), (curr_loss, curr_state) = prev, curr
    d_loss = curr_loss - prev_loss
    if d_loss > 0:
        d_loss = -d_loss
    norm = d_loss * d_loss
    for n, p in curr_state.items():
        delta = p.detach().view(-1) - prev_state[n].detach().view(-1)
        norm += torch.dot(delta, delta)
    norm = norm.sqrt()
    for n, g in meta.items():
        add = prev_state[n].detach() - curr_state[n].detach()
        add += -d_loss * prev_state[n].grad.detach()
        add.div_(norm)
        g.add_(add)


def sequential_leap(module: nn.Module, theta0: dict[str, torch.Tensor], support: dict,
                    indices, lr: float) -> dict[str, torch.Tensor]:
    """The reference Leap's loop (amzn/metalearn-leap): task after task, one ``nn.Module``
    and ``torch.optim.SGD``; after every backward the whole state (parameters and their
    gradients) and the loss are cloned and the previous segment's increment is added.
    K+1 evaluations give K segments, the last one included."""
    model = copy.deepcopy(module)
    meta = {n: torch.zeros_like(v) for n, v in theta0.items()}
    for t in range(indices.shape[0]):
        model.load_state_dict(theta0)
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        prev = None
        for i in range(indices.shape[1]):
            idx = torch.from_numpy(indices[t, i])
            loss = ((model(support["x"][t, idx]) - support["y"][t, idx]) ** 2).mean()
            loss.backward()
            curr = (loss.detach().clone(), {n: _clone(p) for n, p in model.named_parameters()})
            if prev is not None:
                _increment(meta, prev, curr)
            prev = curr
            if i < indices.shape[1] - 1:
                opt.step()
            opt.zero_grad()
    return {n: v / indices.shape[0] for n, v in meta.items()}


def bench(hidden: int, repeats: int) -> float:
    family = Sinusoid(shots=(STEPS + 1) * BATCH, hidden=(hidden, hidden))
    problem = family.problem()
    tasks = family.sample(seed=1, n_tasks=META_BATCH)
    theta0 = problem.model.init(seed=0)
    spec = InnerSpec(sgd(LR), STEPS, batch_size=BATCH)
    learner = Leap()
    seed = 7

    def vectorised():
        return learner.meta_gradient(problem, theta0, tasks, spec, seed).grad

    def plain():
        with kernels("plain"):
            return vectorised()

    def sequential():
        indices = minibatch_indices(tasks, spec, seed)
        return sequential_leap(problem.model.module, theta0, tasks.support, indices, LR)

    t0 = time.perf_counter()
    with recording() as ran:
        a = vectorised()
    first = time.perf_counter() - t0
    path = "+".join(sorted(ran["step"]))
    b, c = sequential(), plain()
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    diff_plain = max(float((a[k] - c[k]).abs().max()) for k in a)
    scale = max(float(b[k].abs().max()) for k in b)
    print(f"MLP 1-{hidden}-{hidden}-1: step backend {path}; max |vectorised - sequential| meta-gradient = "
          f"{diff:.2e}, |vectorised - plain vectorised| = {diff_plain:.2e} (max |entry| {scale:.2e})")
    if not diff <= 1e-4 * max(scale, 1.0) or not diff_plain <= 1e-4 * max(scale, 1.0):
        raise SystemExit(f"meta-gradients disagree for width {hidden}: {diff}, {diff_plain}")
    medians = median_times({"vectorised": vectorised, "sequential": sequential, "plain": plain}, repeats)
    t_vec, t_seq, t_plain = medians["vectorised"], medians["sequential"], medians["plain"]
    print(f"MLP 1-{hidden}-{hidden}-1: vectorised {1 / t_vec:8.2f} meta-steps/s ({t_vec * 1e3:.1f} ms steady, "
          f"{first * 1e3:.1f} ms first call, nothing compiled), plain vectorised {t_plain * 1e3:.1f} ms, "
          f"sequential {1 / t_seq:8.2f} meta-steps/s ({t_seq * 1e3:.1f} ms), median of {repeats}")
    print(f"MLP 1-{hidden}-{hidden}-1: auto ({path}) / plain vectorised speed-up {t_plain / t_vec:.2f}")
    if path != "plain" and t_plain < t_vec:  # the cost model 'auto' uses for steps, checked here
        print(f"MLP 1-{hidden}-{hidden}-1: WARNING: auto's step backend {path} was slower than plain")
    return t_seq / t_vec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for both loops (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"Leap meta-gradient, {META_BATCH} sinusoid tasks, K={STEPS} SGD steps, "
          f"batch {BATCH}, float32, {torch.get_num_threads()} thread(s), torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    ratios = {w: bench(w, args.repeats) for w in (40, 256)}
    for w, r in ratios.items():
        print(f"ratio_w{w}: {r:.2f}")


if __name__ == "__main__":
    main()
