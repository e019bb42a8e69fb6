"""Log-SNR and Karras step placement: the right end points, the right spacing, clear errors."""

import math

import pytest
import torch

import diffkit
from diffkit import ConfigError, schedules

ALL = [schedules.linear(), schedules.cosine(), schedules.vp(), schedules.subvp(), schedules.ve()]


@pytest.mark.parametrize("schedule", ALL, ids=lambda s: s.name)
@pytest.mark.parametrize("spacing", ["logsnr", "karras"])
def test_snr_spacings_run_between_the_schedules_end_points(schedule, spacing):
    t = diffkit.timesteps(schedule, 12, spacing)
    assert t.dtype == torch.float64 and len(t) == 12
    assert t[0] == schedule.t_max and t[-1] == schedule.t_min  # discrete: T - 1 down to 0
    assert (t[1:] < t[:-1]).all()


@pytest.mark.parametrize("schedule", ALL, ids=lambda s: s.name)
def test_logsnr_spacing_is_uniform_in_log_snr(schedule):
    lam = schedule.log_snr(diffkit.timesteps(schedule, 9, "logsnr"))
    torch.testing.assert_close(lam.diff(), lam.diff().mean().expand(8), atol=1e-6, rtol=0)


@pytest.mark.parametrize("schedule", ALL, ids=lambda s: s.name)
def test_karras_spacing_is_uniform_in_ve_sigma_to_the_one_over_rho(schedule):
    alpha, sigma = schedule.alpha_sigma(diffkit.timesteps(schedule, 9, "karras"))
    ramp = (sigma / alpha) ** (1 / 7)  # Karras et al. 2022, eq. (5)
    torch.testing.assert_close(ramp.diff(), ramp.diff().mean().expand(8), atol=1e-7, rtol=0)


def test_zero_terminal_snr_starts_at_the_last_finite_log_snr():
    s = schedules.linear(rescale=True)
    assert s.log_snr(torch.tensor(999.0)) == -math.inf
    for spacing in ("logsnr", "karras"):
        t = diffkit.timesteps(s, 10, spacing)
        assert t[0] == 998.0 and t[-1] == 0.0
        assert torch.isfinite(s.log_snr(t)).all()


def test_an_infinite_log_snr_at_t_min_is_a_clear_error():
    with pytest.raises(ConfigError, match="no finite log-SNR"):
        diffkit.timesteps(schedules.subvp(t_min=0.0), 10, "logsnr")


def test_spacing_is_an_argument_of_sample():
    s = schedules.vp()
    x = torch.zeros(4, 2)
    seen = []
    diffkit.sample(
        lambda x, t: x, x, s, sampler="euler", steps=5, spacing="karras",
        callback=lambda state: seen.append(float(state["t"])),
    )  # fmt: skip
    torch.testing.assert_close(
        torch.tensor(seen, dtype=torch.float64), diffkit.timesteps(s, 5, "karras")
    )
