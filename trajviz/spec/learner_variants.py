"""Learner variants: configured copies of a learner under their own names (no torch).

A run may hold several copies of one learner with different options, e.g.
Leap's ablation: ``leap`` (path length, loss in the manifold, stabilizer),
``leap-energy`` (norm=False), ``leap-noloss`` (loss=False), ... Each variant
is ``Variant(name, base, options)``; downstream (experiment, store, summary,
exports, app) a variant *is* a learner, and its record carries its own name.

Config (TOML)::

    learners = ["leap", "leap-energy", "my-leap"]   # base names, predefined or own variants
    [[variants]]
    name = "my-leap"
    base = "leap"
    options = { stabilizer = false }

The predefined variants (``PREDEFINED``) need no ``[[variants]]`` entry; a
resolved config lists every variant it uses explicitly, so a stored run says
exactly what each name meant.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trajviz.spec.names import LEARNER_NAMES

NAME_RULE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")
NAME_ACCEPTED = "1-40 characters of a-z, 0-9, '-', '_', '.', starting with a letter or digit"


@dataclass(frozen=True)
class Variant:
    """name: the learner's name in the run; base: a registered learner
    (``names.LEARNER_NAMES``); options: {option: bool} passed to the base."""

    name: str
    base: str
    options: dict[str, bool] = field(default_factory=dict)


#: Leap's switches: norm (length vs energy), loss (in the manifold), stabilizer.
#: The stabilizer only acts when the loss is in the manifold, so these five and
#: ``leap`` itself are the six meaningful combinations; leap-energy-noloss is Reptile.
PREDEFINED: dict[str, Variant] = {v.name: v for v in (
    Variant("leap-nostab", "leap", {"stabilizer": False}),
    Variant("leap-noloss", "leap", {"loss": False}),
    Variant("leap-energy", "leap", {"norm": False}),
    Variant("leap-energy-nostab", "leap", {"norm": False, "stabilizer": False}),
    Variant("leap-energy-noloss", "leap", {"norm": False, "loss": False}),
)}


def parse_variants(value: Any) -> tuple[Variant, ...]:
    """``[[variants]]`` tables (or Variant objects) -> Variants; bad shapes raise one line."""
    if isinstance(value, Mapping) or not isinstance(value, Sequence) or isinstance(value, str):
        raise ValueError(f"config key 'variants' must be a list of tables {{name, base, options}}, got {value!r}")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, Variant):
            out.append(item)
            continue
        if not isinstance(item, Mapping):
            raise ValueError(f"variants[{i}] must be a table {{name, base, options}}, got {item!r}")
        unknown = sorted(set(item) - {"name", "base", "options"})
        if unknown:
            raise ValueError(f"variants[{i}] has unknown key(s) {unknown}; accepted: ['base', 'name', 'options']")
        name, base, options = item.get("name"), item.get("base"), item.get("options", {})
        if not isinstance(name, str) or not isinstance(base, str):
            raise ValueError(f"variants[{i}] needs string keys 'name' and 'base', got {dict(item)!r}")
        if not isinstance(options, Mapping):
            raise ValueError(f"variant {name!r}: options must be a table of true/false, got {options!r}")
        out.append(Variant(name, base, dict(options)))
    return tuple(out)


def resolve_variants(learners: Sequence[str], variants: Sequence[Variant]) -> tuple[Variant, ...]:
    """The variants ``learners`` uses, in its order: each defined one, or else the
    predefined one of that name (copied, so a config never shares its options)."""
    defined = {v.name: v for v in variants}
    used = [defined.get(n) or PREDEFINED.get(n) for n in dict.fromkeys(learners)]
    return tuple(Variant(v.name, v.base, dict(v.options)) for v in used if v is not None)


def check_variants(learners: Sequence[str], variants: Sequence[Variant],
          options: Mapping[str, Sequence[str]]) -> None:
    """Every variant valid and listed, every learner a base or a variant; one line if not.
    ``options``: {base learner: the true/false options it takes} (``config.LEARNER_OPTIONS``)."""
    seen: set[str] = set()
    for v in variants:
        if v.name in LEARNER_NAMES:
            raise ValueError(f"variant name {v.name!r} clashes with the learner {v.name!r}; "
                             f"a variant needs its own name, e.g. {v.name + '-' + 'mine'!r}")
        if v.name in seen:
            raise ValueError(f"variant name {v.name!r} is defined twice; variant names must be unique")
        seen.add(v.name)
        if not NAME_RULE.fullmatch(v.name):
            raise ValueError(f"variant name {v.name!r} is not accepted; accepted: {NAME_ACCEPTED}")
        if v.base not in LEARNER_NAMES:
            raise ValueError(f"variant {v.name!r}: unknown base learner {v.base!r}; "
                             f"accepted: {sorted(LEARNER_NAMES)}")
        accepted = options.get(v.base, ())
        unknown = sorted(set(v.options) - set(accepted))
        if unknown:
            raise ValueError(f"variant {v.name!r}: unknown option(s) {unknown} for base {v.base!r}; "
                             f"accepted: {sorted(accepted) or 'none'}")
        for key, value in v.options.items():
            if not isinstance(value, bool):
                raise ValueError(f"variant {v.name!r}: option {key!r} must be true or false, got {value!r}")
    unknown = [n for n in learners if n not in LEARNER_NAMES and n not in seen and n not in PREDEFINED]
    if unknown:
        raise ValueError(f"unknown learner(s) {unknown}; accepted: {sorted(LEARNER_NAMES)}, "
                         f"the predefined variants {sorted(PREDEFINED)}, or a name defined in [[variants]]")
    unlisted = sorted(seen - set(learners))
    if unlisted:
        raise ValueError(f"variant(s) {unlisted} are defined but not listed in learners {list(learners)}")


def learner_specs(learners: Sequence[str], variants: Sequence[Variant],
                  learner_options: Mapping[str, Mapping[str, Any]]) -> list[Variant]:
    """One (name, base, options) per learner of a run, in order; a plain learner is its
    own base. ``learner_options[name]`` is applied over the variant's options."""
    defined = {v.name: v for v in variants}
    out = []
    for name in learners:
        v = defined.get(name) or PREDEFINED.get(name) or Variant(name, name)
        out.append(Variant(name, v.base, {**v.options, **learner_options.get(name, {})}))
    return out
