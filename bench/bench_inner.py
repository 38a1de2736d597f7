"""Leap meta-training throughput: vectorised trajviz engine vs a sequential torch loop.

Both compute the same Leap meta-gradient (norm, loss and stabilizer on) for a
meta-batch of 16 sinusoid tasks, K=32 inner SGD steps, each step on a fresh
10-point minibatch. The baseline is what the reference implementation
(amzn/metalearn-leap) does: one ``nn.Module`` and ``torch.optim.SGD`` per task,
run task after task, cloning the parameters, loss and gradients at every step
and adding the segment's increment to a meta-gradient buffer (all K segments,
the last one included). Both run in this process with the same thread count.

Run: ``python bench/bench_inner.py [--repeats 7] [--threads N]``. The last two
lines are ``ratio_w40: X`` and ``ratio_w256: Y`` (vectorised steps per second
over sequential steps per second).
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch import nn

from trajviz.inner import InnerSpec, minibatch_indices
from trajviz.learners import Leap
from trajviz.optim import sgd
from trajviz.tasks import Sinusoid

META_BATCH = 16
STEPS = 32
BATCH = 10
LR = 0.01


def sequential_leap(module: nn.Module, theta0: dict[str, torch.Tensor], support: dict,
                    indices, lr: float) -> dict[str, torch.Tensor]:
    """The reference-style loop: per task, per step, clone state and increment."""
    names = list(theta0)
    meta = {n: torch.zeros_like(v) for n, v in theta0.items()}
    for t in range(indices.shape[0]):
        net = copy.deepcopy(module)
        with torch.no_grad():
            for n, p in net.named_parameters():
                p.copy_(theta0[n])
        opt = torch.optim.SGD(net.parameters(), lr=lr)
        prev = None
        for i in range(indices.shape[1]):
            idx = torch.from_numpy(indices[t, i])
            x, y = support["x"][t, idx], support["y"][t, idx]
            opt.zero_grad()
            loss = ((net(x) - y) ** 2).mean()
            loss.backward()
            curr = ({n: p.detach().clone() for n, p in net.named_parameters()},
                    loss.item(),
                    {n: p.grad.detach().clone() for n, p in net.named_parameters()})
            if prev is not None:
                p_pars, p_loss, p_grads = prev
                d_loss = curr[1] - p_loss
                if d_loss > 0:  # stabilizer
                    d_loss = -d_loss
                sq = d_loss ** 2
                for n in names:
                    sq += float((curr[0][n] - p_pars[n]).pow(2).sum())
                norm = sq ** 0.5
                if norm > 0:
                    for n in names:
                        meta[n] -= (curr[0][n] - p_pars[n] + d_loss * p_grads[n]) / norm
            prev = curr
            if i < indices.shape[1] - 1:
                opt.step()
    return {n: v / indices.shape[0] for n, v in meta.items()}


def median_times(fns: dict, repeats: int) -> dict[str, float]:
    """Median wall time of each function, the repeats interleaved so that load
    from other processes falls on all of them alike."""
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


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

    def sequential():
        indices = minibatch_indices(tasks, spec, seed)
        return sequential_leap(problem.model.module, theta0, tasks.support, indices, LR)

    a, b = vectorised(), sequential()
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    scale = max(float(b[k].abs().max()) for k in b)
    print(f"MLP 1-{hidden}-{hidden}-1: max |vectorised - sequential| meta-gradient = {diff:.2e}"
          f" (max |entry| {scale:.2e})")
    if not diff <= 1e-4 * max(scale, 1.0):
        raise SystemExit(f"meta-gradients disagree for width {hidden}: {diff}")
    medians = median_times({"vectorised": vectorised, "sequential": sequential}, repeats)
    t_vec, t_seq = medians["vectorised"], medians["sequential"]
    print(f"MLP 1-{hidden}-{hidden}-1: vectorised {1 / t_vec:8.2f} meta-steps/s ({t_vec * 1e3:.1f} ms), "
          f"sequential {1 / t_seq:8.2f} meta-steps/s ({t_seq * 1e3:.1f} ms), "
          f"median of {repeats}")
    return t_seq / t_vec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"Leap meta-gradient, {META_BATCH} sinusoid tasks, K={STEPS} SGD steps, "
          f"batch {BATCH}, float32, {torch.get_num_threads()} thread(s), torch {torch.__version__}")
    ratios = {w: bench(w, args.repeats) for w in (40, 256)}
    for w, r in ratios.items():
        print(f"ratio_w{w}: {r:.2f}")


if __name__ == "__main__":
    main()
