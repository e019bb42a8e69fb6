"""Likelihood on Gaussian data, where the exact log-likelihood is known in closed form."""

import math

import pytest
import torch
from scipy.stats import norm

from diffkit import schedules, toy
from diffkit.likelihood import (
    bits_per_dim,
    discretized_gaussian_log_likelihood,
    ode_log_likelihood,
    variational_bound,
)


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


GAUSS = toy.mixture([[0.3, -0.2, 0.1]], 0.5)  # N(mu, 0.25 I) in 3-D: one component


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_ode_log_likelihood_of_gaussian_data_is_exact_within_one_percent(prediction):
    s = schedules.vp()
    x = GAUSS.sample(32, torch.Generator().manual_seed(0)).double()
    exact = GAUSS.log_prob(x)
    ll = ode_log_likelihood(GAUSS.denoiser(s, prediction), x, s, prediction=prediction)
    assert ((ll - exact).abs() <= 0.01 * exact.abs().mean()).all()


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_hutchinson_trace_is_unbiased(probe):
    # A two-mode mixture has a non-diagonal Jacobian; 256 probes on copies of one point.
    gm, s = toy.mixture([[0.5, 0.0], [-0.5, 0.3]], 0.3), schedules.vp()
    x = torch.tensor([[0.1, 0.2]], dtype=torch.float64)
    exact = ode_log_likelihood(gm.denoiser(s), x, s)
    g = torch.Generator().manual_seed(0)
    est = ode_log_likelihood(
        gm.denoiser(s), x.expand(256, 2), s, trace="hutchinson", probe=probe, generator=g
    )
    stderr = est.std().item() / 16
    assert abs(est.mean().item() - exact.item()) < 4 * stderr + 1e-3
    torch.testing.assert_close(exact, gm.log_prob(x), atol=0.02, rtol=0)


def expected_bound(variance: str, v: float = 0.25, dims: int = 3) -> float:
    """E[bound] in nats for x0 ~ N(mu, v I) and the exact denoiser on DDPM's linear schedule,
    in closed form from Ho et al. 2020's posterior (eqs. 6-7): every KL is between Gaussians
    whose means differ by c_0 (x0 - E[x0 | x_t]), of expected square the posterior variance
    v s^2 / (a^2 v + s^2) of x0 given x_t."""
    s = schedules.linear()
    abar, beta = s.alphas_cumprod, s.betas
    a2, s2 = abar, 1 - abar  # alpha_t^2 and sigma_t^2 at t = 0..999
    miss = v * s2 / (a2 * v + s2)  # E (x0 - x0_hat)^2 per dimension
    c0 = abar[:-1].sqrt() * beta[1:] / (1 - abar[1:])  # eq. (7), t = 1..999
    var_q = (1 - abar[:-1]) / (1 - abar[1:]) * beta[1:]
    var_p = var_q if variance == "small" else beta[1:]
    kl = 0.5 * (torch.log(var_p / var_q) + (var_q + c0**2 * miss[1:]) / var_p - 1)
    mu2 = (GAUSS.means[0] ** 2).mean()  # the prior term's E x0^2 = mu^2 + v, per dimension
    big = a2[-1] + s2[-1]
    prior = 0.5 * (torch.log(big / s2[-1]) + (s2[-1] + a2[-1] * (mu2 + v)) / big - 1)
    std2 = var_q[0]  # the decoder's variance: the first reverse step's posterior variance
    decoder = 0.5 * miss[0] / std2 + 0.5 * torch.log(2 * math.pi * std2)
    return dims * (prior + kl.sum() + decoder).item()


@pytest.mark.parametrize("variance", ["small", "large"])
def test_variational_bound_has_its_closed_form_expectation(variance):
    s = schedules.linear()
    x = GAUSS.sample(2000, torch.Generator().manual_seed(1)).double()
    g = torch.Generator().manual_seed(2)
    bound = variational_bound(
        GAUSS.denoiser(s), x, s, decoder="gaussian", variance=variance, generator=g
    )
    total = bound.total
    exact = expected_bound(variance)  # small: 3.65 nats, large: 2.43
    assert abs(total.mean().item() - exact) < 4 * total.std().item() / len(x) ** 0.5
    # a bound: its expectation is above the entropy of N(mu, 0.25 I), the expected NLL
    assert exact > 0.5 * 3 * math.log(2 * math.pi * math.e * 0.25)
    assert bound.prior.mean() < 1e-3  # x_T is nearly pure noise
    torch.testing.assert_close(bound.bits_per_dim, bound.total / (3 * math.log(2)))


def test_discretized_gaussian_decoder_on_known_values():
    h = 1 / 255
    x = torch.tensor([-1.0, 0.2, 1.0], dtype=torch.float64)
    mean = torch.tensor([-0.99, 0.21, 0.97], dtype=torch.float64)
    got = discretized_gaussian_log_likelihood(x, mean, 0.05)
    expected = [
        norm.logcdf((-1 + h + 0.99) / 0.05),  # the left end bin reaches to -infinity
        math.log(norm.cdf((0.2 + h - 0.21) / 0.05) - norm.cdf((0.2 - h - 0.21) / 0.05)),
        norm.logsf((1 - h - 0.97) / 0.05),  # the right end bin reaches to +infinity
    ]
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))
    # the bins of all 256 levels hold all the probability
    levels = torch.linspace(-1, 1, 256, dtype=torch.float64)
    total = discretized_gaussian_log_likelihood(levels, torch.full_like(levels, 0.3), 0.4).exp()
    assert total.sum().item() == pytest.approx(1.0)


def test_bits_per_dim_conversion():
    assert bits_per_dim(torch.tensor(10 * math.log(2)), 10).item() == pytest.approx(1.0)
    # a density on [-1, 1] put on the 8-bit scale: + log2(256 / 2) = 7 bits
    assert bits_per_dim(torch.tensor(10 * math.log(2)), 10, bins=256).item() == pytest.approx(8.0)


def test_discretized_bound_of_8_bit_data_is_above_its_entropy():
    # 8-bit data: N(mu, 0.25 I) rounded to 256 levels in [-1, 1] (end bins absorb the tails).
    # Its exact probabilities are the bins' masses, so the bound must sit above its entropy.
    s, mu = schedules.linear(), GAUSS.means[0]
    x = GAUSS.sample(1000, torch.Generator().manual_seed(3)).double().clamp(-1, 1)
    x = torch.round((x + 1) * 127.5) / 127.5 - 1
    entropy = -discretized_gaussian_log_likelihood(x, mu, 0.5).sum(1).mean().item()
    bound = variational_bound(GAUSS.denoiser(s), x, s, generator=torch.Generator().manual_seed(4))
    bpd, true_bpd = bound.bits_per_dim.mean().item(), entropy / (3 * math.log(2))
    # the gap (about 1 bit/dim) is mostly the decoder: sigma at t = 0 (0.01) exceeds a bin
    assert true_bpd <= bpd < true_bpd + 1.2  # measured: 0.98 above


def test_the_bound_keeps_to_the_data_device_and_never_reads_its_values():
    # meta tensors have no values: an accumulator on the CPU or a per-step .item() would fail
    x = torch.empty(4, 3, device="meta", dtype=torch.float64)
    times = torch.arange(0.0, 1000.0, 100.0)
    for decoder in ("gaussian", "discretized"):
        bound = variational_bound(
            lambda x, t: 0.5 * x, x, schedules.linear(), times=times, decoder=decoder
        )
        assert bound.total.device.type == "meta" and bound.total.shape == (4,)
