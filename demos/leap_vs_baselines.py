"""Does Leap give shorter held-out paths than the baselines? Over several seeds, with 95% intervals.

    python demos/leap_vs_baselines.py                 # sinusoid and linear2d, 5 seeds
    python demos/leap_vs_baselines.py --seeds 8 --families linear2d

For each family and seed every learner is meta-trained from the same random
θ0 on the same tasks, then adapts to the same held-out tasks; the table gives,
per learner, the mean over seeds of the held-out task-mean of each metric and
a 95% Student-t interval over seeds. Path length is Leap's: the length of
(θ_i, f(θ_i)) on the loss-augmented manifold. Read it together with the final
loss: an initialisation that barely trains also has a short path.

Fair by default: each learner's outer learning rate is tuned per seed
(``outer.lr = "tune"``: a sweep over ``lr_grid`` judged on validation tasks of the
training split, never on the held-out tasks; see docs/baselines.md), and the
chosen rates are printed under each table. ``--fixed-lr`` gives every learner the
grid's middle value instead.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from trajviz.spec.config import from_dict
from trajviz.pipeline.experiment import train_and_record
from trajviz.data.stats import summarise

COLUMNS = ("length", "oscillation", "monotonicity", "final_loss", "auc")

# Inner budgets long enough that every initialisation can get close to a
# solution: with short inner loops a random θ0 "wins" on length by not moving.
SETTINGS = {
    "sinusoid": {"family": "sinusoid", "inner": {"steps": 64, "lr": 0.02},
                 "outer": {"meta_steps": 300, "meta_batch": 8, "lr": "tune", "eval_every": 300,
                           "eval_tasks": 2, "lr_grid": [1e-3, 3e-3, 1e-2]}, "heldout_tasks": 16},
    "linear2d": {"family": "linear2d", "inner": {"steps": 16, "lr": 0.1},
                 "outer": {"meta_steps": 200, "meta_batch": 8, "lr": "tune", "eval_every": 200,
                           "eval_tasks": 2, "lr_grid": [3e-3, 1e-2, 3e-2]}, "heldout_tasks": 16},
}


def table(family: str, per_seed: dict[str, dict[str, list[float]]]) -> str:
    lines = [f"\n{family}: mean over seeds [95% interval] of the held-out task mean",
             f"{'learner':<10} " + " ".join(f"{c:>26}" for c in COLUMNS)]
    for learner, cols in per_seed.items():
        cells = []
        for c in COLUMNS:
            mean, lo, hi = summarise(np.asarray(cols[c]))
            cells.append(f"{mean:>9.3f} [{lo:>7.3f},{hi:>7.3f}]")
        lines.append(f"{learner:<10} " + " ".join(f"{cell:>26}" for cell in cells))
    if "leap" in per_seed:
        lines.append("paired over seeds, leap minus each learner (negative: leap's is smaller):")
        for learner, cols in per_seed.items():
            if learner == "leap":
                continue
            cells = []
            for c in ("length", "final_loss"):
                diff = np.asarray(per_seed["leap"][c]) - np.asarray(cols[c])
                mean, lo, hi = summarise(diff)
                cells.append(f"{c} {mean:>8.3f} [{lo:>7.3f},{hi:>7.3f}]")
            lines.append(f"  leap - {learner:<10} " + "   ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--families", default="sinusoid,linear2d")
    parser.add_argument("--learners", default="leap,reptile,fomaml,maml,multitask,random")
    parser.add_argument("--meta-steps", type=int, help="override every family's meta-steps")
    parser.add_argument("--fixed-lr", action="store_true",
                        help="one outer lr for every learner (the grid's middle value), no sweep")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for family in args.families.split(","):
        per_seed: dict[str, dict[str, list[float]]] = {}
        chosen: dict[str, list[float]] = {}
        for seed in range(args.seeds):
            data = dict(SETTINGS[family], seed=seed, learners=args.learners.split(","),
                        slices={"kinds": ["pca"]})
            if args.meta_steps:
                data["outer"] = dict(data["outer"], meta_steps=args.meta_steps, eval_every=args.meta_steps)
            if args.fixed_lr:
                grid = data["outer"]["lr_grid"]
                data["outer"] = dict(data["outer"], lr=grid[len(grid) // 2])
            started = time.perf_counter()
            rec = train_and_record(from_dict(data))
            for name, t in rec.tuning.items():
                chosen.setdefault(name, []).append(t["chosen"])
            for name, r in rec.records.items():
                cols = per_seed.setdefault(name, {c: [] for c in COLUMNS})
                for c in COLUMNS:
                    cols[c].append(float(np.nanmean(r.metrics[c])))
            print(f"{family} seed {seed}: {time.perf_counter() - started:.0f}s", file=sys.stderr)
        print(table(family, per_seed), flush=True)
        if chosen:
            print("outer lr chosen per seed (validation tasks): " + "; ".join(
                f"{n} {', '.join(f'{v:g}' for v in lrs)}" for n, lrs in chosen.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
