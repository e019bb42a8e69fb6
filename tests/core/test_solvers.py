"""The ODE solvers converge at their order and every sampler reproduces the exact ring.

The probability-flow ODE is solved on the ring's exact denoiser with a continuous VP schedule,
times uniform in log-SNR between the same end points, and compared with a high-accuracy
solution from the same x_T (DPM-Solver-3 with 500 steps, 1,500 model calls, which agrees with
Heun at 1,000 steps to 5e-6). The final step to clean data is the same denoising map for every
sampler, so the final-state error is the ODE error at ``t_min``.
"""

import functools
import math

import pytest
import torch

import diffkit
from diffkit import schedules, toy

RING = toy.ring()
VP = schedules.vp()


def logsnr_times(n):
    """n times uniform in log-SNR from t_max to t_min inclusive: with both ends fixed, the
    final first-order step to clean data is the same at every n and the order shows (the
    ``logsnr`` spacing leaves the last interval to that step, whose error shrinks with n)."""
    lam = VP.log_snr(torch.tensor([VP.t_max, VP.t_min], dtype=torch.float64))
    t = VP.t_of_log_snr(torch.linspace(lam[0], lam[1], n, dtype=torch.float64))
    t[0], t[-1] = VP.t_max, VP.t_min
    return t


@functools.cache
def start_and_reference():
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    net = RING.denoiser(VP)
    ref = diffkit.sample(net, x, VP, sampler="dpm_solver", order=3, times=logsnr_times(500))
    return x, ref


def measured_order(name, **options):
    x, ref = start_and_reference()
    net = RING.denoiser(VP)
    errors = []
    for n in (40, 160):
        out = diffkit.sample(net, x, VP, sampler=name, times=logsnr_times(n), **options)
        errors.append((out - ref).norm(dim=1).mean().item())
    return math.log2(errors[0] / errors[1]) / 2  # steps x4 -> error / 4^order


@pytest.mark.parametrize(
    ("name", "options", "order"),
    [
        ("euler", {}, 1),  # measured 1.02
        ("ddim", {}, 1),  # 1.02 (deterministic DDIM is Euler in these variables)
        ("heun", {}, 2),  # 2.09
        ("dpmpp_2m", {}, 2),  # 2.06
        ("dpmpp_2s", {}, 2),  # 1.97
        ("dpm_solver", {"order": 2}, 2),  # 2.08
        ("dpm_solver", {"order": 3}, 3),  # 3.12
        ("dpmpp_3m", {}, 2),  # 1.92: its first, warm-up step is first order, so second overall
        ("unipc", {"order": 1}, 2),  # 1.97: the corrector adds one order
        ("unipc", {"order": 2}, 3),  # 3.02
        ("unipc", {"order": 3}, 4),  # 4.19
    ],
)
def test_error_falls_at_the_methods_order(name, options, order):
    # 40 and 160 steps: past the first steps' transient, and the reference's own error
    # (about 1e-8) is far below the most accurate case here (UniPC-3, 6e-7)
    assert abs(measured_order(name, **options) - order) < 0.3


def mean_sliced_w1(sets_a, sets_b):
    """Mean sliced W1 over pairs of equal-size sets: four pairs cut the estimate's spread
    (mostly the multinomial noise in the mode counts) to about 12%."""
    g = torch.Generator().manual_seed(1)
    return (
        sum(toy.sliced_wasserstein(a, b, generator=g) for a, b in zip(sets_a, sets_b, strict=True))
        / 4
    )


CASES = {  # sampler -> (schedule, steps, spacing, options)
    "ddpm": (schedules.linear(), 250, "trailing", {}),
    "ddim": (schedules.linear(), 100, "logsnr", {}),
    "euler": (schedules.vp(), 100, "karras", {}),
    "heun": (schedules.ve(sigma_max=20.0), 30, "karras", {}),
    "dpmpp_2m": (schedules.cosine(), 30, "logsnr", {}),
    "dpmpp_3m": (schedules.vp(), 30, "logsnr", {}),
    "dpmpp_2s": (schedules.linear(), 20, "logsnr", {}),
    "dpm_solver": (schedules.subvp(), 15, "logsnr", {"order": 3}),
    "unipc": (schedules.linear(rescale=True), 30, "logsnr", {"order": 3}),
    "heun-churn": (schedules.ve(sigma_max=20.0), 30, "karras", {"s_churn": 10.0, "s_tmax": 5.0}),
    "euler-churn": (schedules.vp(), 100, "karras", {"s_churn": 40.0}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_sampler_reproduces_the_ring(name):
    schedule, steps, spacing, options = CASES[name]
    n, g, sampler = 2000, torch.Generator().manual_seed(0), name.split("-")[0]
    x = diffkit.sample(
        RING.denoiser(schedule, "v"), (4 * n, 2), schedule, prediction="v", sampler=sampler,
        steps=steps, spacing=spacing, generator=g, dtype=torch.float64, **options,
    )  # fmt: skip
    exact = [RING.sample(n, g) for _ in range(8)]
    floor = mean_sliced_w1(exact[:4], exact[4:])  # exact vs exact: the best any sampler gets
    sw = mean_sliced_w1(x.split(n), exact[:4])
    assert sw < 1.5 * floor, f"{name}: sliced W1 {sw:.4f}, noise floor {floor:.4f}"
    assert RING.mode_tv(x) < 0.03


def test_churn_adds_fresh_noise_and_keeps_the_seed_contract():
    s, net = schedules.vp(), RING.denoiser(schedules.vp())
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))

    def run(seed, churn):
        g = torch.Generator().manual_seed(seed)
        return diffkit.sample(net, x, s, sampler="heun", steps=10, generator=g, s_churn=churn)

    torch.testing.assert_close(run(0, 5.0), run(0, 5.0), atol=0, rtol=0)
    assert not torch.allclose(run(0, 5.0), run(1, 5.0))
    torch.testing.assert_close(run(0, 0.0), run(1, 0.0), atol=0, rtol=0)  # no churn: an ODE
