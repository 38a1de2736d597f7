"""What tuning the outer learning rate costs: ``outer.lr = "tune"`` against one fixed lr.

Meta-trains and records the learners of a demo config (``train_and_record``: no
surfaces, which tuning does not touch) with its fixed outer lr, then with
``outer.lr = "tune"`` over grids of 1..G values, interleaved so that load from
other processes falls on all alike, and prints each time, its ratio to the fixed
run, and the ratio ``spec/budget.py`` predicts. The sweep keeps the winner's
meta-training, so G values should cost about G meta-trainings (ratio ~ G for the
meta-training part; less overall, since the held-out recording and diagnostics are
shared), plus one validation judgement per value.

Run: ``python bench/bench_tune.py [--demo sinusoid-demo] [--grid 1e-4,3e-4,1e-3,3e-3]
[--meta-steps 30] [--repeats 1] [--fixed-lr 0.003]``. Say the machine's load (``uptime``) with the numbers.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from timing import median_times  # noqa: E402

from trajviz.pipeline.experiment import train_and_record  # noqa: E402
from trajviz.spec import budget  # noqa: E402
from trajviz.spec.config import demo_configs, replace  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", default="sinusoid-demo")
    parser.add_argument("--fixed-lr", type=float, default=0.003, help="the one outer lr to compare with")
    parser.add_argument("--grid", default="1e-4,3e-4,1e-3,3e-3")
    parser.add_argument("--meta-steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    grid = [float(g) for g in args.grid.split(",")]
    base = replace(demo_configs()[args.demo], **{"outer.meta_steps": args.meta_steps,
                                                 "outer.eval_every": max(1, args.meta_steps // 10),
                                                 "outer.lr": args.fixed_lr})
    configs = {"fixed": base}
    for g in (1, 2, len(grid)) if len(grid) > 2 else range(1, len(grid) + 1):
        configs[f"tune x{g}"] = replace(base, **{"outer.lr": "tune", "outer.lr_grid": grid[:g]})
    sizes = budget.family_sizes(base.family, base.family_options)
    print(f"load average: {os.getloadavg()}; {args.demo}, {len(base.learners)} learners, "
          f"{args.meta_steps} meta-steps, grid {grid}")
    times = median_times({k: (lambda c=c: train_and_record(c)) for k, c in configs.items()},
                         args.repeats)
    fixed_est = budget.estimate(base, sizes).seconds
    for name, config in configs.items():
        est = budget.estimate(config, sizes).seconds
        print(f"{name:>10}: {times[name]:7.1f} s  ratio {times[name] / times['fixed']:5.2f}  "
              f"estimated ratio {est / fixed_est:5.2f}")
    last = f"tune x{len(grid)}"
    print(f"tune_ratio: {times[last] / times['fixed']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
