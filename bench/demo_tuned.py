"""The demo runs' meta-training, start -> end, with one outer lr for all and tuned.

For each demo config (trajviz/demos/*.toml, tuned: ``outer.lr = "tune"``) and the
same config with one outer lr for every learner (``--fixed-lr``, default 0.003 for
sinusoid and 0.01 for linear2d: the values the demos used before tuning), meta-trains
and records every learner and prints, per learner, the outer lr, the held-out final
loss and AUC at the start -> end of meta-training (the Meta-training tab's curves),
the mean over all held-out tasks at the final θ0 (the summary table) and the page's
flags (``viewmodel.training``). The full check behind tests/test_demos.py's small one:
exit status 1 when a tuned demo has a learner that meta-training made worse.

Run: ``python bench/demo_tuned.py [--demos sinusoid-demo,linear2d-demo] [--skip-fixed]``
(minutes: the sweep meta-trains every learner once per grid value).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from trajviz.pipeline.experiment import run_experiment
from trajviz.spec.config import demo_configs, replace
from trajviz.viewmodel.training import meta_checks, worse_line

FIXED = {"sinusoid-demo": 0.003, "linear2d-demo": 0.01}


def report(title: str, run) -> bool:
    """Print one run's table; True when some learner got worse."""
    print(f"\n{title}")
    tuning = run.info.get("tuning", {})
    fixed = run.config["outer"]["lr"]
    for name, rec in run.learners.items():
        e = rec.evals
        lr = tuning[name]["chosen"] if name in tuning else (fixed if name != "random" else "—")
        print(f"  {name:<10} outer lr {lr!s:<7} final loss {e['final_loss'][0]:.3g} -> "
              f"{e['final_loss'][-1]:.3g}  AUC {e['auc'][0]:.3g} -> {e['auc'][-1]:.3g}  "
              f"held-out final {np.nanmean(rec.metrics['final_loss']):.3g} "
              f"AUC {np.nanmean(rec.metrics['auc']):.3g}")
    for name, t in tuning.items():
        print(f"  sweep {name:<10} start {t['start']:.3g}  " + "  ".join(
            f"{g:g}: {s:.3g}" for g, s in zip(t["grid"], t["scores"])))
    line = worse_line(run)
    print("  page:", line or "(no learner got worse)")
    return any(c.worse for c in meta_checks(run).values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demos", default="sinusoid-demo,linear2d-demo")
    parser.add_argument("--skip-fixed", action="store_true")
    args = parser.parse_args(argv)
    worse = False
    for name in args.demos.split(","):
        config = demo_configs()[name]
        if not args.skip_fixed:
            report(f"{name}, outer lr {FIXED[name]} for all",
                   run_experiment(replace(config, **{"outer.lr": FIXED[name]})))
        worse |= report(f"{name}, tuned", run_experiment(config))
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
