import itertools

import pytest
import torch

from diffkit import ConfigError, ShapeError, schedules
from diffkit.process import (
    Prediction,
    convert,
    from_x0_eps,
    posterior,
    posterior_at,
    q_sample,
    to_x0_eps,
)


def test_q_sample_has_the_forward_mean_and_variance():
    s = schedules.linear()
    g = torch.Generator().manual_seed(0)
    n = 200_000
    x0 = torch.full((n, 1), 0.7, dtype=torch.float64)
    t = torch.full((n,), 300.0)
    xt = q_sample(x0, t, torch.randn(n, 1, generator=g, dtype=torch.float64), s)
    alpha, sigma = (c.item() for c in s.alpha_sigma(torch.tensor(300.0)))
    assert xt.mean().item() == pytest.approx(alpha * 0.7, abs=5 * sigma / n**0.5)
    assert xt.var().item() == pytest.approx(sigma**2, rel=5 * (2 / n) ** 0.5)


def test_posterior_matches_ddpm_closed_form():
    s = schedules.linear()
    abar, betas = s.alphas_cumprod, s.betas
    t = torch.tensor([1.0, 10.0, 500.0, 999.0])
    i = t.long()
    g = torch.Generator().manual_seed(1)
    x0, xt = torch.randn(2, 4, 3, generator=g, dtype=torch.float64)
    mean, var = posterior_at(x0, xt, t, s)
    # Ho et al. 2020, eq. (7)
    c0 = (abar[i - 1].sqrt() * betas[i] / (1 - abar[i]))[:, None]
    ct = ((1 - betas[i]).sqrt() * (1 - abar[i - 1]) / (1 - abar[i]))[:, None]
    torch.testing.assert_close(mean, c0 * x0 + ct * xt)
    expected_var = (1 - abar[i - 1]) / (1 - abar[i]) * betas[i]
    torch.testing.assert_close(var.flatten(), expected_var)


def test_posterior_at_the_first_step_is_the_clean_data():
    s = schedules.linear()
    x0, xt = torch.randn(2, 3, 5, dtype=torch.float64)
    mean, var = posterior_at(x0, xt, torch.zeros(3), s)
    torch.testing.assert_close(mean, x0)
    assert (var == 0).all()


def test_posterior_is_the_bayes_posterior_of_two_gaussian_steps():
    # x_s ~ N(a_s x0, s_s^2), x_t | x_s ~ N(a_ts x_s, v_ts): the Gaussian posterior of x_s.
    a_s, s_s, a_t, s_t = 0.9, (1 - 0.81) ** 0.5, 0.6, 0.8
    a_ts, v_ts = a_t / a_s, s_t**2 - (a_t / a_s) ** 2 * s_s**2
    prec = 1 / s_s**2 + a_ts**2 / v_ts
    x0, xt = torch.tensor([0.3]), torch.tensor([-1.2])
    mean, var = posterior(x0, xt, a_s, s_s, a_t, s_t)
    assert var == pytest.approx(1 / prec)
    assert mean.item() == pytest.approx((a_s * 0.3 / s_s**2 + a_ts * -1.2 / v_ts) / prec)


@pytest.mark.parametrize(("alpha", "sigma"), [(0.8, 0.6), (0.05, 0.9987), (1.0, 7.0)])
def test_every_conversion_round_trips(alpha, sigma):
    g = torch.Generator().manual_seed(2)
    x0, eps = torch.randn(2, 8, 3, generator=g, dtype=torch.float64)
    xt = alpha * x0 + sigma * eps
    for p in Prediction:
        pred = from_x0_eps(x0, eps, alpha, sigma, p)
        got_x0, got_eps = to_x0_eps(pred, xt, alpha, sigma, p)
        torch.testing.assert_close(got_x0, x0)
        torch.testing.assert_close(got_eps, eps)
    for src, dst in itertools.permutations(Prediction, 2):
        pred = from_x0_eps(x0, eps, alpha, sigma, src)
        torch.testing.assert_close(
            convert(pred, xt, alpha, sigma, src, dst), from_x0_eps(x0, eps, alpha, sigma, dst)
        )


def test_score_is_minus_eps_over_sigma():
    eps = torch.randn(4)
    torch.testing.assert_close(from_x0_eps(None, eps, 0.6, 0.8, "score"), -eps / 0.8)


def test_bad_process_inputs():
    with pytest.raises(ConfigError, match="choose one of: eps, x0, v, score"):
        Prediction.parse("epsilon")
    with pytest.raises(ShapeError, match="noise has shape"):
        q_sample(torch.zeros(2, 3), torch.zeros(2), torch.zeros(2, 4), schedules.linear())


def test_the_training_loss_never_reads_a_value_on_the_data_device():
    # Drawn times need no range check: on the meta device (shapes, no values) any .item() or
    # bool() of a tensor, a host synchronisation per batch on a GPU, would raise.
    from diffkit.losses import diffusion_loss

    x0 = torch.empty(4, 3, device="meta")
    for prediction, weighting in [("eps", None), ("v", "min_snr"), ("x0", "min_snr")]:
        loss = diffusion_loss(
            lambda x, t: torch.zeros_like(x), x0, schedules.vp(), prediction=prediction,
            weighting=weighting,
        )  # fmt: skip
        assert loss.device.type == "meta" and loss.shape == (4,)
    with pytest.raises(RuntimeError, match="meta"):  # given times are checked: a value read
        diffusion_loss(lambda x, t: x, x0, schedules.linear(), t=torch.zeros(4, device="meta"))
