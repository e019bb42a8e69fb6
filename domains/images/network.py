"""The images domain's network: the U-Net, label dropout, and (latent mode) a frozen autoencoder.

One ``nn.Module`` so that a checkpoint holds everything sampling needs: the U-Net's weights,
the autoencoder's and the latent scale. Called as ``net(x_t, t, y=None)`` like the U-Net.
"""

from __future__ import annotations

import torch
from torch import nn

from diffkit.seeding import mix_seed

from .autoencoder import (
    Autoencoder,
    AutoencoderConfig,
    from_latents,
    to_latents,
)
from .unet import UNet, UNetConfig, drop_labels


class ImageDenoiser(nn.Module):
    """A :class:`UNet` with training-time label dropout and flips, and an optional autoencoder.

    Label dropout (each label replaced by the null class with probability ``label_dropout``)
    teaches the conditional model its unconditional twin, which classifier-free guidance
    needs. With ``hflip``, a random half of each training batch is mirrored around the U-Net:
    ``flip(unet(flip(x_t)))``; as the noise is symmetric this is exactly training on
    randomly flipped images, without the data loader holding random state. The draws come
    from a generator seeded by ``(seed, call count)``; the count is a buffer, so it is saved
    with the weights and a resumed run continues the same sequence.

    In latent mode ``autoencoder`` is set and frozen: the U-Net works on
    ``latent_scale * z`` and :meth:`decode` maps samples back to images.
    """

    def __init__(
        self,
        unet: UNetConfig,
        *,
        label_dropout: float = 0.0,
        hflip: bool = False,
        seed: int = 0,
        autoencoder: AutoencoderConfig | None = None,
    ):
        super().__init__()
        self.unet = UNet(unet)
        self.label_dropout, self.hflip, self.seed = label_dropout, hflip, seed
        self.register_buffer("training_calls", torch.zeros((), dtype=torch.long))
        self.autoencoder = (
            Autoencoder(autoencoder).requires_grad_(False) if autoencoder is not None else None
        )
        self.register_buffer("latent_scale", torch.ones(()))

    @property
    def num_classes(self) -> int | None:
        return self.unet.config.num_classes

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None):
        drop = y is not None and self.label_dropout > 0 and self.num_classes is not None
        if not (self.training and (drop or self.hflip)):
            return self.unet(x, t, y)
        g = torch.Generator(device=x.device)
        g.manual_seed(mix_seed(self.seed, int(self.training_calls)))
        self.training_calls += 1
        if drop:
            y = drop_labels(y, self.label_dropout, self.num_classes, g)
        if not self.hflip:
            return self.unet(x, t, y)
        flip = (torch.rand(x.shape[0], generator=g, device=x.device) < 0.5)[:, None, None, None]
        out = self.unet(torch.where(flip, x.flip(-1), x), t, y)
        return torch.where(flip, out.flip(-1), out)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Scaled latents (posterior means) of images; the images themselves in pixel mode."""
        if self.autoencoder is None:
            return images
        return to_latents(self.autoencoder, images, float(self.latent_scale))

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Images from what the U-Net samples: decoded latents, or ``x`` in pixel mode."""
        if self.autoencoder is None:
            return x
        return from_latents(self.autoencoder, x, float(self.latent_scale))
