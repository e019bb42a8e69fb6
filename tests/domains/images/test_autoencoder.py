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


def test_loss_parts_and_kl_weight(digits):
    model = Autoencoder(SMALL)
    loss, rec, kl = autoencoder_loss(model, digits.images[:16], torch.Generator().manual_seed(0))
    assert kl >= 0 and torch.allclose(loss, rec + SMALL.kl_weight * kl)


def test_latent_scale_gives_unit_variance_latents(trained, digits):
    model, _ = trained
    scale = latent_scale(model, digits.images, torch.Generator().manual_seed(1))
    z = to_latents(model, digits.images, scale, torch.Generator().manual_seed(1))
    assert z.shape == (1797, 4, 2, 2)
    assert abs(z.std().item() - 1.0) < 1e-4
    back = from_latents(model, to_latents(model, digits.images[:64], scale), scale)
    assert back.shape == (64, 1, 8, 8)
    assert (back - digits.images[:64]).pow(2).mean() < 0.2


def test_bad_input_and_config():
    with pytest.raises(ShapeError, match="multiples of 4"):
        Autoencoder(SMALL).encode(torch.zeros(1, 1, 10, 10))
    with pytest.raises(ConfigError):
        AutoencoderConfig(channels=(12,))
    with pytest.raises(ConfigError):
        AutoencoderConfig(kl_weight=-1.0)
