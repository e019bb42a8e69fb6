"""Masking schedules: end points, closed-form derivatives, the bound's weight, round trips."""

import math

import pytest
import torch

from diffkit import ConfigError
from diffkit.discrete import schedules

ALL = [schedules.linear(), schedules.loglinear(), schedules.loglinear(eps=0.1), schedules.cosine()]


@pytest.mark.parametrize("s", ALL, ids=lambda s: f"{s.name}{dict(s.params)}")
def test_end_points_keep_everything_at_0_and_mask_everything_at_1(s):
    eps = dict(s.params).get("eps", 0.0)
    assert s.alpha(torch.tensor(0.0)).item() == 1.0
    assert s.alpha(torch.tensor(1.0)).item() == pytest.approx(eps, abs=1e-15)
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    torch.testing.assert_close(s.alpha(t) + s.masked(t), torch.ones_like(t), atol=1e-15, rtol=0)
    assert (s.alpha(t).diff() < 0).all()  # strictly fewer tokens kept as t grows


@pytest.mark.parametrize("s", ALL, ids=lambda s: f"{s.name}{dict(s.params)}")
def test_dalpha_matches_central_finite_differences(s):
    t = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    h = 1e-6
    fd = (s.alpha(t + h) - s.alpha(t - h)) / (2 * h)
    torch.testing.assert_close(s.dalpha(t), fd, atol=1e-8, rtol=1e-7)


def test_weight_is_one_over_t_for_linear_schedules_and_finite_near_zero():
    t = torch.tensor([1e-12, 1e-3, 0.5, 1.0], dtype=torch.float64)
    for s in (schedules.linear(), schedules.loglinear()):
        torch.testing.assert_close(s.weight(t), 1 / t, rtol=1e-12, atol=0)
    # cosine: (pi/2) cos(pi t/2) / sin(pi t/2) -> 1/t as t -> 0; no cancellation in 1 - alpha
    w = schedules.cosine().weight(t)
    assert w[0].item() == pytest.approx(1e12, rel=1e-9)
    assert w[2].item() == pytest.approx(math.pi / 2 / math.tan(math.pi / 4))
    assert w[3].item() == pytest.approx(0.0, abs=1e-15)


def test_config_round_trip_and_bad_inputs():
    for s in ALL:
        assert schedules.from_config(s.config()) == s
    with pytest.raises(ConfigError, match="unknown masking schedule 'sqrt'"):
        schedules.get_schedule("sqrt")
    with pytest.raises(ConfigError, match="unknown parameter"):
        schedules.get_schedule("linear", eps=0.1)
    with pytest.raises(ConfigError, match="0 <= eps < 1"):
        schedules.loglinear(eps=1.0)
    with pytest.raises(ConfigError, match=r"t=1.5 is outside"):
        schedules.linear().alpha(torch.tensor([0.5, 1.5]))
    with pytest.raises(ConfigError, match="outside"):
        schedules.cosine().weight(torch.tensor(float("nan")))
