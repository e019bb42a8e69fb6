import pytest
import torch

from diffkit import ShapeError
from diffkit.domains.timeseries import ConditionalDenoiser, DenoiserConfig
from diffkit.domains.timeseries.denoiser import SeriesConv

SMALL = DenoiserConfig(residual_layers=2, residual_channels=4, step_hidden_dim=16)


@pytest.mark.parametrize("D", [1, 2, 3, 8, 33])
def test_shape_and_zero_output_at_initialisation(D):
    torch.manual_seed(0)
    net = ConditionalDenoiser(D, cond_dim=5)  # the reference architecture
    x = torch.randn(6, D)
    out = net(x, torch.rand(6) * 99, cond=torch.randn(6, 5))
    assert out.shape == (6, D)
    assert out.abs().max() == 0  # zero-initialised output projection (weight and bias)


def test_output_depends_on_step_and_conditioning_after_a_gradient_step():
    torch.manual_seed(0)
    net = ConditionalDenoiser(4, cond_dim=3, config=SMALL)
    x, t, h = torch.randn(8, 4), torch.randint(0, 100, (8,)).float(), torch.randn(8, 3)
    loss = (net(x, t, cond=h) - torch.randn(8, 4)).pow(2).mean()
    loss.backward()
    with torch.no_grad():
        for p in net.parameters():
            p -= 0.05 * p.grad if p.grad is not None else 0
        base = net(x, t, cond=h)
        assert base.abs().max() > 0
        assert not torch.allclose(base, net(x, t + 7, cond=h))
        assert not torch.allclose(base, net(x, t, cond=h + 1))


def test_wrong_width_is_a_shape_error():
    net = ConditionalDenoiser(4, cond_dim=3, config=SMALL)
    with pytest.raises(ShapeError, match=r"\(N, 4\)"):
        net(torch.randn(2, 5), torch.zeros(2), cond=torch.zeros(2, 3))


@pytest.mark.parametrize("D", [1, 2, 3, 5, 8, 33])
@pytest.mark.parametrize(("kernel", "dilation"), [(1, 1), (3, 1), (3, 2), (3, 4)])
def test_series_conv_equals_a_padded_conv1d_on_channels_first_input(D, kernel, dilation):
    torch.manual_seed(0)
    conv = SeriesConv(3, 5, kernel, D, dilation)
    x = torch.randn(3, 4, D, dtype=torch.float64)  # (C, N, D) channels-major
    conv = conv.double()
    reference = torch.nn.Conv1d.forward(conv, x.transpose(0, 1)).transpose(0, 1)
    torch.testing.assert_close(conv(x), reference)
    expected_mode = "circular" if 0 < dilation * (kernel - 1) // 2 < D else "zeros"
    assert conv.padding_mode == expected_mode
