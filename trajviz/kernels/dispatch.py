"""The one dispatch: which backend runs a piece of work, and which one ran.

Three backends compute the same maths (tests/test_kernels.py holds every one
to the plain autograd path):

- ``plain``: autograd and ``vmap`` over ``problem.loss`` (``trajviz.engine``);
  takes every model, loss and optimiser. The reference.
- ``torch``: an MLP under MSE as batched matmuls, its backward written by hand
  (``fused``: inner steps; ``mlp_plan.PlaneMLP``: plane losses).
- ``native``: the C kernels (``native``: plane losses; ``native_birth``: the
  birth map's statistics), built at first use where a C compiler exists.

Three kinds of work (``OPS``): ``step`` (an inner step's loss, gradient and
update), ``plane`` (losses at grid points of a plane) and ``birth`` (an inner
loop's losses and step lengths only). ``choose(op, declines, ...)`` walks
the order the user's request gives, asks each backend whether it declines
(a reason, from the tables in ``tables.py``, or None) and returns the first
that accepts, with every decline on the way. Nothing else decides.

The request: ``plain | torch | native | auto`` from, in order, the
``kernels()`` context (a ``ContextVar``: the app is threaded, so there is no
process-wide flag), the ``TRAJVIZ_KERNELS`` environment variable, "auto".
An explicit backend is tried first and falls back (one line on stderr says
so, once per reason) only where it declines; "auto" takes, per op, the order
measured fastest (``AUTO_ORDER``; plane losses are timed per machine and
shape class, ``calibrate``). ``recording()`` collects which backend ran for
each op (``run.info["kernels"]``, the bench, the tests).
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from trajviz.kernels.cache import notice

CHOICES = ("auto", "plain", "torch", "native")
BACKENDS = ("native", "torch", "plain")
OPS = ("step", "plane", "birth")
ENV = "TRAJVIZ_KERNELS"
# An explicit request is tried first, then the next ones down.
EXPLICIT_ORDER = {"plain": ("plain",), "torch": ("torch", "plain"),
                  "native": ("native", "torch", "plain")}
# "auto"'s order where it is not timed per machine (a cost model the benches check):
# step: the hand-written torch step, 1.75-3.9x the plain one (bench/bench_inner.py); there
# is no native inner step. birth: the C loop, whole rollouts in L1 (bench/bench_birthmap.py).
# plane: timed (``calibrate``), this order only before the timing.
AUTO_ORDER = {"step": ("torch", "plain"), "birth": ("native", "torch", "plain"),
              "plane": ("native", "torch", "plain")}

_REQUEST: ContextVar[str | None] = ContextVar("trajviz_kernels", default=None)
_RAN: ContextVar[tuple[dict, ...]] = ContextVar("trajviz_kernels_ran", default=())


def check_kernels(name: object) -> str:
    """A kernels request (plain | torch | native | auto), else ValueError in one line."""
    if name not in CHOICES:
        raise ValueError(f"unknown kernels {name!r}; accepted: {' | '.join(CHOICES)}")
    return name


def requested() -> str:
    """The kernels the current context asks for: ``kernels()``, else $TRAJVIZ_KERNELS, else auto."""
    name = _REQUEST.get()
    if name is None:
        env = os.environ.get(ENV, "").strip()
        if env and env not in CHOICES:
            raise ValueError(f"{ENV}={env!r} is not a kernels request; accepted: {' | '.join(CHOICES)}")
        name = env or "auto"
    return name


@contextlib.contextmanager
def kernels(name: str | None) -> Iterator[str]:
    """Within the block (this thread and context only) work asks for ``name``; None: unchanged."""
    if name is None:
        yield requested()
        return
    token = _REQUEST.set(check_kernels(name))
    try:
        yield name
    finally:
        _REQUEST.reset(token)


@contextlib.contextmanager
def recording() -> Iterator[dict[str, set[str]]]:
    """{op: {backend names}} of the work chosen inside the block (and in enclosing blocks too)."""
    ran: dict[str, set[str]] = {}
    token = _RAN.set((*_RAN.get(), ran))
    try:
        yield ran
    finally:
        _RAN.reset(token)


def recorded() -> dict[str, set[str]]:
    """The innermost ``recording()``'s {op: {backend names}} so far ({} outside any)."""
    stack = _RAN.get()
    return stack[-1] if stack else {}


def note(op: str, name: str) -> None:
    """Record that backend ``name`` ran ``op`` (in every enclosing ``recording``)."""
    for ran in _RAN.get():
        ran.setdefault(op, set()).add(name)


def ran_names(ran: dict[str, set[str]]) -> dict[str, str]:
    """{op: "native" or "native+torch"}: the JSON form for ``run.info["kernels"]``."""
    return {op: "+".join(sorted(names)) for op, names in sorted(ran.items())}


@dataclass(frozen=True)
class Choice:
    """The backend that runs ``op``: its name, the request it came from, and every backend
    that declined before it, as (name, reason)."""

    op: str
    name: str
    request: str
    declined: tuple[tuple[str, str], ...] = ()


Declines = Callable[[str], str | None]  # backend name -> reason it declines, or None


def choose(op: str, declines: Declines, *, request: str | None = None,
           order: tuple[str, ...] | None = None) -> Choice:
    """The first backend, in the request's order, that does not decline ``op``.

    declines(name) gives a backend's reason to decline this problem, loss,
    optimiser and shape of work (or None). ``order`` overrides "auto"'s
    (``calibrate``'s measured one). "plain" never declines. An explicit
    request that declines is said on stderr, once per reason.
    """
    if op not in OPS:
        raise ValueError(f"unknown kernel op {op!r}; accepted: {', '.join(OPS)}")
    request = check_kernels(request or requested())
    if request == "auto":
        names = order or AUTO_ORDER[op]
    else:
        names = EXPLICIT_ORDER[request]
    declined = []
    for name in names:
        reason = None if name == "plain" else declines(name)
        if reason is None:
            if request != "auto" and declined:
                why = "; ".join(f"{n} declines {op}: {r}" for n, r in declined)
                notice(f"kernels={request}: {why}; running {name}")
            note(op, name)
            return Choice(op, name, request, tuple(declined))
        declined.append((name, reason))
    raise AssertionError("plain never declines")  # pragma: no cover
