"""Experiment configuration, and the one place where input is validated.

Frozen dataclasses, read from TOML or dicts, echoed resolved into each run.
Every field is checked here, at the edge: an unknown key, a wrong type, a
non-finite number or an out-of-range value raises ``ValueError`` with one line
naming the key, the problem and what is accepted. Every size has an explicit
upper bound (``BOUNDS``, ``FAMILY_OPTIONS``), and ``budget.check`` refuses a
config whose estimated memory or time would not fit this machine unless
``allow_large`` is set. The layers below (inner loop, learners, surfaces,
task families) trust a validated config.

This module imports no torch: the accepted names come from ``names.py``.
``to_dict`` gives the resolved config that is stored with each run (and reads
back to an equal config).
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from trajviz.spec import budget, plugins
from trajviz.spec.bounds import (
    BOUNDS,
    DEFAULT_LR_GRID,
    FAMILY_OPTIONS,
    LEARNER_OPTIONS,
    MAX_GRID_POINTS,
    MAX_LAYERS,
    MAX_SHOTS,
    MAX_WIDTH,
    REALS,
    TUNE,
    check_birthmap,
    check_lr,
    check_lr_grid,
    family_options,
)
from trajviz.spec.learner_variants import Variant, check_variants, parse_variants, resolve_variants
from trajviz.spec.names import (
    INNER_OPTIMIZERS,
    LEARNER_NAMES,
    OUTER_OPTIMIZERS,
    SLICE_KINDS,
)

DTYPES = ("float32", "float64")
# What a run keeps of its held-out paths (docs/scale.md): "full" every [T, K+1, P] path,
# "light" none (recomputed on demand), "auto" full only within budget.FULL_PATHS_BYTES.
RECORD_POLICIES = ("auto", "full", "light")

# The runs `trajviz demo` creates, read from demos/<name>.toml.
DEMO_FILES = ("sinusoid", "linear2d")


@dataclass(frozen=True)
class InnerConfig:
    """The inner loop every learner uses: optimiser, lr, K steps, minibatch (0 = full batch).

    divergence_factor: a rollout has diverged at its first step whose loss or
    parameters are not finite or whose loss exceeds this multiple of its
    starting loss (default 1e6; must be > 1).
    """

    optimizer: str = "sgd"
    lr: float = 0.01
    steps: int = 16
    batch_size: int = 0
    momentum: float = 0.9
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    divergence_factor: float = 1e6


@dataclass(frozen=True)
class OuterConfig:
    """The shared outer loop: meta-steps, tasks per meta-step, outer optimiser and lr,
    held-out evaluation every ``eval_every`` steps on ``eval_tasks`` tasks.

    ``lr = "tune"`` picks each learner's outer lr from ``lr_grid`` by a seeded sweep
    judged on ``tune_tasks`` validation tasks drawn from the training distribution,
    never on the held-out tasks (``trajviz.pipeline.tune``); ``lr_grid`` and
    ``tune_tasks`` are unused with a numeric lr.
    """

    meta_steps: int = 200
    meta_batch: int = 16
    optimizer: str = "adam"
    lr: float | str = 1e-3
    eval_every: int = 20
    eval_tasks: int = 8
    lr_grid: tuple[float, ...] = DEFAULT_LR_GRID
    tune_tasks: int = 8

    @property
    def tuned(self) -> bool:
        """True when each learner's outer lr is chosen by the sweep (``lr = "tune"``)."""
        return self.lr == TUNE


@dataclass(frozen=True)
class SliceConfig:
    """Which slices to draw and how.

    kinds: any of pca, exact (2-parameter models only), three_point, random,
        hessian (top two Hessian eigenvectors of the held-out tasks' mean loss).
    origin: "mean" (of all path points), a learner's name (its θ0), or
        "final:<learner>" (the mean of its held-out final points θ_K); the
        hessian slice reads "mean" as the first learner's θ0.
    three_point: three learners whose θ0 span the plane (three_point kind).
    resolution: grid points per axis; margin: extra extent around the paths.
    """

    kinds: tuple[str, ...] = ("pca",)
    origin: str = "mean"
    three_point: tuple[str, ...] = ("leap", "random", "reptile")
    resolution: int = 61
    margin: float = 0.25


@dataclass(frozen=True)
class BirthmapConfig:
    """An optional birth map (``trajviz.pipeline.birthmap``) on every view at run time: ``grid``
    points per axis (2..201), on the first ``tasks`` held-out tasks (1..256), speed
    ranked by ``statistic``; the birth point is the fastest among the points whose
    specialisation is within its ``quantile`` (0 < q <= 1) over the grid."""

    enabled: bool = False
    grid: int = 41
    tasks: int = 8
    statistic: str = "auc"
    quantile: float = 0.25


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines a run: the same config and seed give the same arrays.

    ``allow_large`` lets a run go ahead that ``budget.check`` estimates would not
    fit this machine (CLI ``--force``); it changes no result.
    """

    name: str = ""
    family: str = "sinusoid"
    family_options: dict[str, Any] = field(default_factory=dict)
    learners: tuple[str, ...] = LEARNER_NAMES
    learner_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    variants: tuple[Variant, ...] = ()  # named copies of a learner (trajviz.spec.learner_variants)
    inner: InnerConfig = InnerConfig()
    outer: OuterConfig = OuterConfig()
    slices: SliceConfig = SliceConfig()
    birthmap: BirthmapConfig = BirthmapConfig()
    heldout_tasks: int = 8
    meta_path_points: int = 101
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    allow_large: bool = False
    record: str = "auto"


_SECTIONS = {"inner": InnerConfig, "outer": OuterConfig, "slices": SliceConfig,
             "birthmap": BirthmapConfig}


def from_dict(data: dict[str, Any], *, trust_plugins: Sequence[str] = ()) -> ExperimentConfig:
    """Build and validate a config from plain data (e.g. parsed TOML).

    ``trust_plugins``: ``module:function`` families of your own to trust for this process
    without declaring them (the CLI's ``--trust-plugin``; ``trajviz.spec.plugins``)."""
    plugins.trust(*trust_plugins)
    if not isinstance(data, dict):
        raise ValueError(f"config must be a table of keys, got {type(data).__name__}")
    data = dict(data)
    if isinstance(data.get("family"), str):  # an undeclared plugin: refused first, by name
        plugins.check_family(data["family"])
    variants = parse_variants(data.pop("variants", ()))
    values = _typed_fields(ExperimentConfig, data, "")
    check_variants(values.get("learners", ExperimentConfig.learners), variants, LEARNER_OPTIONS)
    values["variants"] = resolve_variants(values.get("learners", ExperimentConfig.learners), variants)
    for key, cls in _SECTIONS.items():
        if key in values:
            if not isinstance(values[key], dict):
                raise ValueError(f"config [{key}] must be a table, got {values[key]!r}")
            values[key] = cls(**_typed_fields(cls, values[key], key + "."))
    if "family_options" in values:
        values["family_options"] = family_options(values.get("family", "sinusoid"),
                                                  values["family_options"])
    config = ExperimentConfig(**values)
    validate(config)
    return config


def load_toml(path: str | Path, *, trust_plugins: Sequence[str] = ()) -> ExperimentConfig:
    """Read a config file; unreadable or malformed files raise ValueError. A file can
    name a declared plugin only; ``trust_plugins`` as in ``from_dict`` (code, not data)."""
    plugins.trust(*trust_plugins)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"config file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read config file {str(path)!r}: {exc}") from None
    return _from_toml(text, str(path))


def _from_toml(text: str, where: str) -> ExperimentConfig:
    try:
        return from_dict(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config file {where!r} is not valid TOML: {exc}") from None


def demo_configs() -> dict[str, ExperimentConfig]:
    """The small runs ``trajviz demo`` creates, {run name: config}, read from the
    shipped ``trajviz/demos/<name>.toml`` (package data)."""
    folder = resources.files("trajviz") / "demos"
    configs = {}
    for stem in DEMO_FILES:
        config = _from_toml((folder / f"{stem}.toml").read_text(encoding="utf-8"), f"{stem}.toml")
        configs[config.name] = config
    return configs


def to_dict(config: ExperimentConfig) -> dict[str, Any]:
    """The resolved config as JSON-ready plain data (tuples become lists)."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value
    return plain(config)


def replace(config: ExperimentConfig, **changes: Any) -> ExperimentConfig:
    """A copy with top-level fields changed (dotted keys like ``inner.steps`` allowed), validated."""
    data = to_dict(config)
    for key, value in changes.items():
        section, _, sub = key.partition(".")
        if sub:
            data.setdefault(section, {})[sub] = value
        else:
            data[section] = value
    return from_dict(data)


def validate(config: ExperimentConfig) -> None:
    """Cross-field checks and bounds; raises ValueError with one line."""
    c = config
    plugins.check_family(c.family)  # built in or declared (trajviz.spec.plugins): nothing imported
    if not c.learners:
        raise ValueError(f"learners is empty; accepted: any of {sorted(LEARNER_NAMES)}")
    check_variants(c.learners, c.variants, LEARNER_OPTIONS)
    if len(set(c.learners)) != len(c.learners):
        raise ValueError(f"learners lists a name twice: {list(c.learners)}")
    _check_learner_options(c)
    for key, (low, high) in BOUNDS.items():
        if not low <= _get(c, key) <= high:
            raise ValueError(f"config key {key!r} must be {low}..{high}, got {_get(c, key)!r}")
    check_lr(c.outer.lr)
    check_lr_grid(c.outer.lr_grid)
    for key, (low, high, closed) in REALS.items():
        value = _get(c, key)
        if key == "outer.lr" and value == TUNE:
            continue
        if not math.isfinite(value) or value > high or value < low or (value == low and not closed):
            accepted = f"{'[' if closed else '('}{low:g}, {high:g}]"
            raise ValueError(f"config key {key!r} must be a finite number in {accepted}, "
                             f"got {value!r}")
    _choice("inner.optimizer", c.inner.optimizer, INNER_OPTIMIZERS)
    _choice("outer.optimizer", c.outer.optimizer, OUTER_OPTIMIZERS)
    if not c.slices.kinds:
        raise ValueError(f"slices.kinds is empty; accepted: any of {list(SLICE_KINDS)}")
    for kind in c.slices.kinds:
        _choice("slices.kinds", kind, SLICE_KINDS)
    origin_learner = c.slices.origin.removeprefix("final:")
    if c.slices.origin != "mean" and origin_learner not in c.learners:
        raise ValueError(f"slices.origin {c.slices.origin!r} must be 'mean', a learner of "
                         f"{list(c.learners)} (its θ0) or 'final:<learner>' (its mean final point)")
    if "three_point" in c.slices.kinds:
        pts = c.slices.three_point
        if len(pts) != 3 or len(set(pts)) != 3 or any(p not in c.learners for p in pts):
            raise ValueError(f"slices.three_point must name 3 different learners of "
                             f"{list(c.learners)}, got {list(pts)}")
    check_birthmap(c.birthmap.grid, c.birthmap.tasks, c.birthmap.statistic, c.birthmap.quantile,
                   "birthmap.")
    _choice("dtype", c.dtype, DTYPES)
    _choice("record", c.record, RECORD_POLICIES)
    if c.device != "cpu" and not c.device.startswith("cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {c.device!r}")
    sizes = budget.family_sizes(c.family, c.family_options)
    if sizes is not None:  # a plugin's sizes are known once it is built (experiment.py)
        budget.check(c, sizes)


def _check_learner_options(c: ExperimentConfig) -> None:
    bases = {v.name: v.base for v in c.variants}  # a variant takes its base learner's options
    for name, options in c.learner_options.items():
        if name not in c.learners:
            raise ValueError(f"learner_options names learner {name!r}, not in learners "
                             f"{list(c.learners)}")
        if not isinstance(options, dict):
            raise ValueError(f"learner_options.{name} must be a table, got {options!r}")
        accepted = LEARNER_OPTIONS.get(bases.get(name, name), ())
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown} for learner {name!r}; "
                             f"accepted: {sorted(accepted) or 'none'}")
        for key, value in options.items():
            if not isinstance(value, bool):
                raise ValueError(f"learner {name!r} option {key!r} must be true or false, "
                                 f"got {value!r}")


def _get(config: ExperimentConfig, key: str) -> Any:
    section, _, name = key.rpartition(".")
    return getattr(getattr(config, section) if section else config, name)


def _typed_fields(cls: type, data: dict[str, Any], prefix: str) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"unknown config key(s) {[prefix + u for u in unknown]}; "
                         f"accepted: {[prefix + n for n in names]}")
    return {key: _coerce(prefix + key, value, hints[key]) for key, value in data.items()}


def _coerce(key: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if key == "outer.lr":  # a number, or "tune"
        if isinstance(value, bool) or not (isinstance(value, (int, float)) or value == TUNE):
            raise ValueError(f"config key {key!r} must be a number or {TUNE!r}, got {value!r}")
        return value if value == TUNE else float(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"config key {key!r} must be true or false, got {value!r}")
        return value
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, hint)):
            raise ValueError(f"config key {key!r} must be {'an integer' if hint is int else 'a number'}, "
                             f"got {value!r}")
        return hint(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"config key {key!r} must be a string, got {value!r}")
        return value
    if origin is tuple and typing.get_args(hint)[0] is float:
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise ValueError(f"config key {key!r} must be a list of numbers, got {value!r}")
        return tuple(float(v) for v in value)
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"config key {key!r} must be a list of strings, got {value!r}")
        return tuple(value)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ValueError(f"config key {key!r} must be a table, got {value!r}")
        return dict(value)
    return value  # a section (a dataclass), checked by from_dict


def _choice(key: str, value: str, accepted: Any) -> None:
    if value not in accepted:
        raise ValueError(f"config key {key!r}: unknown value {value!r}; accepted: {sorted(accepted)}")
