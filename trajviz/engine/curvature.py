"""Hessian-vector products and top Hessian eigenpairs, with ``torch.func``.

No Hessian is ever formed: ``H v`` is the gradient of ⟨∇f(θ), v⟩
(``grad`` of ``grad``-dot), a few gradients' cost, on params as
{name: tensor} (flattening to one vector would add a slice-backward per
parameter tensor to every product). On top of it:

* ``top_eigenvalues``: λ_max at many (θ, batch) points at once, by power
  iteration written for ``vmap`` (a fixed number of iterations, no
  data-dependent branches; PyHessian's method, batched).
* ``top_eigenvectors``: the top-k eigenpairs of one operator by Lanczos with
  full re-orthogonalisation (for the ``hessian`` slice).
* ``spectra``: the bottom of the spectrum, the trace and the spectral density
  at many points at once: exact (the Hessian formed with ``torch.func.hessian``
  and ``eigvalsh``) up to ``SpectrumSpec.exact_max`` parameters, else seeded
  stochastic Lanczos quadrature (SLQ: Lanczos from Rademacher probes, vmapped
  over points and probes) with an error bar on each estimate.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import grad, hessian, vmap

from trajviz.problem.models import Params, flatten, unflatten
from trajviz.problem.tasks import Batch, Problem, TaskSet

Operator = Callable[[Params], Params]


def hvp_fn(problem: Problem) -> Callable[[Params, Batch, Params], Params]:
    """hvp(θ, batch, v) -> ∇²f(θ; batch)·v, all {name: [*shape]}; vmappable.

    Reverse over reverse (the gradient of ⟨∇f(θ), v⟩): measured faster than
    forward over reverse (``jvp`` of ``grad``) for vmapped small MLPs on CPU,
    with the same numbers (264 points of the 1-40-40-1 sinusoid MLP: 58 vs 76 ms).
    """
    g = grad(problem.loss)

    def hvp(params: Params, batch: Batch, v: Params) -> Params:
        return grad(lambda p: _dot(g(p, batch), v))(params)
    return hvp


def _dot(a: Params, b: Params) -> Tensor:
    return sum((a[k] * b[k]).sum() for k in a)


def _unit(v: Params) -> Params:
    norm = torch.sqrt(_dot(v, v))
    tiny = torch.finfo(norm.dtype).tiny
    return {k: x / (norm + tiny) for k, x in v.items()}


def power_iteration(op: Operator, v0: Params, iters: int) -> tuple[Params, Tensor]:
    """``iters`` power iterations of the symmetric ``op`` from v0: (unit v, Rayleigh quotient v·op(v)).

    A fixed number of steps and no data-dependent branch, so it runs under
    ``vmap``; ``iters + 1`` applications of ``op``. The quotient tends to the
    eigenvalue of largest magnitude, with error ∝ (λ₂/λ₁)^{2·iters}.
    """
    v = _unit(v0)
    for _ in range(iters):
        v = _unit(op(v))
    return v, _dot(v, op(v))


def scaled(hvp: Callable[[Params, Batch, Params], Params], params: Params, batch: Batch,
           scale: Params | None, shift: Tensor | float = 0.0) -> Operator:
    """u ↦ S·H·S·u + shift·u with S = diag(scale) (None: the identity)."""
    if scale is None:
        return lambda u: {k: h + shift * u[k] for k, h in hvp(params, batch, u).items()}

    def op(u: Params) -> Params:
        hu = hvp(params, batch, {k: scale[k] * x for k, x in u.items()})
        return {k: scale[k] * h + shift * u[k] for k, h in hu.items()}
    return op


def point_sharpness(problem: Problem, iters: int) -> Callable[..., Tensor]:
    """sharp(θ, batch, v0, scale, shift) -> the Rayleigh quotient of S·H·S + shift·I after
    ``iters`` power iterations, minus ``shift``; θ, v0, scale {name: [*shape]}.

    scale = None gives the Hessian's sharpness; scale = √(P⁻¹) gives the
    preconditioned sharpness λ_max(P⁻¹H) (the eigenvalues of P^{-½}HP^{-½}).
    With shift = 0 the result is the eigenvalue of largest magnitude μ; if
    μ < 0, calling again with shift = −μ gives λ_max (the spectrum of
    S·H·S − μ·I lies in [0, 2|μ|]); ``top_eigenvalues`` does both. For ``vmap``.
    """
    hvp = hvp_fn(problem)

    def sharp(params: Params, batch: Batch, v0: Params, scale: Params | None,
              shift: Tensor | float = 0.0) -> Tensor:
        return power_iteration(scaled(hvp, params, batch, scale, shift), v0, iters)[1] - shift
    return sharp


def top_eigenvalues(problem: Problem, params: Params, batch: Batch, v0: Params,
                    scale: Params | None, iters: int) -> Tensor:
    """λ_max of S·H·S at N points at once: params/scale {name: [N, *shape]}, batch
    {key: [N, ...]}, v0 {name: [*shape]} shared -> [N].

    One vmapped power iteration for every point; only the points whose
    dominant eigenvalue came out negative get a second, shifted one.
    """
    sharp = point_sharpness(problem, iters)
    s_dim = None if scale is None else 0
    mu = vmap(sharp, in_dims=(0, 0, None, s_dim))(params, batch, v0, scale)
    neg = torch.nonzero(mu < 0).flatten()
    if len(neg):
        pick = lambda d: None if d is None else {k: x[neg] for k, x in d.items()}  # noqa: E731
        mu = mu.clone()
        mu[neg] = vmap(sharp, in_dims=(0, 0, None, s_dim, 0))(
            pick(params), pick(batch), v0, pick(scale), -mu[neg])
    return mu


def mean_hvp(problem: Problem, theta: Tensor, tasks: TaskSet) -> Callable[[Tensor], Tensor]:
    """v [P] ↦ (1/T)·Σ_t ∇²f_t(θ)·v [P] on every task's full support set (vmapped over
    tasks); θ: [P] flat, in ``ParamSpec`` order."""
    spec = problem.model.spec
    per_task = vmap(hvp_fn(problem), in_dims=(None, 0, None))
    params = unflatten(theta, spec)
    return lambda v: flatten(per_task(params, tasks.support, unflatten(v, spec)), spec).mean(dim=0)


def top_eigenvectors(op: Callable[[Tensor], Tensor], size: int, k: int = 2, iters: int = 60, seed: int = 0,
                     dtype: torch.dtype = torch.float64,
                     device: str | torch.device = "cpu") -> tuple[Tensor, Tensor]:
    """The k largest (algebraic) eigenvalues [k] and eigenvectors [k, P] of ``op``.

    Lanczos with full re-orthogonalisation for min(P, iters) steps from a
    seeded random start (``op`` takes and returns ``dtype`` vectors); when the Krylov space closes (an invariant subspace)
    it restarts from a fresh random vector orthogonal to all so far, so the
    result is exact once min(P, iters) = P. Eigenvalues come back descending.
    """
    if not 1 <= k <= size:
        raise ValueError(f"k must lie in 1..{size}, got {k}")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    steps = min(size, max(iters, k))
    basis = torch.zeros(steps, size, dtype=dtype, device=device)
    alpha = torch.zeros(steps, dtype=dtype, device=device)
    beta = torch.zeros(steps, dtype=dtype, device=device)
    q = torch.randn(size, generator=gen, dtype=dtype).to(device)
    for j in range(steps):
        q = q - basis[:j].T @ (basis[:j] @ q)  # keep exact orthogonality
        q = q - basis[:j].T @ (basis[:j] @ q)
        norm = torch.linalg.vector_norm(q)
        if j > 0:
            beta[j - 1] = norm
        if not norm > 1e-10 * max(1.0, float(alpha[:j].abs().max()) if j else 1.0):
            if j > 0:
                beta[j - 1] = 0.0  # invariant subspace found: restart orthogonally
            q = torch.randn(size, generator=gen, dtype=dtype).to(device)
            q = q - basis[:j].T @ (basis[:j] @ q)
            q = q - basis[:j].T @ (basis[:j] @ q)
            norm = torch.linalg.vector_norm(q)
        basis[j] = q / norm
        w = op(basis[j])
        alpha[j] = basis[j] @ w
        q = w
    tri = torch.diag(alpha) + torch.diag(beta[:-1], 1) + torch.diag(beta[:-1], -1)
    values, vectors = torch.linalg.eigh(tri)
    top = torch.arange(steps - 1, steps - 1 - k, -1)
    ritz = vectors[:, top].T @ basis  # [k, P]
    return values[top], ritz / torch.linalg.vector_norm(ritz, dim=1, keepdim=True)


def mean_loss_eigenvectors(problem: Problem, theta: Tensor, tasks: TaskSet, k: int = 2,
                           iters: int = 60, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Top-k eigenvalues [k] and eigenvectors [k, P] (float64) of the Hessian of the
    task-mean loss (1/T)·Σ_t f_t on the tasks' support sets at θ [P] (flat)."""
    op = mean_hvp(problem, theta, tasks)
    with torch.no_grad():
        return top_eigenvectors(lambda v: op(v.to(theta.dtype)).to(torch.float64), theta.shape[-1],
                                k=k, iters=iters, seed=seed, device=theta.device)


# ---------------------------------------------------------------------------- spectra

@dataclass(frozen=True)
class SpectrumSpec:
    """exact_max: P at or below which (0: never) the Hessian is formed and diagonalised (P² memory a
    point); beyond, SLQ with ``probes`` Rademacher start vectors of ``lanczos`` steps each
    (probes·lanczos HVPs a point); seed: the probes."""

    exact_max: int = 256
    lanczos: int = 20
    probes: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        for name, least in (("exact_max", 0), ("lanczos", 1), ("probes", 2)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < least:
                raise ValueError(f"spectrum {name} must be an integer >= {least}, got {value!r}")

    def exact(self, size: int) -> bool:
        return size <= self.exact_max


@dataclass(frozen=True)
class Spectra:
    """The Hessian's spectrum at N points (float64 tensors).

    lambda_min [N] (algebraically smallest eigenvalue) and lambda_min_err [N]: 0 when
    exact; for SLQ the Ritz residual ‖Hy − θy‖ of the smallest Ritz pair, so an
    eigenvalue lies within it of the estimate (and λ_min itself is never above it).
    trace [N] and trace_err [N]: exact (err 0), or Hutchinson's mean of zᵀHz over the
    probes and its standard error.
    nodes [N, M], weights [N, M] (each row sums to 1): the spectral measure, every
    eigenvalue with weight 1/P (exact, M = P) or the SLQ Ritz values with their
    quadrature weights averaged over probes (M = probes·lanczos); smoothed for drawing
    on the data side. exact: which method ran.
    """

    lambda_min: Tensor
    lambda_min_err: Tensor
    trace: Tensor
    trace_err: Tensor
    nodes: Tensor
    weights: Tensor
    exact: bool


def exact_spectra(problem: Problem, theta: Tensor, batch: Batch) -> Spectra:
    """Every eigenvalue at N points, vmapped: theta [N, P] flat, batch {key: [N, ...]}."""
    spec = problem.model.spec

    def eig(t: Tensor, b: Batch) -> Tensor:
        h = hessian(lambda x: problem.loss(unflatten(x, spec), b))(t)
        return torch.linalg.eigvalsh(((h + h.T) / 2).to(torch.float64))
    values = vmap(eig)(theta, batch)  # [N, P] ascending
    n, p = values.shape
    zero = values.new_zeros(n)
    return Spectra(values[:, 0], zero, values.sum(-1), zero, values,
                   values.new_full((n, p), 1.0 / p), True)


def rademacher(size: int, probes: int, seed: int) -> Tensor:
    """[probes, size] float64 entries ±1, from ``seed`` alone."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randint(0, 2, (probes, size), generator=gen).to(torch.float64) * 2 - 1


def lanczos_tridiagonal(op: Callable[[Tensor], Tensor], start: Tensor,
                        steps: int) -> tuple[Tensor, Tensor]:
    """Lanczos with full re-orthogonalisation, written for ``vmap`` (fixed steps, no
    data-dependent branch): start [V, P] (V probes at once, ``op`` maps [V, P] -> [V, P]).

    Returns alpha [V, m] and beta [V, m] (beta[:, j] couples steps j and j+1; the last
    one is the residual norm after m steps). Where the Krylov space closes early the
    next vector is set to 0, so the rest of the tridiagonal is a zero block that
    carries no quadrature weight.
    """
    q = start / torch.linalg.vector_norm(start, dim=-1, keepdim=True)
    basis, alphas, betas = [], [], []
    for _ in range(steps):
        basis.append(q)
        w = op(q)
        alphas.append((q * w).sum(-1))
        size = torch.linalg.vector_norm(w, dim=-1)
        qs = torch.stack(basis, 1)  # [V, j+1, P]
        for _ in range(2):  # twice is enough (Kahan)
            w = w - torch.einsum("vjp,vj->vp", qs, torch.einsum("vjp,vp->vj", qs, w))
        b = torch.linalg.vector_norm(w, dim=-1)
        ok = b > 1e3 * torch.finfo(w.dtype).eps * size
        q = torch.where(ok[:, None], w / torch.where(ok, b, 1.0)[:, None], 0.0)
        betas.append(torch.where(ok, b, 0.0))
    return torch.stack(alphas, -1), torch.stack(betas, -1)


def slq_spectra(problem: Problem, theta: Tensor, batch: Batch, sspec: SpectrumSpec) -> Spectra:
    """λ_min, trace and density at N points by SLQ, vmapped over points and probes:
    theta [N, P] flat, batch {key: [N, ...]}; every point uses the same seeded probes."""
    spec = problem.model.spec
    hvp = hvp_fn(problem)
    probes = rademacher(spec.size, sspec.probes, sspec.seed).to(theta)

    def tri(t: Tensor, b: Batch) -> tuple[Tensor, Tensor]:
        params = unflatten(t, spec)
        one = lambda v: flatten(hvp(params, b, unflatten(v, spec)), spec)  # noqa: E731
        return lanczos_tridiagonal(vmap(one), probes, sspec.lanczos)
    alpha, beta = vmap(tri)(theta, batch)  # [N, V, m]
    return slq_from_tridiagonal(alpha.to(torch.float64), beta.to(torch.float64), spec.size)


def slq_from_tridiagonal(alpha: Tensor, beta: Tensor, size: int) -> Spectra:
    """``Spectra`` from Lanczos coefficients alpha, beta [N, V, m] of V unit-norm Rademacher
    starts in dimension ``size`` (q₁ = z/√P, so zᵀHz = P·alpha[..., 0])."""
    n, v, m = alpha.shape
    t = torch.diag_embed(alpha) + torch.diag_embed(beta[..., :-1], 1) + torch.diag_embed(beta[..., :-1], -1)
    ritz, vecs = torch.linalg.eigh(t)  # [N, V, m], [N, V, m, m]
    weight = vecs[..., 0, :] ** 2
    residual = (beta[..., -1:] * vecs[..., -1, :]).abs()
    live = weight > 1e-20  # a Ritz value of a closed-off zero block carries no weight
    masked = torch.where(live, ritz, torch.inf).reshape(n, v * m)
    pick = masked.argmin(-1, keepdim=True)
    lam = masked.gather(-1, pick)[:, 0]
    err = residual.reshape(n, v * m).gather(-1, pick)[:, 0]
    samples = size * alpha[..., 0]  # [N, V] Hutchinson's zᵀHz
    trace = samples.mean(-1)
    trace_err = samples.std(-1, correction=1) / v ** 0.5
    return Spectra(lam, err, trace, trace_err, ritz.reshape(n, v * m),
                   (weight / v).reshape(n, v * m), False)


def spectra(problem: Problem, theta: Tensor, batch: Batch, sspec: SpectrumSpec = SpectrumSpec()) -> Spectra:
    """``Spectra`` at N points (theta [N, P], batch {key: [N, ...]}): exact when
    P <= sspec.exact_max, else SLQ. Deterministic for a given ``sspec.seed``."""
    with torch.no_grad():
        if sspec.exact(theta.shape[-1]):
            return exact_spectra(problem, theta, batch)
        return slq_spectra(problem, theta, batch, sspec)
