"""Reverse-SDE Euler–Maruyama, predictor–corrector and annealed Langevin on the exact ring."""

import pytest
import torch

import diffkit
from diffkit import ConfigError, schedules, toy
from diffkit.sampling.sde import sde_coefficients


@pytest.fixture(autouse=True)
def one_thread():
    # The exact denoiser is tiny: a second thread only adds contention on a shared machine.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_forward_sde_coefficients_match_the_closed_forms():
    t = torch.tensor([1e-3, 0.5, 1.0], dtype=torch.float64)
    f, g2 = sde_coefficients(schedules.vp(), t)
    beta = 0.1 + 19.9 * t  # score-SDE VP: f = -beta/2, g^2 = beta
    torch.testing.assert_close(f, -beta / 2)
    torch.testing.assert_close(g2, beta)
    f, g2 = sde_coefficients(schedules.ve(0.01, 50.0), t)
    sigma = 0.01 * 5000**t  # VE: f = 0, g^2 = d sigma^2 / dt
    torch.testing.assert_close(f, torch.zeros_like(t))
    torch.testing.assert_close(g2, 2 * sigma**2 * torch.log(torch.tensor(5000.0)).double())
    s = schedules.linear()  # discrete: log alpha piecewise linear, g^2 ~ beta per step
    f, g2 = sde_coefficients(s, torch.tensor([10.5, 500.5], dtype=torch.float64))
    torch.testing.assert_close(g2, s.betas[[11, 501]], rtol=2e-2, atol=0)


def log_snr_times(s, n):
    """Times uniform in log-SNR: geometric noise levels sigma / alpha for any schedule."""
    lam = s.log_snr(torch.tensor([s.t_max, s.t_min], dtype=torch.float64))
    return s.t_of_log_snr(torch.linspace(lam[0].item(), lam[1].item(), n, dtype=torch.float64))


def noise_floor(gm, ref, g, repeats=4):
    """The sliced Wasserstein distance of exact samples to ``ref``, averaged over a few sets."""
    sw = [
        toy.sliced_wasserstein(
            gm.sample(len(ref), g), ref, generator=torch.Generator().manual_seed(1)
        )
        for _ in range(repeats)
    ]
    return sum(sw) / repeats


CASES = {
    "sde_euler-vp": ("sde_euler", schedules.vp(), 200, {}),
    "sde_euler-linear": ("sde_euler", schedules.linear(), 200, {}),
    "pc-vp": ("pc", schedules.vp(), 150, {}),
    "pc-ve": ("pc", schedules.ve(sigma_max=20.0), 150, {}),
    "pc-ve-em": ("pc", schedules.ve(sigma_max=20.0), 150, {"predictor": "euler_maruyama"}),
    "langevin-vp": ("langevin", schedules.vp(), 100, {"n_steps_each": 10, "step_lr": 5e-5}),
    "langevin-ve": ("langevin", schedules.ve(sigma_max=20.0), 100, {"n_steps_each": 10}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_sampler_with_the_exact_denoiser_reproduces_the_ring(case):
    name, s, steps, options = CASES[case]
    gm, n = toy.ring(), 5000
    g = torch.Generator().manual_seed(0)
    ref = gm.sample(n, g)
    floor = noise_floor(gm, ref, g)
    times = log_snr_times(s, steps)
    x = diffkit.sample(gm.denoiser(s), (n, 2), s, sampler=name, times=times, generator=g, **options)
    sw = toy.sliced_wasserstein(x, ref, generator=torch.Generator().manual_seed(1))
    assert sw < 1.5 * floor
    assert gm.mode_tv(x) < 0.03


def test_model_calls_per_step():
    calls = []
    s = schedules.vp()

    def net(x, t):
        calls.append(1)
        return torch.zeros_like(x)

    for name, options, expected in [
        ("sde_euler", {}, 5),
        ("pc", {"n_corrector": 2}, 15),
        ("langevin", {"n_steps_each": 3}, 16),
    ]:
        calls.clear()
        diffkit.sample(net, (4, 2), s, sampler=name, steps=5, **options)
        assert len(calls) == expected, name


@pytest.mark.parametrize("name", ["langevin", "sde_euler", "pc", "euler", "dpmpp_2s", "unipc"])
def test_a_zero_snr_first_time_is_a_ddim_step_and_the_steps_count_on(name):
    # from_pure_noise: the step from alpha = 0 is x_s = alpha_s x0 + sigma_s x (eps = x there),
    # reported as step 0; the sampler's own steps follow as 1, 2, ...
    s = schedules.linear(rescale=True)
    times = diffkit.timesteps(s, 5)
    x0 = torch.tensor([[0.3, -0.2]])
    seen = []
    x_T = torch.randn(3, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    diffkit.sample(
        lambda x, t: x0.to(x).expand_as(x), x_T, s, sampler=name, times=times, prediction="x0",
        callback=lambda state: seen.append((state["i"], state["x"])),
    )  # fmt: skip
    a, sigma = s.alpha_sigma(times[1])
    torch.testing.assert_close(seen[0][1], a * x0.double() + sigma * x_T)
    assert [i for i, _ in seen] == list(range(5))
    with pytest.raises(ConfigError, match="predicts eps cannot give x0 at SNR 0"):
        diffkit.sample(lambda x, t: 0 * x, (2, 2), s, sampler=name, steps=5)


def _noise_ratio_per_level(options: dict) -> list[float]:
    """The std of annealed Langevin's x at each level over that level's marginal std, for
    data N(0, s0^2) whose eps is exact (x sigma / (s0^2 + sigma^2)), 20 levels 50 -> 0.01."""
    s, s0 = schedules.ve(0.01, 50.0), 1e-3

    def eps(x, t):
        sigma = s.alpha_sigma(t.to(x.dtype))[1][:, None]
        return x * sigma / (s0**2 + sigma**2)

    seen = []
    diffkit.sample(eps, (4000, 16), s, sampler="langevin", steps=20, callback=seen.append,
                   generator=torch.Generator().manual_seed(0), **options)  # fmt: skip
    return [
        state["x"].std().item() / (s0**2 + s.alpha_sigma(torch.tensor(state["t"]))[1] ** 2).sqrt()
        for state in seen[:-1]
    ]


def test_langevin_default_steps_keep_each_level_at_its_stationary_noise():
    # 5 steps of r * level^2 per level, r = 1.5 by default: on a Gaussian level the chain's
    # variance settles at 1 / (1 - r/4) of the level's, so its std at 1.265x, level after level
    ratios = _noise_ratio_per_level({})
    assert max(abs(r - (1 - 1.5 / 4) ** -0.5) for r in ratios[2:]) < 0.03
    # the paper's epsilon (r = 0.2) at 5 steps per level cannot shed each level's excess noise,
    # which piles up level after level (2.1x at the last): what made noise tiles on images
    assert _noise_ratio_per_level({"step_lr": 2e-5})[-1] > 1.8


def test_langevin_rejects_a_step_that_is_not_positive():
    with pytest.raises(ConfigError, match="step_lr must be positive"):
        diffkit.sample(lambda x, t: 0 * x, (2, 2), schedules.ve(), sampler="langevin", steps=3,
                       step_lr=0.0)  # fmt: skip
