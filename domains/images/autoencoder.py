"""A small KL-regularised autoencoder for latent diffusion (Rombach et al. 2022, "LDM").

The encoder maps (B, C, H, W) images to the mean and log-variance of a diagonal Gaussian over
(B, latent_channels, H / 2^k, W / 2^k) latents, k = ``len(channels)`` (4 x 7 x 7 for 28x28
MNIST with the defaults); the decoder maps latents back. The diffusion model is then trained
on ``scale * z``, where ``scale`` (:func:`latent_scale`) is 1 / std of the latents as in LDM,
and its samples are decoded with :func:`from_latents`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from diffkit.errors import ConfigError, ShapeError


@dataclass(frozen=True)
class AutoencoderConfig:
    """Configuration of :class:`Autoencoder`.

    Parameters
    ----------
    in_channels : int
        Image channels.
    latent_channels : int
        Channels of the latent.
    channels : tuple of int
        Width of each encoder level; each level halves H and W (the decoder mirrors it).
    norm_groups : int
        GroupNorm groups; every width must be a multiple of it.
    kl_weight : float
        Weight of the KL term in :func:`autoencoder_loss` (small: the KL only keeps the
        latent space smooth and bounded, it does not make it N(0, I)).
    """

    in_channels: int = 1
    latent_channels: int = 4
    channels: tuple[int, ...] = (32, 64)
    norm_groups: int = 8
    kl_weight: float = 1e-3

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))  # lists from JSON
        if not self.channels or any(c % self.norm_groups for c in self.channels):
            raise ConfigError(
                f"autoencoder channels {self.channels} must be non-empty multiples of "
                f"norm_groups={self.norm_groups}; change one of them."
            )
        if self.kl_weight < 0:
            raise ConfigError(f"kl_weight {self.kl_weight} must be >= 0; use e.g. 1e-3.")

    @property
    def factor(self) -> int:
        """Down-sampling factor per side (image side = factor * latent side)."""
        return 2 ** len(self.channels)


class _Res(nn.Module):
    """GroupNorm-SiLU-conv twice with a residual connection (no time embedding)."""

    def __init__(self, in_ch: int, out_ch: int, groups: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.GroupNorm(groups, in_ch),
            nn.SiLU(),
            nn.Conv2d(in_ch, out_ch, 3, padding=1),
            nn.GroupNorm(groups, out_ch),
            nn.SiLU(),
            nn.Conv2d(out_ch, out_ch, 3, padding=1),
        )
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.block(x)


class _Up(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Autoencoder(nn.Module):
    """KL autoencoder: ``encode(x) -> (mean, logvar)``, ``decode(z) -> x``."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        self.config = c = config
        g, chs = c.norm_groups, c.channels
        enc: list[nn.Module] = [nn.Conv2d(c.in_channels, chs[0], 3, padding=1)]
        prev = chs[0]
        for ch in chs:
            enc += [_Res(prev, ch, g), nn.Conv2d(ch, ch, 3, stride=2, padding=1)]
            prev = ch
        enc += [_Res(prev, prev, g), nn.GroupNorm(g, prev), nn.SiLU()]
        enc.append(nn.Conv2d(prev, 2 * c.latent_channels, 3, padding=1))
        self.encoder = nn.Sequential(*enc)

        dec: list[nn.Module] = [
            nn.Conv2d(c.latent_channels, prev, 3, padding=1),
            _Res(prev, prev, g),
        ]
        for ch in reversed(chs):
            dec += [_Up(prev), _Res(prev, ch, g)]
            prev = ch
        dec += [nn.GroupNorm(g, prev), nn.SiLU(), nn.Conv2d(prev, c.in_channels, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance, each (B, latent_channels, H / f, W / f)."""
        f = self.config.factor
        if x.ndim != 4 or x.shape[1] != self.config.in_channels or x.shape[2] % f or x.shape[3] % f:
            raise ShapeError(
                f"the autoencoder takes (B, {self.config.in_channels}, H, W) with H and W "
                f"multiples of {f}, got {tuple(x.shape)}; pad or resize the images."
            )
        mean, logvar = self.encoder(x).chunk(2, dim=1)  # (B, L, h, w) each
        return mean, logvar.clamp(-30.0, 20.0)  # LDM's clamp keeps exp() finite

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) from latents (B, latent_channels, h, w)."""
        return self.decoder(z)

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction of ``x`` through a posterior sample, with the posterior's stats."""
        mean, logvar = self.encode(x)
        return self.decode(sample_posterior(mean, logvar, generator)), mean, logvar


def sample_posterior(
    mean: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Reparameterised sample ``mean + exp(logvar / 2) * eps``."""
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + torch.exp(0.5 * logvar) * eps


def autoencoder_loss(
    model: Autoencoder, x: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss, reconstruction, kl)`` with ``loss = reconstruction + kl_weight * kl``.

    ``reconstruction`` is the mean squared error per pixel; ``kl`` is KL(q(z|x) || N(0, I))
    summed over a latent and divided by the pixels of its image, so both terms are per pixel
    and ``kl_weight`` plays the role of a beta-VAE's beta.
    """
    recon, mean, logvar = model(x, generator)
    reconstruction = F.mse_loss(recon, x)
    kl_per_image = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)  # (B,)
    kl = kl_per_image.mean() / x[0].numel()
    return reconstruction + model.config.kl_weight * kl, reconstruction, kl


def train_autoencoder(
    images: torch.Tensor,
    config: AutoencoderConfig,
    *,
    steps: int = 500,
    generator: torch.Generator | None = None,
    batch_size: int = 64,
    lr: float = 1e-3,
    callback=None,
) -> Autoencoder:
    """Train an :class:`Autoencoder` on ``images`` with Adam and return it in eval mode.

    A pure function of its arguments: initial weights, batches and posterior noise all come
    from ``generator`` (a fresh one seeded 0 when omitted); ``callback(step, loss, rec, kl)``
    is called after every step with float values, e.g. for logging.
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    seed = int(torch.randint(2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Autoencoder(config)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for step in range(steps):
        index = torch.randint(images.shape[0], (batch_size,), generator=generator)
        loss, rec, kl = autoencoder_loss(model, images[index], generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if callback is not None:
            callback(step, loss.item(), rec.item(), kl.item())
    return model.eval()


@torch.no_grad()
def to_latents(
    model: Autoencoder,
    images: torch.Tensor,
    scale: float = 1.0,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> torch.Tensor:
    """``scale * z`` for ``images``: posterior samples with a generator, else the means."""
    out = []
    for batch in images.split(batch_size):
        mean, logvar = model.encode(batch)
        out.append(mean if generator is None else sample_posterior(mean, logvar, generator))
    return torch.cat(out) * scale


@torch.no_grad()
def from_latents(
    model: Autoencoder, z: torch.Tensor, scale: float = 1.0, batch_size: int = 256
) -> torch.Tensor:
    """Decode scaled latents ``z`` (as made by :func:`to_latents`) back to images."""
    return torch.cat([model.decode(b / scale) for b in z.split(batch_size)])


def latent_scale(
    model: Autoencoder, images: torch.Tensor, generator: torch.Generator | None = None
) -> float:
    """LDM's latent scale factor: 1 / std of posterior samples of ``images``' latents.

    Multiplying latents by it gives them unit variance, the scale the diffusion schedules
    assume.
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    z = to_latents(model, images, 1.0, generator)
    return float(1.0 / z.flatten().std().clamp_min(1e-8))
