import math

import pytest
import torch

from diffkit.domains.images.autoencoder import (
    Autoencoder,
    AutoencoderConfig,
    autoencoder_loss,
    from_latents,
    latent_scale,
    to_latents,
    train_autoencoder,
)
from diffkit.errors import ConfigError, ShapeError

SMALL = AutoencoderConfig(channels=(16, 32))


@pytest.fixture(scope="module")
def trained(digits):
    history = []
    model = train_autoencoder(
        digits.images,
        SMALL,
        steps=100,
        generator=torch.Generator().manual_seed(0),
        callback=lambda step, loss, rec, kl: history.append(rec),
    )
    return model, history


def test_mnist_sized_latent_shape():
    model = Autoencoder(AutoencoderConfig())
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    mean, logvar = model.encode(x)
    assert mean.shape == logvar.shape == (2, 4, 7, 7)
    assert model.decode(mean).shape == x.shape


def test_reconstruction_loss_falls_on_digits(trained):
    _, history = trained
    assert len(history) == 100
    assert sum(history[-10:]) / 10 < 0.5 * sum(history[:10]) / 10


def test_training_is_a_pure_function_of_the_generator(digits):
    a, b = (
        train_autoencoder(digits.images, SMALL, steps=2, generator=torch.Generator().manual_seed(3))
        for _ in range(2)
    )
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_loss_parts_have_their_closed_forms(digits):
    """A constant posterior N(0.5, e^-1) and a constant decoder 0.25: both terms by hand."""
    model, x = Autoencoder(SMALL), digits.images[:16]
    head, out = model.encoder[-1], model.decoder[-1]  # the last convolutions
    with torch.no_grad():
        head.weight.zero_(), out.weight.zero_()
        head.bias[:4], head.bias[4:] = 0.5, -1.0  # mean 0.5, log-variance -1 (4 channels)
        out.bias.fill_(0.25)
    loss, rec, kl = autoencoder_loss(model, x, torch.Generator().manual_seed(0))
    # KL(N(m, s^2) || N(0, 1)) = (m^2 + s^2 - 1 - log s^2) / 2 per latent entry; 4x2x2
    # entries per 8x8 image, reported per pixel.
    per_entry = 0.5 * (0.5**2 + math.exp(-1.0) - 1.0 + 1.0)
    assert kl.item() == pytest.approx(per_entry * 16 / 64, rel=1e-5)
    assert rec.item() == pytest.approx((x - 0.25).pow(2).mean().item(), rel=1e-5)
    assert loss.item() == pytest.approx(rec.item() + SMALL.kl_weight * kl.item(), rel=1e-6)


def test_latent_scale_is_one_over_the_posterior_samples_std(trained, digits):
    model, _ = trained
    scale = latent_scale(model, digits.images, torch.Generator().manual_seed(1))
    # Law of total variance over all latent entries: Var z = Var(mean) + E[exp(logvar)].
    with torch.no_grad():
        mean, logvar = model.encode(digits.images)  # (1797, 4, 2, 2) each
    expected = 1.0 / (mean.flatten().var() + logvar.exp().mean()).sqrt()
    assert scale == pytest.approx(expected.item(), rel=0.01)


def test_scaled_latents_decode_as_the_unscaled_ones_and_reconstruct_digits(trained, digits):
    model, _ = trained
    x, scale = digits.images, 2.5
    z = to_latents(model, x)  # posterior means
    torch.testing.assert_close(to_latents(model, x, scale), scale * z)
    with torch.no_grad():
        decoded = model.decode(z)
    torch.testing.assert_close(from_latents(model, scale * z, scale), decoded)
    assert decoded.shape == x.shape == (1797, 1, 8, 8)
    # Better than the best constant image (the mean digit): measured 0.12 against 0.29.
    mean_image_error = (x - x.mean(0)).pow(2).mean()
    assert (decoded - x).pow(2).mean() < 0.6 * mean_image_error


def test_bad_input_and_config():
    with pytest.raises(ShapeError, match="multiples of 4"):
        Autoencoder(SMALL).encode(torch.zeros(1, 1, 10, 10))
    with pytest.raises(ConfigError):
        AutoencoderConfig(channels=(12,))
    with pytest.raises(ConfigError):
        AutoencoderConfig(kl_weight=-1.0)
