import math

import numpy as np
import pytest
import torch
from scipy import stats

from trajviz.data.stats import summarise
from trajviz.engine.metrics import PATH_METRICS, RUNNING_METRICS, path_metrics, running_metrics

# A hand-computed 3-step path in the plane:
#   θ: (0,0) -> (3,0) -> (3,4) -> (0,4);  f: 10 -> 6 -> 7 -> 3
#   ‖Δθ‖ = 3, 4, 3   Δf = -4, +1, -4
#   length = √(9+16) + √(16+1) + √(9+16) = 10 + √17
#   param_length = 10; energy = 25 + 17 + 25 = 67; displacement = ‖(0,4)‖ = 4
#   both turns are right angles: cosines 0, 0 -> oscillation 0, mean_cosine 0
#   monotonicity 2/3, total_rise 1
#   auc = ((10+6)/2 + (6+7)/2 + (7+3)/2) / 3 = 19.5 / 3 = 6.5
PARAMS = torch.tensor([[0.0, 0.0], [3.0, 0.0], [3.0, 4.0], [0.0, 4.0]], dtype=torch.float64)
LOSSES = torch.tensor([10.0, 6.0, 7.0, 3.0], dtype=torch.float64)


def test_hand_computed_path():
    m = path_metrics(PARAMS, LOSSES)
    assert set(m) == set(PATH_METRICS)
    assert m["length"].item() == pytest.approx(10 + math.sqrt(17), abs=1e-12)
    assert m["param_length"].item() == pytest.approx(10.0, abs=1e-12)
    assert m["energy"].item() == pytest.approx(67.0, abs=1e-12)
    assert m["displacement"].item() == pytest.approx(4.0, abs=1e-12)
    assert m["straightness"].item() == pytest.approx(0.4, abs=1e-12)
    assert m["oscillation"].item() == 0.0
    assert m["mean_cosine"].item() == pytest.approx(0.0, abs=1e-12)
    assert m["monotonicity"].item() == pytest.approx(2 / 3, abs=1e-12)
    assert m["total_rise"].item() == pytest.approx(1.0, abs=1e-12)
    assert m["auc"].item() == pytest.approx(6.5, abs=1e-12)
    assert m["final_loss"].item() == 3.0
    for value in m.values():
        assert value.shape == () and value.dtype == torch.float64


def test_steps_to_eps():
    # |f_i - f_K| = 7, 3, 4, 0 against eps·|f_0 - f_K| = eps·7
    assert path_metrics(PARAMS, LOSSES, eps=0.05)["steps_to_eps"].item() == 3
    assert path_metrics(PARAMS, LOSSES, eps=0.5)["steps_to_eps"].item() == 1  # 3 <= 3.5
    assert path_metrics(PARAMS, LOSSES, eps=1.0)["steps_to_eps"].item() == 0
    # a geometric decay 8, 4, 2, 1, 0.5: within 10% of the drop (0.75) first at step 3
    losses = torch.tensor([8.0, 4.0, 2.0, 1.0, 0.5])
    params = torch.zeros(5, 3)
    m = path_metrics(params, losses, eps=0.1)
    assert m["steps_to_eps"].item() == 3
    assert m["auc"].item() == pytest.approx((6 + 3 + 1.5 + 0.75) / 4)
    # no change at all: step 0
    assert path_metrics(params, torch.full((5,), 2.0))["steps_to_eps"].item() == 0


def test_straight_line():
    t = torch.linspace(0, 1, 6)[:, None]
    direction = torch.tensor([[1.0, -2.0, 0.5]])
    params = t ** 2 * direction  # uneven steps along one ray
    m = path_metrics(params, torch.linspace(5, 0, 6))
    assert m["straightness"].item() == pytest.approx(1.0, abs=1e-6)
    assert m["oscillation"].item() == 0.0
    assert m["mean_cosine"].item() == pytest.approx(1.0, abs=1e-6)
    assert m["monotonicity"].item() == 1.0 and m["total_rise"].item() == 0.0
    assert m["displacement"].item() == pytest.approx(m["param_length"].item(), rel=1e-6)
    assert m["param_length"].dtype == torch.float32


def test_exact_zigzag():
    params = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    m = path_metrics(params, torch.tensor([4.0, 3.0, 2.0, 1.0, 0.0]))
    assert m["oscillation"].item() == 1.0
    assert m["mean_cosine"].item() == pytest.approx(-1.0, abs=1e-6)
    assert m["displacement"].item() == 0.0 and m["straightness"].item() == 0.0


def test_zero_length_updates_are_skipped():
    # update 1 is zero: pairs (0,1) and (1,2) are skipped, (2,3) is a reversal
    params = torch.tensor([[0.0], [1.0], [1.0], [2.0], [0.0]], dtype=torch.float64)
    m = path_metrics(params, torch.zeros(5, dtype=torch.float64))
    assert m["oscillation"].item() == 1.0 and m["mean_cosine"].item() == -1.0
    still = path_metrics(torch.zeros(4, 2), torch.zeros(4))
    assert math.isnan(still["straightness"].item())
    assert math.isnan(still["oscillation"].item()) and math.isnan(still["mean_cosine"].item())
    assert still["length"].item() == 0.0 and still["monotonicity"].item() == 0.0


def test_single_point_path():
    m = path_metrics(torch.ones(1, 3), torch.tensor([2.0]))
    assert m["length"].item() == 0.0 and m["auc"].item() == 2.0 and m["final_loss"].item() == 2.0
    assert m["steps_to_eps"].item() == 0
    for name in ("straightness", "oscillation", "mean_cosine", "monotonicity"):
        assert math.isnan(m[name].item())


def test_running_metrics_end_at_path_metrics():
    gen = torch.Generator().manual_seed(0)
    params = torch.randn(3, 2, 7, 5, generator=gen, dtype=torch.float64)
    losses = torch.randn(3, 2, 7, generator=gen, dtype=torch.float64)
    m = path_metrics(params, losses)
    r = running_metrics(params, losses)
    assert set(r) == set(RUNNING_METRICS)
    for value in r.values():
        assert value.shape == (3, 2, 7)
    torch.testing.assert_close(r["cumulative_length"][..., -1], m["length"])
    torch.testing.assert_close(r["cumulative_param_length"][..., -1], m["param_length"])
    torch.testing.assert_close(r["monotone_fraction"][..., -1], m["monotonicity"])
    torch.testing.assert_close(r["cosine"][..., 2:].mean(-1), m["mean_cosine"])
    assert (r["cumulative_length"][..., 0] == 0).all()
    assert r["cosine"][..., :2].isnan().all() and r["monotone_fraction"][..., 0].isnan().all()


def test_running_metrics_hand_computed():
    r = running_metrics(PARAMS, LOSSES)
    expected = torch.tensor([0.0, 5.0, 5.0 + math.sqrt(17), 10.0 + math.sqrt(17)], dtype=torch.float64)
    torch.testing.assert_close(r["cumulative_length"], expected)
    torch.testing.assert_close(r["cumulative_param_length"],
                               torch.tensor([0.0, 3.0, 7.0, 10.0], dtype=torch.float64))
    torch.testing.assert_close(r["monotone_fraction"][1:],
                               torch.tensor([1.0, 0.5, 2 / 3], dtype=torch.float64))
    torch.testing.assert_close(r["cosine"][2:], torch.zeros(2, dtype=torch.float64))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_diverged_path_gives_nan_without_raising(bad):
    params = torch.randn(3, 6, 4)
    losses = torch.rand(3, 6)
    params[1, 4, 2] = bad
    losses[2, 3] = bad
    m = path_metrics(params, losses)
    for name, value in m.items():
        assert value.shape == (3,)
        assert value[1:].isnan().all(), name
    assert not m["length"][0].isnan()
    r = running_metrics(params, losses)
    for name, value in r.items():
        assert value[1, 4:].isnan().all() and value[2, 3:].isnan().all(), name
        assert not value[1, 3].isnan(), name
    assert not r["cumulative_length"][1, :4].isnan().any()
    assert not r["cumulative_length"][2, :3].isnan().any()
    assert r["cumulative_length"][0].isfinite().all()


def test_batch_dims_match_one_by_one():
    gen = torch.Generator().manual_seed(1)
    params = torch.randn(2, 3, 5, 4, generator=gen)
    losses = torch.randn(2, 3, 5, generator=gen)
    m = path_metrics(params, losses)
    for i in range(2):
        for j in range(3):
            single = path_metrics(params[i, j], losses[i, j])
            for name in PATH_METRICS:
                torch.testing.assert_close(m[name][i, j], single[name], equal_nan=True)
    assert path_metrics(torch.zeros(0, 5, 4), torch.zeros(0, 5))["length"].shape == (0,)


def test_shape_mismatch_is_a_value_error():
    with pytest.raises(ValueError, match="losses must be"):
        path_metrics(torch.zeros(5, 3), torch.zeros(4))


def test_summarise_matches_scipy():
    values = np.array([1.0, 2.0, 4.0, 7.0, 11.0])
    mean, lo, hi = summarise(values, confidence=0.9)
    ref_lo, ref_hi = stats.t.interval(0.9, df=4, loc=values.mean(), scale=stats.sem(values))
    assert mean == pytest.approx(5.0)
    assert lo == pytest.approx(ref_lo, abs=1e-12) and hi == pytest.approx(ref_hi, abs=1e-12)
    # NaN is ignored
    with_nan = summarise(np.array([1.0, np.nan, 2.0, 4.0, 7.0, 11.0, np.nan]), confidence=0.9)
    assert with_nan == pytest.approx((mean, lo, hi))


def test_the_t_quantile_is_scipy_stats_bit_for_bit():
    from trajviz.data.stats import t_quantile

    for q in (0.5, 0.9, 0.95, 0.975, 0.995, 0.025):
        for df in (1, 2, 3, 4, 9, 29, 100, 1000):
            assert t_quantile(q, df) == float(stats.t.ppf(q, df=df)), (q, df)


def test_summarise_edge_cases():
    assert summarise(np.array([3.0, np.nan])) == (3.0, 3.0, 3.0)
    assert all(math.isnan(v) for v in summarise(np.array([np.nan, np.nan])))
    assert all(math.isnan(v) for v in summarise(np.array([])))
    assert summarise(torch.tensor([2.0, 2.0, 2.0])) == (2.0, 2.0, 2.0)
    with pytest.raises(ValueError, match="confidence"):
        summarise(np.array([1.0, 2.0]), confidence=1.5)
