"""The images domain's network: the U-Net, label dropout, and (latent mode) a frozen autoencoder.

One ``nn.Module`` so that a checkpoint holds everything sampling needs: the U-Net's weights,
the autoencoder's and the latent scale. Called as ``net(x_t, t, y=None)`` like the U-Net.
"""

from __future__ import annotations

import torch
from torch import nn

from diffkit.domains.images.autoencoder import (
    Autoencoder,
    AutoencoderConfig,
    from_latents,
    to_latents,
)
from diffkit.domains.images.unet import UNet, UNetConfig, drop_labels
from diffkit.training import mix_seed


class ImageDenoiser(nn.Module):
    """A :class:`UNet` with label dropout in training mode and an optional autoencoder.

    Label dropout (each label replaced by the null class with probability ``label_dropout``)
    teaches the conditional model its unconditional twin, which classifier-free guidance
    needs. Its random draws come from a generator seeded by ``(seed, call count)``; the
    count is a buffer, so it is saved with the weights and a resumed run continues the
    same sequence.

    In latent mode ``autoencoder`` is set and frozen: the U-Net works on
    ``latent_scale * z`` and :meth:`decode` maps samples back to images.
    """

    def __init__(
        self,
        unet: UNetConfig,
        *,
        label_dropout: float = 0.0,
        seed: int = 0,
        autoencoder: AutoencoderConfig | None = None,
    ):
        super().__init__()
        self.unet = UNet(unet)
        self.label_dropout, self.seed = label_dropout, seed
        self.register_buffer("dropout_calls", torch.zeros((), dtype=torch.long))
        self.autoencoder = (
            Autoencoder(autoencoder).requires_grad_(False) if autoencoder is not None else None
        )
        self.register_buffer("latent_scale", torch.ones(()))

    @property
    def num_classes(self) -> int | None:
        return self.unet.config.num_classes

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None):
        if y is not None and self.training and self.label_dropout > 0 and self.num_classes:
            g = torch.Generator(device=y.device)
            g.manual_seed(mix_seed(self.seed, int(self.dropout_calls)))
            self.dropout_calls += 1
            y = drop_labels(y, self.label_dropout, self.num_classes, g)
        return self.unet(x, t, y)

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
