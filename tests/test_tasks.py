"""Task families: reproducible from the seed, the right shapes and ranges, honest splits."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trajviz.problem.tasks import (
    ARC4,
    SPLITS,
    Digits,
    Linear2D,
    Quadratic,
    Sinusoid,
    TaskSet,
    family_options,
    make_family,
)
from trajviz.problem.tasks.digits import _digits

FAMILIES = {
    "sinusoid": Sinusoid(shots=7, query_shots=5),
    "linear2d": Linear2D(shots=6, query_shots=4),
    "quadratic": Quadratic(dim=3, condition=20.0),
    "digits": Digits(ways=3, shots=2, query_shots=3),
    "digits-conv": Digits(ways=2, shots=1, query_shots=2, net="conv"),
}


def _all_tensors(ts: TaskSet) -> dict[str, torch.Tensor]:
    out = {"ids": ts.ids}
    for part in ("support", "query", "info"):
        out.update({f"{part}.{k}": v for k, v in getattr(ts, part).items()})
    return out


def _same(a: TaskSet, b: TaskSet) -> bool:
    ta, tb = _all_tensors(a), _all_tensors(b)
    return ta.keys() == tb.keys() and all(
        ta[k].dtype == tb[k].dtype and ta[k].shape == tb[k].shape and torch.equal(ta[k], tb[k])
        for k in ta)


@pytest.mark.parametrize("key", FAMILIES)
def test_reproducible_from_seed(key):
    family = FAMILIES[key]
    for split in SPLITS:
        assert _same(family.sample(5, 4, split), family.sample(5, 4, split))


@pytest.mark.parametrize("key", FAMILIES)
def test_seeds_and_splits_differ(key):
    family = FAMILIES[key]
    base = family.sample(5, 4, "train")
    for other in (family.sample(6, 4, "train"), family.sample(5, 4, "heldout")):
        assert not torch.equal(base.support["x" if "x" in base.support else "c"],
                               other.support["x" if "x" in other.support else "c"])


@pytest.mark.parametrize("key", FAMILIES)
def test_problem_loss_is_vmappable_over_tasks(key):
    """The family's loss applies per task and the model's shapes match its spec."""
    family = FAMILIES[key]
    problem = family.problem()
    params = problem.model.init(0)
    assert {k: tuple(v.shape) for k, v in params.items()} == dict(
        zip(problem.model.spec.names, problem.model.spec.shapes))
    tasks = family.sample(0, 3)
    losses = torch.vmap(problem.loss, in_dims=(None, 0))(params, tasks.support)
    assert losses.shape == (3,)
    direct = torch.stack([problem.loss(params, {k: v[t] for k, v in tasks.support.items()})
                          for t in range(3)])
    torch.testing.assert_close(losses, direct)


def test_sinusoid_shapes_ranges_and_targets():
    family = Sinusoid(shots=40, query_shots=30)
    ts = family.sample(11, 200)
    assert ts.support["x"].shape == (200, 40, 1) and ts.support["y"].shape == (200, 40, 1)
    assert ts.query["x"].shape == (200, 30, 1)
    assert ts.support["x"].dtype == torch.float32 and ts.ids.dtype == torch.int64
    torch.testing.assert_close(ts.ids, torch.arange(200))
    amp, phase = ts.info["amplitude"], ts.info["phase"]
    assert amp.shape == phase.shape == (200,)
    assert float(amp.min()) >= 0.1 and float(amp.max()) <= 5.0
    assert float(phase.min()) >= 0.0 and float(phase.max()) <= math.pi
    for part in (ts.support, ts.query):
        assert float(part["x"].min()) >= -5.0 and float(part["x"].max()) <= 5.0
        expected = amp[:, None, None] * torch.sin(part["x"] - phase[:, None, None])
        torch.testing.assert_close(part["y"], expected, rtol=1e-5, atol=1e-5)
    # with 200 tasks the draws fill their ranges
    assert float(amp.max() - amp.min()) > 4.0 and float(phase.max() - phase.min()) > 2.5
    assert family.problem().model.spec.shapes == ((40, 1), (40,), (40, 40), (40,), (1, 40), (1,))


def test_linear2d_targets_are_linear_in_x():
    family = Linear2D(shots=8, query_shots=5)
    ts = family.sample(2, 50)
    w = ts.info["w"]
    assert w.shape == (50, 2)
    for part in (ts.support, ts.query):
        torch.testing.assert_close(part["y"][..., 0], torch.einsum("tnd,td->tn", part["x"], w),
                                   rtol=1e-5, atol=1e-5)
    radius, angle = w.norm(dim=1), torch.rad2deg(torch.atan2(w[:, 1], w[:, 0]))
    assert float(radius.min()) >= 1.0 - 1e-6 and float(radius.max()) <= 1.25 + 1e-6
    assert float(angle.min()) >= 10.0 - 1e-4 and float(angle.max()) <= 72.0 + 1e-4
    assert family.problem().model.spec.size == 2


def test_linear2d_fixed_is_the_arc():
    ts = Linear2D(fixed=True).sample(0, 6)
    expected = torch.tensor([ARC4[i % 4] for i in range(6)], dtype=torch.float32)
    torch.testing.assert_close(ts.info["w"], expected, rtol=0, atol=0)


def test_quadratic_bowls():
    family = Quadratic(dim=4, condition=50.0, spread=2.0)
    ts = family.sample(9, 6).to("cpu", torch.float64)
    problem = family.problem()
    a, c = ts.support["A"], ts.support["c"]
    assert a.shape == (6, 4, 4) and c.shape == (6, 4)
    assert not ts.minibatchable
    torch.testing.assert_close(a, a.transpose(1, 2), rtol=0, atol=0)
    expected_eigs = torch.tensor(np.geomspace(1.0, 50.0, 4))
    for t in range(6):
        torch.testing.assert_close(torch.linalg.eigvalsh(a[t]), expected_eigs, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ts.info["minimiser"], c)
    # the minimiser is c: zero loss and zero gradient there, positive loss elsewhere
    for t in range(6):
        batch = {k: v[t] for k, v in ts.support.items()}
        at_c = {"theta": c[t].clone().requires_grad_(True)}
        loss = problem.loss(at_c, batch)
        (g,) = torch.autograd.grad(loss, [at_c["theta"]])
        assert float(loss.detach()) == 0.0 and float(g.abs().max()) == 0.0
        off = {"theta": c[t] + torch.tensor([0.1, 0.0, 0.0, 0.0], dtype=torch.float64)}
        expected = 0.5 * 0.01 * float(a[t, 0, 0])
        assert float(problem.loss(off, batch)) == pytest.approx(expected, rel=1e-12)
    # query and support are the same bowl
    assert torch.equal(ts.query["A"], ts.support["A"]) and torch.equal(ts.query["c"], ts.support["c"])


def test_quadratic_condition_below_one_is_refused():
    with pytest.raises(ValueError, match="condition must be >= 1"):
        Quadratic(condition=0.5).sample(0, 2)


def test_quadratic_init_scale():
    params = Quadratic(dim=2000, init_scale=3.0).problem().model.init(0, dtype=torch.float64)
    assert params["theta"].shape == (2000,)
    assert float(params["theta"].std()) == pytest.approx(3.0, rel=0.1)


def test_digits_labels_shapes_and_classes():
    family = Digits(ways=4, shots=3, query_shots=5)
    ts = family.sample(1, 10)
    assert ts.support["x"].shape == (10, 12, 64) and ts.query["x"].shape == (10, 20, 64)
    assert ts.support["y"].dtype == torch.int64
    for part, per in ((ts.support, 3), (ts.query, 5)):
        assert int(part["y"].min()) == 0 and int(part["y"].max()) == 3
        for t in range(10):
            assert torch.equal(torch.bincount(part["y"][t], minlength=4), torch.full((4,), per))
    classes = ts.info["classes"]
    assert classes.shape == (10, 4)
    for t in range(10):
        assert len(set(classes[t].tolist())) == 4
    # label j of task t is the original digit classes[t, j]: check against the dataset itself
    images, labels = _digits()
    by_image = {images[i].tobytes(): int(labels[i]) for i in range(len(labels))}
    for t in range(10):
        for x, y in zip(ts.support["x"][t], ts.support["y"][t]):
            assert by_image[x.numpy().reshape(8, 8).tobytes()] == int(classes[t, y])
    assert float(ts.support["x"].min()) >= 0.0 and float(ts.support["x"].max()) <= 1.0
    conv = Digits(ways=2, shots=1, query_shots=1, net="conv").sample(0, 3)
    assert conv.support["x"].shape == (3, 2, 1, 8, 8)


def test_digits_heldout_images_never_seen_in_training():
    family = Digits(ways=10, shots=5, query_shots=10)

    def images(split):
        ts = family.sample(3, 30, split)
        xs = torch.cat([ts.support["x"].reshape(-1, 64), ts.query["x"].reshape(-1, 64)])
        return {row.numpy().tobytes() for row in xs}

    train, heldout = images("train"), images("heldout")
    assert len(train) > 500 and len(heldout) > 300
    assert train.isdisjoint(heldout)
    # and the split is a partition of the dataset (no image leaks through a duplicate)
    all_images = {img.reshape(64).tobytes() for img in _digits()[0]}
    assert train <= all_images and heldout <= all_images


def test_digits_support_and_query_disjoint():
    ts = Digits(ways=5, shots=5, query_shots=10).sample(4, 6)
    for t in range(6):
        s = {row.numpy().tobytes() for row in ts.support["x"][t]}
        q = {row.numpy().tobytes() for row in ts.query["x"][t]}
        assert len(s) == 25 and len(q) == 50 and s.isdisjoint(q)


def test_digits_too_many_ways():
    with pytest.raises(ValueError, match="ways must be <= 10"):
        Digits(ways=11).sample(0, 1)


def test_digits_too_many_shots_for_the_split():
    """The smallest class has 174 images: 116 for training, 58 held out."""
    assert Digits(ways=2, shots=8, query_shots=50).sample(0, 1, "heldout").query["x"].shape[1] == 100
    with pytest.raises(ValueError, match=r"digits has 58 heldout images per class; "
                                         r"shots \+ query_shots must be <= 58, got 59"):
        Digits(ways=2, shots=9, query_shots=50).sample(0, 1, "heldout")
    with pytest.raises(ValueError, match=r"digits has 116 train images per class"):
        Digits(ways=2, shots=17, query_shots=100).sample(0, 1, "train")


def test_taskset_select_and_to():
    ts = Digits(ways=2, shots=1, query_shots=1).sample(0, 4)
    sub = ts.select([2, 0, 2])
    assert sub.ids.tolist() == [2, 0, 2]
    assert torch.equal(sub.support["x"][0], ts.support["x"][2])
    moved = ts.to("cpu", torch.float64)
    assert moved.support["x"].dtype == torch.float64
    assert moved.support["y"].dtype == torch.int64  # integer labels keep their dtype
    assert len(moved) == 4


def test_make_family_by_name_with_options():
    family = make_family("sinusoid", {"shots": 12, "hidden": [8, 8]})
    assert family == Sinusoid(shots=12, hidden=(8, 8))
    assert family_options(family)["hidden"] == (8, 8)
    assert make_family("quadratic", {"condition": 5}).condition == 5.0


@pytest.mark.parametrize("name, options, match", [
    ("imagenet", None, (r"unknown family 'imagenet'; accepted: \['digits', 'linear2d', "
                        r"'quadratic', 'sinusoid'\] or a declared plugin")),
])
def test_make_family_refuses_bad_input(name, options, match):
    with pytest.raises(ValueError, match=match):
        make_family(name, options)


@pytest.mark.parametrize("family, n", [(Sinusoid(), 0), (Sinusoid(shots=0), 3), (Linear2D(), -1)])
def test_non_positive_counts_are_refused(family, n):
    with pytest.raises(ValueError, match="must be a positive integer"):
        family.sample(0, n)


def test_unknown_split_is_refused():
    with pytest.raises(ValueError, match=r"unknown split 'test'; accepted: \['train', 'heldout'\]"):
        Sinusoid().sample(0, 2, "test")
