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
    # discrete: from T - 1; the clean end t_min is the grid's 13th point, the final step's
    assert t[0] == schedule.t_max and t[-1] > schedule.t_min
    assert (t[1:] < t[:-1]).all()


def with_clean_end(schedule, t):
    return torch.cat([t, torch.tensor([schedule.t_min], dtype=torch.float64)])


@pytest.mark.parametrize("schedule", ALL, ids=lambda s: s.name)
def test_logsnr_spacing_is_uniform_in_log_snr(schedule):
    lam = schedule.log_snr(with_clean_end(schedule, diffkit.timesteps(schedule, 9, "logsnr")))
    torch.testing.assert_close(lam.diff(), lam.diff().mean().expand(9), atol=1e-6, rtol=0)


@pytest.mark.parametrize("schedule", ALL, ids=lambda s: s.name)
def test_karras_spacing_is_uniform_in_ve_sigma_to_the_one_over_rho(schedule):
    t = with_clean_end(schedule, diffkit.timesteps(schedule, 9, "karras"))
    alpha, sigma = schedule.alpha_sigma(t)
    ramp = (sigma / alpha) ** (1 / 7)  # Karras et al. 2022, eq. (5)
    torch.testing.assert_close(ramp.diff(), ramp.diff().mean().expand(9), atol=1e-7, rtol=0)


@pytest.mark.parametrize("spacing", ["logsnr", "karras"])
@pytest.mark.parametrize(
    ("sampler", "options"),
    [("heun", {}), ("dpm_solver", {"order": 2}), ("dpm_solver", {"order": 3}), ("dpmpp_2s", {})],
)
def test_snr_spacings_stay_finite_and_sensible_at_two_to_five_steps(spacing, sampler, options):
    # Evaluating at t_min itself left one step across the whole log-SNR range at 2 steps:
    # SW1 16.6 (DPM-Solver-3) and 68.8 (Heun) on the ring, against about 0.2-0.6 now.
    s, ring = schedules.linear(), diffkit.toy.ring()
    g = torch.Generator().manual_seed(0)
    x_T, exact = torch.randn(1000, 2, generator=g), ring.sample(1000, g)
    for steps in (2, 3, 4, 5):
        x = diffkit.sample(
            ring.denoiser(s), x_T, s, sampler=sampler, steps=steps, spacing=spacing, **options
        )
        assert diffkit.toy.sliced_wasserstein(x, exact, 64, g) < 1.5, (steps, spacing)


def test_zero_terminal_snr_starts_at_the_last_finite_log_snr():
    s = schedules.linear(rescale=True)
    assert s.log_snr(torch.tensor(999.0)) == -math.inf
    for spacing in ("logsnr", "karras"):
        t = diffkit.timesteps(s, 10, spacing)
        assert t[0] == 998.0 and t[-1] > 0.0  # the clean end is the final step's
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


@pytest.mark.parametrize("spacing", ["leading", "linspace"])
@pytest.mark.parametrize(
    ("sampler", "options"),
    [("heun", {}), ("dpm_solver", {"order": 2}), ("dpm_solver", {"order": 3})],
)
def test_spacings_ending_at_t_min_stay_sensible_at_three_to_five_steps(spacing, sampler, options):
    # 'leading' and 'linspace' evaluate at t = 0, where a higher-order stage reads eps at
    # sigma 0.01: SW1 2.4 (Heun) and 5.5 (DPM-Solver-3) at 3 linspace steps on the ring until
    # that step was taken first order; 0.3-0.5 since, as trailing's 0.3-0.4.
    s, ring = schedules.linear(), diffkit.toy.ring()
    g = torch.Generator().manual_seed(0)
    x_T, exact = torch.randn(1000, 2, generator=g), ring.sample(1000, g)
    for steps in (3, 4, 5):
        x = diffkit.sample(
            ring.denoiser(s), x_T, s, sampler=sampler, steps=steps, spacing=spacing, **options
        )
        assert torch.isfinite(x).all()
        assert diffkit.toy.sliced_wasserstein(x, exact, 64, g) < 0.8, (steps, spacing)
