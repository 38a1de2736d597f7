"""Leap's own ablation: its three switches, over seeds, with 95% intervals and paired differences.

    OMP_NUM_THREADS=1 python demos/leap_ablation.py                  # sinusoid and linear2d, 5 seeds
    OMP_NUM_THREADS=1 python demos/leap_ablation.py --families linear2d --seeds 8

Leap's switches (Flennerhag et al., 2019, appendix C): ``norm`` (path length, or
energy when off), ``loss`` (the loss as a coordinate of the manifold) and
``stabilizer`` (a rising loss counted as falling; it only acts with the loss).
The six meaningful combinations are ``leap`` and the predefined variants
(``trajviz.spec.learner_variants.PREDEFINED``); ``leap-energy-noloss`` is Reptile exactly.

For each family and seed all six are meta-trained from the same random θ0 on
the same tasks (one run config, six learners), evaluated every few meta-steps on
the same held-out tasks, then adapt to the same held-out tasks. Printed, per
variant: the held-out AUC and path length against meta-step (mean over seeds),
the meta-step at which each first comes within 10% of its final value, the final
held-out loss and path length, each with a 95% Student-t interval over seeds, and
the paired difference (variant − leap) over seeds.

Budgets are small on purpose (a few minutes on two shared cores): these are toy
families, meta-trained for tens of steps, not Omniglot for thousands.
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
from trajviz.spec.learner_variants import PREDEFINED

VARIANTS = ("leap", *PREDEFINED)
SWITCHES = {"leap": "length  loss  stab", "leap-nostab": "length  loss  -   ",
            "leap-noloss": "length  -     -   ", "leap-energy": "energy  loss  stab",
            "leap-energy-nostab": "energy  loss  -   ", "leap-energy-noloss": "energy  -     -   "}
CURVES = ("auc", "length")  # held-out metrics recorded during meta-training
FINALS = ("final_loss", "length")  # of the held-out paths from the final θ0
WITHIN = 0.10

# Adam in the inner loop on sinusoid (as `trajviz demo`): every θ0 learns within the budget.
# linear2d on minibatches of 5 of its 20 shots, as the paper's Omniglot runs: Δf of a segment
# is measured on two different batches, so the loss can rise and the stabilizer can act (on
# full batches SGD descends this convex loss monotonically and the stabilizer never fires).
SETTINGS = {
    "sinusoid": {"family": "sinusoid", "inner": {"optimizer": "adam", "steps": 10, "lr": 0.01},
                 "outer": {"meta_steps": 80, "meta_batch": 4, "lr": 0.01, "eval_every": 5,
                           "eval_tasks": 4}, "heldout_tasks": 12},
    "linear2d": {"family": "linear2d", "inner": {"steps": 16, "lr": 0.1, "batch_size": 5},
                 "outer": {"meta_steps": 60, "meta_batch": 8, "lr": 0.02, "eval_every": 5,
                           "eval_tasks": 8}, "heldout_tasks": 12},
    "digits": {"family": "digits", "family_options": {"ways": 5, "shots": 5, "net": "mlp"},
               "inner": {"steps": 10, "lr": 0.5},
               "outer": {"meta_steps": 40, "meta_batch": 4, "lr": 0.001, "eval_every": 5,
                         "eval_tasks": 4}, "heldout_tasks": 8},
}


def steps_within(steps: np.ndarray, curve: np.ndarray, tol: float = WITHIN) -> float:
    """The first meta-step in ``steps`` [E] at which ``curve`` [E] is within ``tol`` of its
    final value (relative to |final|); NaN when the final value is not finite."""
    final = curve[-1]
    if not np.isfinite(final):
        return float("nan")
    return float(steps[np.nonzero(np.abs(curve - final) <= tol * abs(final))[0][0]])


def measure(family: str, seed: int, meta_steps: int | None) -> dict[str, dict[str, object]]:
    """One run config with the six variants: {variant: {column: value, curve: [E]}}."""
    data = dict(SETTINGS[family], seed=seed, learners=list(VARIANTS), slices={"kinds": ["pca"]})
    if meta_steps:
        data["outer"] = dict(data["outer"], meta_steps=meta_steps)
    rec = train_and_record(from_dict(data))
    out: dict[str, dict[str, object]] = {}
    for name, r in rec.records.items():
        row: dict[str, object] = {"eval_steps": r.eval_steps}
        for c in CURVES:
            row[f"curve:{c}"] = r.evals[c]
            row[f"to10%:{c}"] = steps_within(r.eval_steps, r.evals[c])
        for c in FINALS:
            row[f"final:{c}"] = float(np.nanmean(r.metrics[c]))
        out[name] = row
    return out


def cell(values: list[float], fmt: str = "8.3f") -> str:
    mean, lo, hi = summarise(np.asarray(values, dtype=np.float64))
    return f"{mean:{fmt}} [{lo:{fmt}},{hi:{fmt}}]"


def table(family: str, seeds: list[dict[str, dict[str, object]]]) -> str:
    n = len(seeds)
    steps = seeds[0]["leap"]["eval_steps"]
    picks = np.unique(np.round(np.linspace(0, len(steps) - 1, 7)).astype(int))
    cfg = SETTINGS[family]
    lines = [f"\n== {family}: {n} seeds; mean over seeds [95% interval over seeds]",
             f"   inner {cfg['inner']}, outer {cfg['outer']}, {cfg['heldout_tasks']} held-out tasks"]
    for c in CURVES:
        lines.append(f"held-out {c} against meta-step (mean over seeds):")
        lines.append(f"  {'variant':<19}" + "".join(f"{int(steps[i]):>9}" for i in picks))
        for v in VARIANTS:
            mean_curve = np.nanmean(np.stack([s[v][f"curve:{c}"] for s in seeds]), axis=0)
            lines.append(f"  {v:<19}" + "".join(f"{mean_curve[i]:>9.3f}" for i in picks))
    cols = [("to10%:auc", "meta-step to 10% (auc)", "6.1f"), ("to10%:length", "meta-step to 10% (length)", "6.1f"),
            ("final:final_loss", "final held-out loss", "7.3f"), ("final:length", "held-out path length", "7.3f")]
    lines.append(f"  {'variant':<19}{'norm    loss  stab':<20}" + "".join(f"{t:>27}" for _, t, _ in cols))
    for v in VARIANTS:
        lines.append(f"  {v:<19}{SWITCHES[v]:<20}"
                     + "".join(f"{cell([s[v][k] for s in seeds], f):>27}" for k, _, f in cols))
    lines.append("  paired over seeds, variant − leap (negative: smaller than leap's):")
    for v in VARIANTS[1:]:
        lines.append(f"  {v:<19}{'':<20}" + "".join(
            f"{cell([s[v][k] - s['leap'][k] for s in seeds], f):>27}" for k, _, f in cols))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--families", default="sinusoid,linear2d", help=f"any of {', '.join(SETTINGS)}")
    parser.add_argument("--meta-steps", type=int, help="override every family's meta-steps")
    args = parser.parse_args(argv)
    families = args.families.split(",")
    bad = [f for f in families if f not in SETTINGS]
    if bad or args.seeds < 2:
        parser.error(f"families must be among {list(SETTINGS)} (got {bad}) and --seeds >= 2")
    torch.set_num_threads(1)
    started = time.perf_counter()
    for family in families:
        per_seed = []
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            per_seed.append(measure(family, seed, args.meta_steps))
            print(f"{family} seed {seed}: {time.perf_counter() - t0:.0f}s", file=sys.stderr)
        print(table(family, per_seed), flush=True)
    print(f"\ntotal {time.perf_counter() - started:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
