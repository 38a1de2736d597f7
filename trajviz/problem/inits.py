"""Your own initialisation: load named arrays from a file and match them to a model's parameters.

Accepted files, by suffix:

- ``.safetensors``: read with ``safetensors.numpy`` (no code is run);
- ``.npz``: a numpy archive of named arrays, read with ``allow_pickle=False``;
- ``.pt`` / ``.pth`` / ``.bin``: a torch state dict, read only with
  ``torch.load(weights_only=True)`` (tensors and plain containers, no code).

The names must be exactly the model's parameter names (``problem.model.spec``,
e.g. ``0.weight`` for the first layer of the sinusoid MLP: what
``module.state_dict()`` of the same ``nn.Sequential`` writes) with the same
shapes; a missing, extra or misshapen array is a one-line ValueError naming
it. The result is θ0 as one [P] vector in the model's order.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from trajviz.problem.models import ParamSpec

SUFFIXES = (".safetensors", ".npz", ".pt", ".pth", ".bin")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_init_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"initialisation name {name!r} is not accepted; use 1-64 letters, digits, "
                         "'.', '_' or '-', starting with a letter or digit")
    return name


def read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The named arrays of an init file (see the module docstring for the formats)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"init file {str(path)!r} has suffix {suffix or 'none'!r}; accepted: "
                         f"{', '.join(SUFFIXES)}")
    if not path.is_file():
        raise ValueError(f"init file {str(path)!r} does not exist")
    try:
        if suffix == ".safetensors":
            from safetensors.numpy import load_file
            return dict(load_file(str(path)))
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        import torch
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file, said in one line
        raise ValueError(f"cannot read init file {str(path)!r}: "
                         f"{' '.join(f'{type(exc).__name__}: {exc}'.split())}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and hasattr(v, "detach")
                                             for k, v in data.items()):
        raise ValueError(f"init file {str(path)!r} must hold a dict of named tensors (a state dict), "
                         f"got {type(data).__name__}")
    return {k: v.detach().cpu().numpy() for k, v in data.items()}


def match_params(arrays: dict[str, Any], spec: ParamSpec, where: str = "init") -> np.ndarray:
    """θ0 [P] from {name: array} with exactly ``spec``'s names and shapes (ValueError otherwise)."""
    expected = ", ".join(f"{n} {list(s)}" for n, s in zip(spec.names, spec.shapes))
    missing = [n for n in spec.names if n not in arrays]
    if missing:
        raise ValueError(f"{where} lacks parameter {missing[0]!r}; the model has: {expected}")
    extra = [n for n in arrays if n not in spec.names]
    if extra:
        raise ValueError(f"{where} has array {extra[0]!r}, which the model does not have; "
                         f"the model has: {expected}")
    parts = []
    for name, shape in zip(spec.names, spec.shapes):
        value = np.asarray(arrays[name])
        if tuple(value.shape) != tuple(shape):
            raise ValueError(f"{where}: parameter {name!r} has shape {list(value.shape)}, "
                             f"the model expects {list(shape)}")
        if value.dtype.kind not in "fiu":
            raise ValueError(f"{where}: parameter {name!r} has dtype {value.dtype}; accepted: "
                             "real numbers")
        if not np.isfinite(value).all():
            raise ValueError(f"{where}: parameter {name!r} has non-finite entries")
        parts.append(value.reshape(-1))
    return np.concatenate(parts) if parts else np.zeros(0)


def load_init(path: str | Path, spec: ParamSpec) -> np.ndarray:
    """θ0 [P] from an init file, matched to ``spec`` (one-line ValueError on any mismatch)."""
    return match_params(read_arrays(path), spec, where=f"init file {str(path)!r}")


def resolve_inits(config, inits: dict[str, Any] | None,
                  spec: ParamSpec | None = None) -> dict[str, np.ndarray]:
    """{name: θ0 [P]} from {name: file path | [P] array | {param: array}} for ``config``'s model
    (``spec``: its parameters, when the caller has built the model already)."""
    if not inits:
        return {}
    if spec is None:
        from trajviz.problem.tasks import make_family

        spec = make_family(config.family, config.family_options).problem().model.spec
    out = {}
    for name, value in inits.items():
        check_init_name(name)
        if isinstance(value, (str, Path)):
            out[name] = load_init(value, spec)
        elif isinstance(value, dict):
            out[name] = match_params(value, spec, where=f"init {name!r}")
        else:
            vector = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
            if vector.shape != (spec.size,):
                raise ValueError(f"init {name!r} has shape {list(vector.shape)}; accepted: [P] = "
                                 f"[{spec.size}], a dict of named arrays, or a file")
            out[name] = vector
    return out
