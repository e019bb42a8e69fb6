import pytest
import torch

from diffkit import ConfigError, ShapeError, diffusion_loss, schedules
from diffkit.losses import sample_t, snr_weight
from diffkit.process import coefficients


def oracle(x0, noise, schedule, prediction):
    """A network that knows the answer: returns the exact target for its x_t."""

    def net(x_t, t):
        alpha, sigma = coefficients(schedule, t, x_t)
        return {"eps": noise, "x0": x0, "v": alpha * noise - sigma * x0}[prediction]

    return net


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
@pytest.mark.parametrize("schedule", [schedules.linear(), schedules.vp(), schedules.ve()])
def test_the_exact_target_has_zero_loss(prediction, schedule):
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(2, 6, 3, generator=g, dtype=torch.float64)  # VE's sigma reaches 50
    net = oracle(x0, noise, schedule, prediction)
    loss = diffusion_loss(net, x0, schedule, prediction=prediction, noise=noise, generator=g)
    assert loss.shape == (6,)
    assert loss.abs().max() < 1e-10


def test_eps_loss_of_a_zero_network_is_the_noise_power():
    x0, noise = torch.randn(2, 5, 4)
    loss = diffusion_loss(lambda x, t: torch.zeros_like(x), x0, schedules.linear(), noise=noise)
    torch.testing.assert_close(loss, (noise**2).mean(dim=1))


def test_mask_ignores_missing_values_and_their_nans():
    x0, noise = torch.randn(2, 3, 4)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [0, 1, 0, 1]])
    x_nan = torch.where(mask.bool(), x0, torch.nan)
    t = torch.tensor([5.0, 50.0, 500.0])
    loss = diffusion_loss(
        lambda x, t: torch.zeros_like(x), x_nan, schedules.linear(), mask=mask, noise=noise, t=t
    )
    assert torch.isfinite(loss).all()
    expected = torch.stack([(noise[i][mask[i].bool()] ** 2).mean() for i in range(3)])
    torch.testing.assert_close(loss, expected)


def test_min_snr_weights_follow_hang_et_al():
    snr = torch.tensor([0.5, 5.0, 50.0])
    torch.testing.assert_close(snr_weight(snr, "eps", 5.0), torch.tensor([1.0, 1.0, 0.1]))
    torch.testing.assert_close(snr_weight(snr, "x0", 5.0), torch.tensor([0.5, 5.0, 5.0]))
    torch.testing.assert_close(snr_weight(snr, "v", 5.0), torch.tensor([0.5 / 1.5, 5 / 6, 5 / 51]))
    s = schedules.linear()
    x0, noise = torch.randn(2, 2, 3)
    t = torch.tensor([10.0, 900.0])
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    plain = diffusion_loss(zero, x0, s, noise=noise, t=t)
    weighted = diffusion_loss(zero, x0, s, noise=noise, t=t, weighting="min_snr")
    torch.testing.assert_close(weighted, plain * snr_weight(s.log_snr(t).exp().float(), "eps", 5))


def test_training_times_cover_the_schedule():
    g = torch.Generator().manual_seed(0)
    t = sample_t(schedules.linear(T=10), 5000, generator=g)
    assert set(t.long().tolist()) == set(range(10))
    tc = sample_t(schedules.vp(), 5000, generator=g)
    assert tc.min() >= 1e-3 and tc.max() <= 1


def test_bad_loss_inputs():
    x0 = torch.randn(2, 3)
    s = schedules.linear()
    with pytest.raises(ShapeError, match="network returned shape"):
        diffusion_loss(lambda x, t: x[:, :2], x0, s)
    with pytest.raises(ShapeError, match="network returned a tuple; it must return one torch"):
        diffusion_loss(lambda x, t: (x, x), x0, s)
    with pytest.raises(ShapeError, match=r"network returned a numpy\.ndarray"):
        diffusion_loss(lambda x, t: x.numpy(), x0, s)
    with pytest.raises(ShapeError, match="mask has shape"):
        diffusion_loss(lambda x, t: x, x0, s, mask=torch.ones(2, 2))
    with pytest.raises(ConfigError, match="weighting"):
        diffusion_loss(lambda x, t: x, x0, s, weighting="snr")
    with pytest.raises(ConfigError, match="score"):
        diffusion_loss(lambda x, t: x, x0, s, prediction="score")


def test_min_snr_weights_are_finite_at_snr_zero_and_follow_the_formula():
    from diffkit.losses import snr_weight

    snr = torch.tensor([0.0, 1.0, 5.0, 10.0, float("inf")])
    torch.testing.assert_close(snr_weight(snr, "eps", 5.0), torch.tensor([1.0, 1.0, 1.0, 0.5, 0.0]))
    torch.testing.assert_close(
        snr_weight(snr[:4], "v", 5.0), torch.tensor([0.0, 0.5, 5 / 6, 5 / 11])
    )
    torch.testing.assert_close(snr_weight(snr[:4], "x0", 5.0), torch.tensor([0.0, 1.0, 5.0, 5.0]))
