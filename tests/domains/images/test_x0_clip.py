"""Sampling keeps x0 in the pixel range, so a bad eps at high noise no longer ends as a noise tile.

At high t, ``x0 = (x_t - sigma eps) / alpha`` multiplies the network's eps error by
``sigma / alpha`` (157 at t = 999 of the linear schedule); DDIM and DPM-Solver carry that x0
into the next x_t. The stand-in network below is the exact denoiser of Gaussian "digits"
N(mu, 0.1^2) everywhere except at high t, where its eps is off by a checkerboard.
"""

import pytest
import torch
from torch import nn

from diffkit import schedules
from diffkit.domains.images.domain import ImagesConfig
from diffkit.domains.images.evaluate import noise_tiles, total_variation
from diffkit.domains.images.generate import SampleOptions, generate, x0_transform
from diffkit.errors import ConfigError
from diffkit.guidance import data_range

SCHEDULE = schedules.linear()
MU = torch.full((1, 1, 8, 8), -0.8)
MU[..., 2:6, 3:5] = 0.9  # a bar
STD = 0.1
CHECKER = (torch.arange(8)[:, None] + torch.arange(8)).remainder(2).float() * 2 - 1  # (8, 8)


class BadAtHighNoise(nn.Module):
    """Exact eps of N(MU, STD^2 I) data, plus ``error * CHECKER`` at times >= ``bad_from``."""

    num_classes = None

    def __init__(self, error: float, bad_from: float):
        super().__init__()
        self.error, self.bad_from, self.autoencoder = error, bad_from, None
        self.dummy = nn.Parameter(torch.zeros(()))  # generate() reads the device from it

    def forward(self, x, t, y=None):
        alpha, sigma = (c.float().view(-1, 1, 1, 1) for c in SCHEDULE.alpha_sigma(t.double()))
        gain = alpha * STD**2 / (alpha**2 * STD**2 + sigma**2)
        x0 = MU + gain * (x - alpha * MU)  # the Gaussian posterior mean
        eps = (x - alpha * x0) / sigma
        return eps + self.error * CHECKER * (t.view(-1, 1, 1, 1) >= self.bad_from)

    def decode(self, x):
        return x


def draw(net, clip: str | None, sampler: str = "ddim", steps: int = 50) -> torch.Tensor:
    return generate(
        net,
        SCHEDULE,
        16,
        config=ImagesConfig(),
        settings={"shape": [1, 8, 8]},
        sampler=sampler,
        steps=steps,
        prediction="eps",
        generator=torch.Generator().manual_seed(0),
        options=SampleOptions(x0_clip=clip),
    )


@pytest.fixture(scope="module")
def reference() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return (MU + STD * torch.randn(256, 1, 8, 8, generator=g)).clamp(-1, 1)


@pytest.mark.parametrize(("sampler", "steps"), [("ddim", 50), ("dpmpp_2m", 20)])
def test_bad_eps_at_high_noise_gives_noise_tiles_only_without_the_clip(reference, sampler, steps):
    net = BadAtHighNoise(error=1.0, bad_from=500)
    unclipped = draw(net, "off", sampler, steps)
    assert noise_tiles(unclipped, reference).float().mean() > 0.5  # the failure is real
    assert not noise_tiles(draw(net, None, sampler, steps), reference).any()  # the default
    assert not noise_tiles(draw(net, "dynamic", sampler, steps), reference).any()


def test_the_clip_leaves_a_good_model_alone(reference):
    net = BadAtHighNoise(error=0.0, bad_from=500)
    clipped, unclipped = draw(net, "static"), draw(net, "off")
    assert not noise_tiles(unclipped, reference).any()
    # the exact denoiser's x0 stays within [-1, 1] but for the N(MU, 0.01) tails
    assert (clipped - unclipped).abs().mean() < 0.01


def test_data_range_transforms():
    x0 = torch.tensor([[-5.0, -0.5, 0.0, 0.5, 5.0]])
    assert data_range("off") is None
    assert data_range("static")(x0).tolist() == [[-1.0, -0.5, 0.0, 0.5, 1.0]]
    assert data_range("static", 0.0, 1.0)(x0).tolist() == [[0.0, 0.0, 0.0, 0.5, 1.0]]
    dynamic = data_range("dynamic", 0.0, 2.0)(x0)  # on [0, 2]: s = the 99.5% quantile of |x0 - 1|
    assert dynamic.min() >= 0.0 and dynamic.max() <= 2.0
    inside = torch.tensor([[0.2, 1.0, 1.8]])
    assert torch.allclose(data_range("dynamic", 0.0, 2.0)(inside), inside)  # s = 1: unchanged


def test_total_variation_closed_form():
    flat = torch.zeros(1, 1, 4, 4)
    stripes = torch.tensor([-1.0, 1.0]).repeat(2).expand(1, 1, 4, 4)  # columns -1, 1, -1, 1
    assert total_variation(flat).item() == 0.0
    assert total_variation(stripes).item() == pytest.approx(2.0)  # 0 down, 2 across


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SampleOptions(x0_clip="always"), "--x0-clip"),
        (lambda: ImagesConfig(x0_clip="always"), "x0_clip"),
        (lambda: data_range("static", 1.0, -1.0), "low < high"),
    ],
)
def test_bad_clip_settings_are_one_clear_error(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_a_latent_model_clips_to_its_training_latents_range():
    net = BadAtHighNoise(0.0, 500)
    net.autoencoder = nn.Identity()  # any autoencoder: latents have their own range
    far = torch.tensor([-9.0, -0.5, 0.0, 2.0, 9.0])
    clip = x0_transform(net, "auto", {"latent_range": [-0.5, 2.0]})
    assert clip(far).tolist() == [-0.5, -0.5, 0.0, 2.0, 2.0]
    assert x0_transform(net, "off", {"latent_range": [-0.5, 2.0]}) is None
    dynamic = x0_transform(net, "dynamic", {"latent_range": [-0.5, 2.0]})(far[None])
    assert dynamic.min() >= -0.5 and dynamic.max() <= 2.0
    # a latent run saved before the range was: no clip by default, and none on demand
    assert x0_transform(net, "auto", {}) is None
    for bad in ({}, {"latent_range": [1.0, -1.0]}, {"latent_range": "x"}):
        with pytest.raises(ConfigError, match="needs the latents' range"):
            x0_transform(net, "static", bad)


def test_the_flag_value_off_reaches_generate_as_off():
    # "none" would be read as "not given" by the flag parser and fall back to the clip
    from diffkit.options import build_options

    assert build_options(SampleOptions, {"x0-clip": "off"}).x0_clip == "off"
    assert build_options(SampleOptions, {"x0-clip": None}).x0_clip is None


@pytest.mark.slow
def test_no_tile_of_a_trained_digits_models_grid_is_noise(tmp_path, digits):
    # the README's model (500 steps on the built-in digits, eps): 10 of these 64 sevens were
    # salt-and-pepper noise before sampling clipped x0 (benchmarks/images_outliers.py)
    import diffkit
    from diffkit.domains.images.recipes import recipe
    from diffkit.inference import sample_checkpoint
    from diffkit.registry import get_domain
    from diffkit.runner import resolve_config

    layers = recipe("digits8", max_steps=500, batch_size=64)
    layers["model"]["class_conditional"] = True
    run = diffkit.fit("images", resolve_config(get_domain("images"), layers), out=tmp_path / "r")
    options = {"class": 7, "guidance": 3.0}
    grid = sample_checkpoint(run, 64, sampler="ddim", steps=50, options=options)
    off = sample_checkpoint(run, 64, sampler="ddim", steps=50, options=options | {"x0-clip": "off"})
    assert noise_tiles(off, digits.images).any()  # the failure this guards against
    assert not noise_tiles(grid, digits.images).any()
