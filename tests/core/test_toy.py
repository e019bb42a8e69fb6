import math

import pytest
import torch

import diffkit
from diffkit import ShapeError, schedules, toy


@pytest.mark.parametrize("schedule", [schedules.linear(), schedules.vp(), schedules.ve()])
def test_exact_eps_is_minus_sigma_times_the_autograd_score(schedule):
    gm = toy.random_mixture(dim=3, modes=4)
    x = torch.randn(16, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    t = torch.linspace(schedule.t_min, schedule.t_max, 16, dtype=torch.float64)
    alpha, sigma = (c[:, None] for c in schedule.alpha_sigma(t))
    x.requires_grad_(True)
    logp = gm._component_log_probs(x, alpha, sigma)[0].logsumexp(-1).sum()
    (score,) = torch.autograd.grad(logp, x)
    eps = torch.stack([gm.eps(x[i : i + 1].detach(), t[i], schedule)[0] for i in range(16)])
    torch.testing.assert_close(eps, -sigma * score)


def test_log_prob_of_one_component_is_the_gaussian_density():
    gm = toy.mixture([[1.0, -2.0]], 0.5)
    x = torch.tensor([[0.0, 0.0], [1.0, -2.0]])
    expected = -((x.double() - gm.means) ** 2).sum(1) / (2 * 0.25) - math.log(2 * math.pi * 0.25)
    torch.testing.assert_close(gm.log_prob(x), expected)


def test_samples_have_the_mixture_weights():
    gm = toy.ring(modes=4, weights=[0.1, 0.2, 0.3, 0.4])
    x = gm.sample(40_000, torch.Generator().manual_seed(0))
    assert gm.mode_tv(x) < 0.01


def test_sliced_wasserstein_of_a_shift_in_one_dimension_is_the_shift():
    a = torch.randn(1000, 1, generator=torch.Generator().manual_seed(0))
    assert toy.sliced_wasserstein(a, a + 0.3) == pytest.approx(0.3)
    assert toy.sliced_wasserstein(a, a) == 0
    with pytest.raises(ShapeError):
        toy.sliced_wasserstein(a, a[:10])


@pytest.mark.slow  # 14 s on an idle 2-core machine, 31 s at load 5, 76 s in the issue
def test_ancestral_sampling_with_the_exact_denoiser_reproduces_the_ring():
    gm, s, n = toy.ring(), schedules.linear(), 20_000
    g = torch.Generator().manual_seed(0)
    ref, ref2 = gm.sample(n, g), gm.sample(n, g)
    x = diffkit.sample(gm.denoiser(s), (n, 2), s, sampler="ddpm", generator=g)
    proj = torch.Generator().manual_seed(1)
    floor = toy.sliced_wasserstein(ref2, ref, generator=proj)
    proj = torch.Generator().manual_seed(1)
    assert toy.sliced_wasserstein(x, ref, generator=proj) < 1.5 * floor
    assert gm.mode_tv(x) < 0.02
