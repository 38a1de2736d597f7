"""``trajviz run | birthmap | whatif | list | serve | demo | export``: a thin layer over the Python API.

Every error is one line on stderr and exit status 2; nothing is written on
error (runs are written atomically, after all the work is done).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trajviz.cli.args import (  # noqa: F401 - UsageError is part of the CLI's API
    UsageError,
    _Parser,
    _threads,
    add_trust_arg,
    check_runs_dir,
    parse_value,
)

DEFAULT_RUNS = Path("runs")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="trajviz", description="Watch how a model learns: Leap and baseline "
                     "meta-learners on loss-surface slices.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="meta-train learners, record held-out paths, save a run")
    run.add_argument("--config", type=Path, help="TOML config file (see demos/*.toml)")
    run.add_argument("--family", help="task family: sinusoid, linear2d, quadratic, digits or a "
                     "declared plugin (an entry point's name or pkg.mod:function; docs/plugins.md)")
    run.add_argument("--learners", help="comma-separated: leap,reptile,fomaml,maml,multitask,random, "
                     "Leap's variants leap-nostab,leap-noloss,leap-energy,leap-energy-nostab,"
                     "leap-energy-noloss, or names defined in the config's [[variants]]")
    run.add_argument("--seed", type=int, help="seed for tasks, initialisation and minibatches")
    run.add_argument("--steps", type=int, help="inner steps K")
    run.add_argument("--meta-steps", type=int, help="outer (meta-training) steps")
    run.add_argument("--device", help="cpu (default) or cuda")
    run.add_argument("--tune-outer-lr", action="store_true",
                     help='pick each learner\'s outer lr from outer.lr_grid on validation tasks '
                          '(same as outer.lr = "tune"; the grid: --set outer.lr_grid=[1e-3,3e-3])')
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override any config key, e.g. --set inner.lr=0.05 (value in TOML syntax)")
    run.add_argument("--init", action="append", default=[], metavar="NAME=FILE",
                     help="compare your own θ0 beside the learners (repeatable): a .safetensors, "
                          ".npz or torch state dict (.pt, weights_only) named like the model's parameters")
    run.add_argument("--out", type=Path, default=DEFAULT_RUNS, help="runs directory (default: runs/)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--force", action="store_true",
                     help="run even if the estimate says it will not fit this machine "
                          "(same as allow_large = true)")
    run.add_argument("--record", choices=["auto", "full", "light"],
                     help="what the run keeps of its held-out paths: full, light (θ0s, slices, "
                          "projections, losses, diagnostics; paths recomputed on demand) or auto "
                          "(default: full only when they fit; see docs/scale.md)")
    _add_scheduler_arg(run)
    _add_threads_arg(run)
    add_trust_arg(run)
    _add_kernels_arg(run)

    birth = sub.add_parser("birthmap", help="map convergence speed over a slice's θ0s, store it in the run")
    birth.add_argument("run", type=Path, help="a run directory")
    birth.add_argument("--slice", dest="slice_name", help="which view's slice (default: the first)")
    birth.add_argument("--grid", type=int, default=41, help="grid points per axis, 2..201 (default 41)")
    birth.add_argument("--tasks", type=int, default=8, help="held-out tasks, 1..256 (default 8, "
                       "or all the run has if fewer)")
    birth.add_argument("--statistic", default="auc",
                       help="what ranks speed: auc, steps_to_eps, length, param_length, final_loss")
    birth.add_argument("--quantile", type=float, default=0.25,
                       help="the birth point is the fastest among the points whose specialisation is "
                            "within this quantile (default 0.25)")
    birth.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_scheduler_arg(birth)
    add_trust_arg(birth)
    _add_kernels_arg(birth)

    add_whatif_parser(sub)

    lst = sub.add_parser("list", help="list runs, including broken ones and why")
    lst.add_argument("runs", nargs="?", type=Path, default=DEFAULT_RUNS)

    serve = sub.add_parser("serve", help="open the browser app on a runs directory")
    serve.add_argument("runs", nargs="?", type=Path, default=DEFAULT_RUNS)
    _add_server_args(serve)

    demo = sub.add_parser("demo", help="create the demo runs if none exist, then serve them")
    demo.add_argument("--runs", type=Path, default=DEFAULT_RUNS, help="runs directory (default: runs/)")
    _add_threads_arg(demo)
    _add_server_args(demo)

    export = sub.add_parser("export", help="write paper figures of a run")
    export.add_argument("run", type=Path, help="a run directory")
    export.add_argument("--format", required=True, choices=["pdf", "svg", "png", "html"])
    export.add_argument("--view", default="all", choices=["surface", "metrics", "meta", "all"])
    export.add_argument("--slice", dest="slice_name", help="which slice of the run (default: the first)")
    export.add_argument("--task", type=int, help="held-out task index (default: the task mean)")
    export.add_argument("--out", type=Path, help="output folder (default: <run>/figures)")
    export.add_argument("--preset", choices=["column", "page"],
                        help="one figure per view at a paper width: column 3.3 in, page 6.9 in")
    return parser


def _add_threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, help="torch threads (default: 1 for small models; "
                   "see trajviz/kernels/threads.py)")


def _add_kernels_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kernels", choices=["plain", "torch", "native", "auto"], help="who computes: auto "
                   "(default: the fastest here), plain, torch, native; or $TRAJVIZ_KERNELS")


def _add_server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="interface to serve on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    p.add_argument("--no-token", action="store_true",
                   help="serve a non-loopback --host without the access token (anyone on the "
                        "network can use the app)")
    _add_scheduler_arg(p)


def _add_scheduler_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheduler", default="", metavar="SPEC",
                   help="where grid chunks run: in-process (default), local-dask[:N] (a local "
                        "Dask cluster of N one-thread workers) or tcp://HOST:PORT (a running "
                        "Dask scheduler); see README")


def config_from_args(args: argparse.Namespace):
    from trajviz.spec.config import ExperimentConfig, from_dict, load_toml, to_dict

    base = load_toml(args.config) if args.config else ExperimentConfig()
    data = to_dict(base)
    flags = {"family": args.family, "seed": args.seed, "device": args.device,
             "inner.steps": args.steps, "outer.meta_steps": args.meta_steps,
             "learners": None if args.learners is None else
             [n.strip() for n in args.learners.split(",") if n.strip()],
             "allow_large": True if args.force else None,
             "outer.lr": "tune" if getattr(args, "tune_outer_lr", False) else None,
             "record": getattr(args, "record", None)}
    if flags["learners"] is not None:  # --learners selects: unnamed variants are dropped
        data["variants"] = [v for v in data["variants"] if v["name"] in flags["learners"]]
    if args.family and args.family != base.family:
        data["family_options"] = {}
    overrides = {k: v for k, v in flags.items() if v is not None}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set takes KEY=VALUE, got {item!r}")
        overrides[key.strip()] = parse_value(value.strip())
    for key, value in overrides.items():
        section, _, field = key.partition(".")
        if field:
            if not isinstance(data.get(section), dict):
                raise UsageError(f"unknown config section {section!r} in {key!r}")
            data[section][field] = value
        else:
            data[key] = value
    return from_dict(data)


_STAGE_OPS = {"meta": "step", "record": "step", "surface": "plane", "birthmap": "birth"}  # bar -> op


def progress_bars(quiet: bool, ran: dict | None = None):
    """progress(stage, done, total): a tqdm bar per stage, naming its op's backends in ``ran``."""
    if quiet:
        return None, lambda: None
    from tqdm import tqdm
    bars: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, leave=False, file=sys.stderr)
        if names := (ran or {}).get(_STAGE_OPS.get(stage.split(":")[0], "")):
            bar.set_postfix_str(f"kernels: {'+'.join(sorted(names))}", refresh=False)
        bar.update(done - bar.n)

    return progress, lambda: [b.close() for b in bars.values()]


def cmd_run(args: argparse.Namespace) -> int:
    from trajviz.engine.executors import make_executor
    from trajviz.kernels import kernels, requested
    from trajviz.problem.inits import resolve_inits

    config = config_from_args(args)
    check_runs_dir(args.out)
    inits = {}
    for item in args.init:
        name, sep, file = item.partition("=")
        if not sep or not name.strip() or not file.strip():
            raise UsageError(f"--init takes NAME=FILE, got {item!r}")
        if name.strip() in inits:
            raise UsageError(f"--init names {name.strip()!r} twice")
        inits[name.strip()] = Path(file.strip())
    inits = resolve_inits(config, inits)  # a bad file fails now, before any training
    request = args.kernels or requested()  # a bad $TRAJVIZ_KERNELS fails here, in one line
    with make_executor(args.scheduler) as executor, kernels(request):  # a bad cluster fails first
        path = create_run(config, args.out, quiet=args.quiet, inits=inits, threads=_threads(args),
                          executor=executor)
    print(path)
    return 0


def cmd_birthmap(args: argparse.Namespace) -> int:
    from trajviz.engine.executors import make_executor
    from trajviz.engine.work import Work
    from trajviz.kernels import kernels, recording, requested
    from trajviz.pipeline.birthmap import add_birth_map, birth_map, format_birth_map
    from trajviz.spec.config import check_birthmap
    from trajviz.store import load_run

    check_birthmap(args.grid, args.tasks, args.statistic, args.quantile, "--")
    request = args.kernels or requested()
    run = load_run(args.run)
    with make_executor(args.scheduler) as executor, kernels(request), recording() as ran:
        progress, close = progress_bars(args.quiet, ran)
        try:
            report = progress and (lambda done, total: progress("birthmap", done, total))
            bm = birth_map(run, args.slice_name, grid=args.grid, tasks=args.tasks,
                           statistic=args.statistic, quantile=args.quantile,
                           work=Work(executor, report))
        finally:
            close()
    print(format_birth_map(bm))
    print(add_birth_map(args.run, bm))
    return 0


# The run folder create_run is about to write: on an interrupt, main() looks whether it
# exists, so its message says truly whether the run was written.
_WRITING: list[Path] = []


def create_run(config, runs_dir: Path, quiet: bool = False, inits: dict | None = None,
               threads: int | None = None, executor=None) -> Path:
    from trajviz.kernels import recording
    from trajviz.pipeline.experiment import run_experiment
    from trajviz.store import new_run_id, sweep_stale, write_run

    sweep_stale(runs_dir)
    if config.outer.tuned:
        from trajviz.spec import budget
        print(budget.tune_notice(config, budget.family_sizes(config.family, config.family_options)),
              file=sys.stderr)
    run_id = new_run_id(config.family)
    with recording() as ran:
        progress, close = progress_bars(quiet, ran)
        try:
            run = run_experiment(config, progress=progress, run_id=run_id, inits=inits,
                                 threads=threads, executor=executor)
        finally:
            close()
    if not quiet:
        print(f"kernels: {run.info['kernels']}", file=sys.stderr)
    _WRITING.append(Path(runs_dir) / run_id)
    return write_run(run, runs_dir)


def cmd_list(args: argparse.Namespace) -> int:
    from trajviz.store import list_runs

    check_runs_dir(args.runs, flag="")
    entries = list_runs(args.runs)
    if not entries:
        print(f"no runs in {args.runs}/ (create one with: trajviz run)")
    for e in entries:
        if e.ok:
            print(f"{e.run_id}  {e.family:<10} {','.join(e.learners)}  {e.name}")
        else:
            print(f"{e.run_id}  BROKEN: {e.reason}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from trajviz.figures.export import export_run
    from trajviz.store import load_run

    run = load_run(args.run)
    out = args.out or (args.run / "figures")
    for path in export_run(run, out, args.format, args.view, slice_name=args.slice_name, task=args.task,
                           preset=args.preset):
        print(path)
    return 0


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM is handled like Ctrl-C: clean up, then exit


def _interrupted() -> str:
    """The interrupt message, true about what was written."""
    written = [p for p in _WRITING if p.is_dir()]
    if written:
        return f"trajviz: interrupted; the run was written completely to {written[-1]}"
    return "trajviz: interrupted; nothing was written"


from trajviz.cli.serve import check_listen, cmd_demo, cmd_serve, missing_demos  # noqa: E402,F401
from trajviz.cli.whatif import add_whatif_parser, cmd_whatif  # noqa: E402 - trajviz whatif
from trajviz.spec.plugins import trust  # noqa: E402 - torch-free

COMMANDS = {"whatif": cmd_whatif, "run": cmd_run, "birthmap": cmd_birthmap, "list": cmd_list, "serve": cmd_serve, "demo": cmd_demo, "export": cmd_export}


DEBUG_ENV = "TRAJVIZ_DEBUG"  # set: internal errors raise with their traceback instead of one line


def main(argv: Sequence[str] | None = None) -> int:
    _WRITING.clear()
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: leave SIGTERM alone
        previous = None
    try:
        args = build_parser().parse_args(argv)
        trust(*getattr(args, "trust_plugin", ()))  # before any config is read
        return COMMANDS[args.command](args)
    except (ValueError, OSError) as exc:  # UsageError, config and run errors, unreadable files
        print(f"trajviz: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(_interrupted(), file=sys.stderr)
        return 130
    except (RuntimeError, MemoryError, RecursionError, TypeError, AttributeError) as exc:
        if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise  # the whole traceback, for a bug report
        print(f"trajviz: error: {type(exc).__name__}: {' '.join(str(exc).split())}"[:600]
              + f" (set {DEBUG_ENV}=1 for the traceback)", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
