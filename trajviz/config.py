"""Experiment configuration: frozen dataclasses, read from TOML or dicts, echoed resolved.

Every field is checked at the edge: an unknown key, a wrong type or an
out-of-range value raises ``ValueError`` with one line naming the key, the
problem and what is accepted. ``to_dict`` gives the resolved config that is
stored with each run (and reads back to an equal config).
"""
from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .learners import LEARNERS, OUTER_OPTIMIZERS
from .optim import OPTIMIZERS
from .slices import SLICE_KINDS
from .tasks import FAMILIES
from .variants import Variant, parse_variants
from .variants import check as check_variants
from .variants import resolve as resolve_variants

MAX_GRID_POINTS = 250_000
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class InnerConfig:
    """The inner loop every learner uses: optimiser, lr, K steps, minibatch (0 = full batch)."""

    optimizer: str = "sgd"
    lr: float = 0.01
    steps: int = 16
    batch_size: int = 0
    momentum: float = 0.9
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8


@dataclass(frozen=True)
class OuterConfig:
    """The shared outer loop: meta-steps, tasks per meta-step, outer optimiser and lr,
    held-out evaluation every ``eval_every`` steps on ``eval_tasks`` tasks."""

    meta_steps: int = 200
    meta_batch: int = 16
    optimizer: str = "adam"
    lr: float = 1e-3
    eval_every: int = 20
    eval_tasks: int = 8


@dataclass(frozen=True)
class SliceConfig:
    """Which slices to draw and how.

    kinds: any of pca, exact (2-parameter models only), three_point, random.
    origin: "mean" (of all path points), a learner's name (its θ0), or
        "final:<learner>" (the mean of its held-out final points θ_K).
    three_point: three learners whose θ0 span the plane (three_point kind).
    resolution: grid points per axis; margin: extra extent around the paths.
    """

    kinds: tuple[str, ...] = ("pca",)
    origin: str = "mean"
    three_point: tuple[str, ...] = ("leap", "random", "reptile")
    resolution: int = 61
    margin: float = 0.25


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines a run: the same config and seed give the same arrays."""

    name: str = ""
    family: str = "sinusoid"
    family_options: dict[str, Any] = field(default_factory=dict)
    learners: tuple[str, ...] = ("leap", "reptile", "fomaml", "maml", "multitask", "random")
    learner_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    variants: tuple[Variant, ...] = ()  # named copies of a learner (trajviz.variants)
    inner: InnerConfig = InnerConfig()
    outer: OuterConfig = OuterConfig()
    slices: SliceConfig = SliceConfig()
    heldout_tasks: int = 8
    meta_path_points: int = 101
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"


_SECTIONS = {"inner": InnerConfig, "outer": OuterConfig, "slices": SliceConfig}


def from_dict(data: dict[str, Any]) -> ExperimentConfig:
    """Build and validate a config from plain data (e.g. parsed TOML)."""
    if not isinstance(data, dict):
        raise ValueError(f"config must be a table of keys, got {type(data).__name__}")
    data = dict(data)
    variants = parse_variants(data.pop("variants", ()))
    values = _typed_fields(ExperimentConfig, data, "")
    check_variants(values.get("learners", ExperimentConfig.learners), variants)
    values["variants"] = resolve_variants(values.get("learners", ExperimentConfig.learners), variants)
    for key, cls in _SECTIONS.items():
        if key in values:
            if not isinstance(values[key], dict):
                raise ValueError(f"config [{key}] must be a table, got {values[key]!r}")
            values[key] = cls(**_typed_fields(cls, values[key], key + "."))
    config = ExperimentConfig(**values)
    validate(config)
    return config


def load_toml(path: str | Path) -> ExperimentConfig:
    """Read a config file; unreadable or malformed files raise ValueError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"config file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read config file {str(path)!r}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    return from_dict(data)


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
    """Cross-field checks beyond types; raises ValueError with one line."""
    c = config
    if ":" not in c.family and c.family not in FAMILIES:
        raise ValueError(f"unknown family {c.family!r}; accepted: {sorted(FAMILIES)} or 'package.module:function'")
    if not c.learners:
        raise ValueError(f"learners is empty; accepted: any of {sorted(LEARNERS)}")
    check_variants(c.learners, c.variants)
    if len(set(c.learners)) != len(c.learners):
        raise ValueError(f"learners lists a name twice: {list(c.learners)}")
    stray = sorted(set(c.learner_options) - set(c.learners))
    if stray:
        raise ValueError(f"learner_options names learner(s) {stray} not in learners {list(c.learners)}")
    _positive("inner.lr", c.inner.lr)
    _positive("inner.steps", c.inner.steps)
    _at_least("inner.batch_size", c.inner.batch_size, 0)
    _choice("inner.optimizer", c.inner.optimizer, OPTIMIZERS)
    _positive("outer.lr", c.outer.lr)
    for key in ("meta_steps", "meta_batch", "eval_every", "eval_tasks"):
        _positive(f"outer.{key}", getattr(c.outer, key))
    _choice("outer.optimizer", c.outer.optimizer, OUTER_OPTIMIZERS)
    for kind in c.slices.kinds:
        _choice("slices.kinds", kind, SLICE_KINDS)
    if not c.slices.kinds:
        raise ValueError(f"slices.kinds is empty; accepted: any of {list(SLICE_KINDS)}")
    origin_learner = c.slices.origin.removeprefix("final:")
    if c.slices.origin != "mean" and origin_learner not in c.learners:
        raise ValueError(f"slices.origin {c.slices.origin!r} must be 'mean', a learner of {list(c.learners)} "
                         "(its θ0) or 'final:<learner>' (its mean final point)")
    if "three_point" in c.slices.kinds:
        pts = c.slices.three_point
        if len(pts) != 3 or len(set(pts)) != 3 or any(p not in c.learners for p in pts):
            raise ValueError(f"slices.three_point must name 3 different learners of {list(c.learners)}, got {list(pts)}")
    if not 2 <= c.slices.resolution <= 500:
        raise ValueError(f"slices.resolution must be 2..500 per axis, got {c.slices.resolution}")
    if c.slices.resolution ** 2 > MAX_GRID_POINTS:
        raise ValueError(f"slices.resolution {c.slices.resolution} gives more than {MAX_GRID_POINTS} grid points")
    if not 0 <= c.slices.margin <= 10:
        raise ValueError(f"slices.margin must lie in [0, 10], got {c.slices.margin}")
    _positive("heldout_tasks", c.heldout_tasks)
    if c.heldout_tasks > 256:
        raise ValueError(f"heldout_tasks must be <= 256, got {c.heldout_tasks}")
    _at_least("meta_path_points", c.meta_path_points, 2)
    _at_least("seed", c.seed, 0)
    _choice("dtype", c.dtype, DTYPES)
    if c.device != "cpu" and not c.device.startswith("cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {c.device!r}")


def _typed_fields(cls: type, data: dict[str, Any], prefix: str) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"unknown config key(s) {[prefix + u for u in unknown]}; accepted: {[prefix + n for n in names]}")
    out = {}
    for key, value in data.items():
        out[key] = _coerce(prefix + key, value, hints[key])
    return out


def _coerce(key: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"config key {key!r} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"config key {key!r} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"config key {key!r} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"config key {key!r} must be a string, got {value!r}")
        return value
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


def _positive(key: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"config key {key!r} must be > 0, got {value!r}")


def _at_least(key: str, value: int, low: int) -> None:
    if value < low:
        raise ValueError(f"config key {key!r} must be >= {low}, got {value!r}")


def _choice(key: str, value: str, accepted: Any) -> None:
    if value not in accepted:
        raise ValueError(f"config key {key!r}: unknown value {value!r}; accepted: {sorted(accepted)}")
