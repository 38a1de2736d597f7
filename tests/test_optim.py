"""Inner optimisers: pure (init, update) pairs checked step by step against torch.optim."""
from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, grad

from trajviz.problem import models
from trajviz.problem.optim import adam, make_optimizer, momentum, sgd

STEPS = 50

# (our optimiser, the torch.optim class and settings it must reproduce)
SETTINGS = [
    ("sgd", {"lr": 0.1}, torch.optim.SGD, {"lr": 0.1}),
    ("sgd", {"lr": 0.013}, torch.optim.SGD, {"lr": 0.013}),
    ("momentum", {"lr": 0.05, "beta": 0.9}, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    ("momentum", {"lr": 0.02, "beta": 0.5}, torch.optim.SGD, {"lr": 0.02, "momentum": 0.5}),
    ("momentum", {"lr": 0.05, "beta": 0.9, "nesterov": True}, torch.optim.SGD,
     {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("momentum", {"lr": 0.01, "beta": 0.0}, torch.optim.SGD, {"lr": 0.01, "momentum": 0.0}),
    ("adam", {"lr": 0.01}, torch.optim.Adam, {"lr": 0.01}),
    ("adam", {"lr": 0.1, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6}, torch.optim.Adam,
     {"lr": 0.1, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("adam", {"lr": 0.003, "beta1": 0.0, "beta2": 0.9}, torch.optim.Adam,
     {"lr": 0.003, "betas": (0.0, 0.9)}),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in ours.items())}" for name, ours, _, _ in SETTINGS]


def _mlp_problem():
    """A 2-3-1 tanh MLP on 12 fixed points, float64."""
    model = models.mlp((2, 3, 1), activation="tanh")
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(12, 2, generator=gen, dtype=torch.float64)
    y = torch.sin(x.sum(1, keepdim=True))

    def loss(params):
        return ((functional_call(model.module, params, (x,)) - y) ** 2).mean()

    return model, loss


def _bowl_problem():
    """A rotated, ill-conditioned 3-d quadratic bowl (the parameters are the point)."""
    model = models.point(3)
    a = torch.tensor([[3.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.3]], dtype=torch.float64)
    c = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)

    def loss(params):
        d = params["theta"] - c
        return 0.5 * d @ a @ d

    return model, loss


@pytest.mark.parametrize("problem", [_mlp_problem, _bowl_problem], ids=["mlp", "bowl"])
@pytest.mark.parametrize("name, ours, torch_cls, theirs", SETTINGS, ids=IDS)
def test_matches_torch_optim_over_50_steps(problem, name, ours, torch_cls, theirs):
    model, loss = problem()
    params = model.init(seed=1, dtype=torch.float64)
    opt = make_optimizer(name, **ours)
    state = opt.init(params)

    module = model.module.to(torch.float64)
    with torch.no_grad():
        for n, p in module.named_parameters():
            p.copy_(params[n])
    reference = torch_cls(module.parameters(), **theirs)

    for _ in range(STEPS):
        g = grad(loss)(params)
        updates, state = opt.update(g, state, params)
        params = {k: params[k] + updates[k] for k in params}

        reference.zero_grad()
        loss(dict(module.named_parameters())).backward()
        reference.step()
        for n, p in module.named_parameters():
            torch.testing.assert_close(params[n], p.detach(), rtol=0, atol=1e-6)
    # and the run went somewhere: the loss fell (no optimiser here is too aggressive)
    assert float(loss(params)) < float(loss(model.init(seed=1, dtype=torch.float64)))


@pytest.mark.parametrize("name, ours, torch_cls, theirs", SETTINGS, ids=IDS)
def test_batched_update_equals_separate_updates(name, ours, torch_cls, theirs):
    """Leading batch dims (runs) are independent: a stacked update = per-run updates."""
    gen = torch.Generator().manual_seed(0)
    opt = make_optimizer(name, **ours)
    params = {"w": torch.randn(4, 3, 2, generator=gen, dtype=torch.float64),
              "b": torch.randn(4, 2, generator=gen, dtype=torch.float64)}
    state = opt.init(params)
    singles = [({k: v[r] for k, v in params.items()}, None) for r in range(4)]
    singles = [(p, opt.init(p)) for p, _ in singles]
    for _ in range(5):
        g = {k: torch.randn(v.shape, generator=gen, dtype=torch.float64) for k, v in params.items()}
        updates, state = opt.update(g, state, params)
        params = {k: params[k] + updates[k] for k in params}
        new_singles = []
        for r, (p, s) in enumerate(singles):
            u, s = opt.update({k: v[r] for k, v in g.items()}, s, p)
            new_singles.append(({k: p[k] + u[k] for k in p}, s))
        singles = new_singles
    for r, (p, _) in enumerate(singles):
        for k in p:
            torch.testing.assert_close(params[k][r], p[k], rtol=0, atol=1e-15)


def test_update_is_pure():
    """Nothing passed in is mutated: the same call twice gives the same answer."""
    opt = adam(0.1)
    params = {"w": torch.tensor([1.0, -2.0], dtype=torch.float64)}
    g = {"w": torch.tensor([0.5, 0.25], dtype=torch.float64)}
    state = opt.init(params)
    snapshot = {k: v.clone() for k, v in state["m"].items()}
    u1, s1 = opt.update(g, state, params)
    u2, _ = opt.update(g, state, params)
    torch.testing.assert_close(u1["w"], u2["w"], rtol=0, atol=0)
    torch.testing.assert_close(state["m"]["w"], snapshot["w"], rtol=0, atol=0)
    assert state["t"] == 0 and s1["t"] == 1


def test_hand_computed_first_steps():
    """SGD: −lr·g. Momentum: buffers g, βb+g. Adam's first step is −lr·sign(g) (bias-corrected)."""
    g = {"w": torch.tensor([2.0, -0.5], dtype=torch.float64)}
    p = {"w": torch.zeros(2, dtype=torch.float64)}
    u, _ = sgd(0.1).update(g, {}, p)
    torch.testing.assert_close(u["w"], torch.tensor([-0.2, 0.05], dtype=torch.float64))

    opt = momentum(0.1, beta=0.5)
    s = opt.init(p)
    u1, s = opt.update(g, s, p)
    u2, s = opt.update(g, s, p)
    torch.testing.assert_close(u1["w"], torch.tensor([-0.2, 0.05], dtype=torch.float64))
    torch.testing.assert_close(u2["w"], -0.1 * 1.5 * g["w"])  # buffer 0.5·g + g

    nest = momentum(0.1, beta=0.5, nesterov=True)
    u1, _ = nest.update(g, nest.init(p), p)
    torch.testing.assert_close(u1["w"], -0.1 * 1.5 * g["w"])  # g + β·buf with buf = g

    ad = adam(0.01, eps=1e-12)
    u1, s = ad.update(g, ad.init(p), p)
    torch.testing.assert_close(u1["w"], torch.tensor([-0.01, 0.01], dtype=torch.float64),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("lr", [0.0, -0.1, float("nan")])
@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_non_positive_lr_is_refused(name, lr):
    with pytest.raises(ValueError, match=r"lr must be > 0, got"):
        make_optimizer(name, lr)


def test_unknown_optimizer_lists_accepted():
    with pytest.raises(ValueError, match=r"unknown inner optimizer 'rmsprop'.*accepted.*adam.*momentum.*sgd"):
        make_optimizer("rmsprop", 0.1)


@pytest.mark.parametrize("make, match", [
    (lambda: momentum(0.1, beta=1.0), r"momentum beta must lie in \[0, 1\), got 1.0"),
    (lambda: momentum(0.1, beta=-0.1), r"momentum beta must lie in \[0, 1\)"),
    (lambda: adam(0.1, beta1=1.5), r"adam beta1 must lie in \[0, 1\), got 1.5"),
    (lambda: adam(0.1, beta2=1.0), r"adam beta2 must lie in \[0, 1\)"),
    (lambda: adam(0.1, eps=0.0), r"eps must be > 0, got 0.0"),
])
def test_bad_hyperparameters_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_hyper_echoes_settings():
    assert dict(momentum(0.05, beta=0.8, nesterov=True).hyper) == {
        "lr": 0.05, "beta": 0.8, "nesterov": 1.0}
    assert make_optimizer("adam", 0.2, beta1=0.7).hyper[:2] == (("lr", 0.2), ("beta1", 0.7))
