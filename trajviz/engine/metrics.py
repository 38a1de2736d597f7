"""Path metrics: how long, straight, smooth and monotone each rollout (one inner loop) was.

Leap (Flennerhag et al., ICLR 2019) meta-learns the initialisation that
minimises the length of the gradient path on the task manifold, the curve
γ_i = (θ_i, f(θ_i)). The quantities here are that objective and its
relatives, computed from a recorded path (``Trajectory.params`` [.., K+1, P]
and ``Trajectory.losses`` [.., K+1]).

Conventions, shared by every function below:

* Update i is Δθ_i = θ_{i+1} − θ_i and Δf_i = f_{i+1} − f_i, i = 0..K−1
  (K inner steps give K segments).
* Any number of leading batch dims ``...`` (rollouts, learners × tasks, ...).
* Results are floating tensors in the promoted dtype of the inputs
  (float32 stays float32, float64 stays float64; integer input becomes the
  default float dtype), on the inputs' device.
* NaN-safe, never raises on values: a path with a non-finite entry anywhere
  (NaN or ±inf in ``params`` or ``losses``, i.e. a diverged rollout) gets NaN for
  every path metric, and running metrics that are NaN from the first
  non-finite point on (the finite prefix is kept). Shapes that do not fit
  together raise ``ValueError``.
* A metric that is undefined for a finite path is NaN as well (e.g.
  straightness of a zero-length path, oscillation with fewer than two
  non-zero updates), so ``summarise`` skips it.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

PATH_METRICS = (
    "length", "param_length", "energy", "displacement", "straightness",
    "oscillation", "mean_cosine", "monotonicity", "total_rise", "steps_to_eps",
    "auc", "final_loss",
)
RUNNING_METRICS = ("cumulative_length", "cumulative_param_length", "cosine", "monotone_fraction")


def _prepare(params: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
    params, losses = torch.as_tensor(params), torch.as_tensor(losses)
    if params.dim() < 2:
        raise ValueError(f"params must be [..., K+1, P], got shape {tuple(params.shape)}")
    if losses.shape != params.shape[:-1]:
        raise ValueError(f"losses must be [..., K+1] = {tuple(params.shape[:-1])} to match params "
                         f"{tuple(params.shape)}, got {tuple(losses.shape)}")
    if params.shape[-2] < 1:
        raise ValueError("a path needs at least one point (K+1 >= 1)")
    dtype = torch.promote_types(params.dtype, losses.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    return params.to(dtype), losses.to(dtype)


def _segments(params: Tensor, losses: Tensor) -> dict[str, Tensor]:
    """Per-segment pieces [..., K] and per-pair cosines [..., K−1] of a path.

    step: ‖Δθ_i‖; df: Δf_i; cos: cosine of (Δθ_i, Δθ_{i+1}), NaN where either
    update has zero length; point_ok: [..., K+1] point i and its loss are finite.
    """
    delta = params[..., 1:, :] - params[..., :-1, :]
    step = torch.linalg.vector_norm(delta, dim=-1)
    df = losses[..., 1:] - losses[..., :-1]
    # Norms below sqrt(tiny) count as zero-length: their product would underflow.
    tiny = math.sqrt(torch.finfo(step.dtype).tiny)
    moving = step > tiny
    dot = torch.linalg.vecdot(delta[..., :-1, :], delta[..., 1:, :], dim=-1)
    denom = step[..., :-1] * step[..., 1:]
    both = moving[..., :-1] & moving[..., 1:]
    cos = torch.where(both, dot / torch.where(both, denom, torch.ones_like(denom)),
                      torch.full_like(dot, math.nan)).clamp(-1.0, 1.0)
    point_ok = torch.isfinite(params).all(dim=-1) & torch.isfinite(losses)
    return {"step": step, "df": df, "cos": cos, "point_ok": point_ok}


def _nanmean(x: Tensor, dim: int = -1) -> Tensor:
    """Mean over finite entries along ``dim``; NaN where there are none."""
    ok = ~torch.isnan(x)
    count = ok.sum(dim)
    total = torch.where(ok, x, torch.zeros_like(x)).sum(dim)
    return torch.where(count > 0, total / count.clamp_min(1).to(x.dtype),
                       torch.full_like(total, math.nan))


def path_metrics(params: Tensor, losses: Tensor, eps: float = 0.05) -> dict[str, Tensor]:
    """Summary metrics of recorded paths.

    params: [..., K+1, P] θ_0..θ_K; losses: [..., K+1] f_0..f_K (the recorded
    losses, each on its own step's batch). Returns {name: [...]}, names in
    ``PATH_METRICS``:

    length        Leap's path length on the loss-augmented manifold,
                  Σ_i √(‖Δθ_i‖² + Δf_i²) (no stabiliser on Δf).
    param_length  Σ_i ‖Δθ_i‖, parameter space alone.
    energy        Σ_i (‖Δθ_i‖² + Δf_i²), Leap's d_2.
    displacement  ‖θ_K − θ_0‖.
    straightness  displacement / param_length, in [0, 1] (1 for a straight
                  line; clamped against rounding); NaN for a zero-length path.
    oscillation   fraction of consecutive update pairs (Δθ_i, Δθ_{i+1}) whose
                  cosine is negative, over pairs where both updates are non-zero;
                  NaN if there is no such pair (K < 2).
    mean_cosine   mean cosine over those same pairs; NaN if none.
    monotonicity  fraction of the K steps where the loss fell (Δf_i < 0); NaN if K = 0.
    total_rise    Σ_i max(Δf_i, 0).
    steps_to_eps  first step i with |f_i − f_K| ≤ eps·|f_0 − f_K|, i.e. within
                  a fraction ``eps`` of the total change of the rollout from its
                  final loss; always in [0, K] (0 when f_0 = f_K). A step index
                  stored as a float so it can be NaN.
    auc           trapezoidal area under f over steps 0..K divided by K (the
                  mean loss over the rollout); f_0 when K = 0.
    final_loss    f_K.

    Every metric is NaN for a path with any non-finite entry.
    """
    if not eps >= 0:
        raise ValueError(f"eps must be a non-negative fraction, got {eps!r}")
    params, losses = _prepare(params, losses)
    seg = _segments(params, losses)
    step, df, cos = seg["step"], seg["df"], seg["cos"]
    k = step.shape[-1]
    nan = torch.full(losses.shape[:-1], math.nan, dtype=losses.dtype, device=losses.device)

    param_length = step.sum(-1)
    sq = step.square() + df.square()
    displacement = torch.linalg.vector_norm(params[..., -1, :] - params[..., 0, :], dim=-1)
    straightness = torch.where(param_length > 0,
                               displacement / torch.where(param_length > 0, param_length,
                                                          torch.ones_like(param_length)),
                               nan).clamp(0.0, 1.0)
    negative = torch.where(torch.isnan(cos), cos, (cos < 0).to(cos.dtype))

    monotonicity = (df < 0).to(df.dtype).mean(-1) if k > 0 else nan.clone()

    out = {
        **_loss_metrics(step, losses, eps),
        "energy": sq.sum(-1),
        "displacement": displacement,
        "straightness": straightness,
        "oscillation": _nanmean(negative) if k > 1 else nan.clone(),
        "mean_cosine": _nanmean(cos) if k > 1 else nan.clone(),
        "monotonicity": monotonicity,
        "total_rise": df.clamp_min(0).sum(-1),
    }
    finite = seg["point_ok"].all(dim=-1)
    return {name: torch.where(finite, out[name], nan) for name in PATH_METRICS}


def _loss_metrics(step: Tensor, losses: Tensor, eps: float) -> dict[str, Tensor]:
    """length, param_length, steps_to_eps, auc and final_loss (see ``path_metrics``)
    from the update lengths ‖Δθ_i‖ [..., K] and the losses [..., K+1] alone."""
    k = step.shape[-1]
    df = losses[..., 1:] - losses[..., :-1]
    f0, fk = losses[..., 0], losses[..., -1]
    close = (losses - fk[..., None]).abs() <= eps * (f0 - fk).abs()[..., None]
    # argmax returns the first True; θ_K itself always qualifies.
    steps_to_eps = close.to(torch.uint8).argmax(dim=-1).to(losses.dtype)
    auc = torch.trapezoid(losses, dim=-1) / k if k > 0 else f0.clone()
    return {"length": (step.square() + df.square()).sqrt().sum(-1), "param_length": step.sum(-1),
            "steps_to_eps": steps_to_eps, "auc": auc, "final_loss": fk.clone()}


def step_metrics(step: Tensor, losses: Tensor, finite: Tensor, eps: float = 0.05) -> dict[str, Tensor]:
    """The metrics of ``path_metrics`` that need no path, only its update lengths.

    step: [..., K] ‖θ_{i+1} − θ_i‖; losses: [..., K+1]; finite: [...] bool, every
    point and loss of the path finite. Returns {name: [...]} for length,
    param_length, steps_to_eps, auc and final_loss, equal to ``path_metrics``'
    (the same operations), so a loop can accumulate ‖Δθ_i‖ on the fly instead
    of recording [..., K+1, P].
    """
    if not eps >= 0:
        raise ValueError(f"eps must be a non-negative fraction, got {eps!r}")
    out = _loss_metrics(step, losses, eps)
    nan = torch.full_like(losses[..., 0], math.nan)
    return {name: torch.where(finite, value, nan) for name, value in out.items()}


def running_metrics(params: Tensor, losses: Tensor) -> dict[str, Tensor]:
    """Metrics so far, at every point of the path, for time-cursor panels.

    params: [..., K+1, P]; losses: [..., K+1]. Returns {name: [..., K+1]},
    names in ``RUNNING_METRICS``, where entry i uses points 0..i only:

    cumulative_length        Σ_{j<i} √(‖Δθ_j‖² + Δf_j²); 0 at i = 0.
    cumulative_param_length  Σ_{j<i} ‖Δθ_j‖; 0 at i = 0.
    cosine                   cosine between the update arriving at point i−1
                             (θ_{i−1} − θ_{i−2}) and the one arriving at i
                             (θ_i − θ_{i−1}); NaN for i < 2 or a zero-length update.
    monotone_fraction        fraction of steps 1..i whose loss fell; NaN at i = 0.

    At i = K these agree with ``path_metrics``' length, param_length and
    monotonicity, and the mean of the finite cosines is its mean_cosine.
    From the first non-finite point on, every entry is NaN.
    """
    params, losses = _prepare(params, losses)
    seg = _segments(params, losses)
    step, df, cos = seg["step"], seg["df"], seg["cos"]
    lead = losses.shape[:-1]
    zero = torch.zeros(*lead, 1, dtype=losses.dtype, device=losses.device)
    nan1 = torch.full_like(zero, math.nan)

    cum_length = torch.cat([zero, (step.square() + df.square()).sqrt().cumsum(-1)], dim=-1)
    cum_param = torch.cat([zero, step.cumsum(-1)], dim=-1)
    cosine = torch.cat([nan1, nan1, cos], dim=-1)[..., : losses.shape[-1]]
    falls = (df < 0).to(df.dtype).cumsum(-1)
    counts = torch.arange(1, df.shape[-1] + 1, dtype=df.dtype, device=df.device)
    monotone = torch.cat([nan1, falls / counts], dim=-1)

    broken = seg["point_ok"].logical_not().to(torch.int32).cumsum(-1) > 0
    out = {"cumulative_length": cum_length, "cumulative_param_length": cum_param,
           "cosine": cosine, "monotone_fraction": monotone}
    return {name: value.masked_fill(broken, math.nan) for name, value in out.items()}
