"""``trajviz whatif RUN --set inner.lr=0.02 [--name NAME]``: rerun a run's held-out inner
loops under other inner settings and keep the result in the run (``trajviz.pipeline.whatif``)."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_whatif_parser(sub) -> None:
    p = sub.add_parser("whatif", help="rerun every learner's held-out paths with other inner "
                       "settings and keep them in the run as a named variant")
    p.add_argument("run", type=Path, help="a run directory")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an inner setting, e.g. --set inner.lr=0.02 (repeatable): inner.optimizer, "
                        "lr, steps, momentum, nesterov, beta1, beta2, eps, divergence_factor")
    p.add_argument("--name", help="the variant's name (default: from the settings, e.g. 'lr=0.02')")
    from trajviz.cli.args import add_trust_arg
    add_trust_arg(p)


def cmd_whatif(args: argparse.Namespace) -> int:
    from trajviz.cli.args import UsageError, parse_value
    from trajviz.pipeline.whatif import check_variant_name, keep_variant, variant_name, whatif
    from trajviz.store import load_run

    if not args.set:
        raise UsageError("whatif needs at least one --set inner.KEY=VALUE, e.g. --set inner.lr=0.02")
    changes = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set takes KEY=VALUE, got {item!r}")
        changes[key.strip()] = parse_value(value.strip())
    name = check_variant_name(args.name if args.name is not None else variant_name(changes))
    run = load_run(args.run)
    if name in run.inner_variants:
        raise UsageError(f"the run already has a variant named {name!r}; choose another --name")
    variant = whatif(run, changes, name=name)
    path = keep_variant(args.run, variant)
    for learner, rows in variant.info["summary"].items():
        length, auc = rows["length"][0], rows["final_loss"][0]
        print(f"{learner:<12} path length {length:.4g}  final loss {auc:.4g}")
    print(f"{path} (variant {name!r}, {variant.info['seconds']:.2f} s)")
    return 0
