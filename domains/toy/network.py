"""A small MLP denoiser for low-dimensional points, with a sinusoidal time embedding."""

from __future__ import annotations

import torch
from torch import nn

from diffkit.nn import timestep_embedding

Tensor = torch.Tensor


class MLP(nn.Module):
    """``net(x_t, t) -> prediction`` for points of shape (B, dim)."""

    def __init__(
        self,
        dim: int = 2,
        hidden: int = 128,
        depth: int = 3,
        time_dim: int = 32,
        time_scale: float = 1.0,
    ):
        super().__init__()
        self.time_dim, self.time_scale = time_dim, time_scale
        layers: list[nn.Module] = [nn.Linear(dim + time_dim, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, dim))
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.body(
            torch.cat(
                [x, timestep_embedding(t, self.time_dim, scale=self.time_scale).to(x.dtype)], dim=1
            )
        )
