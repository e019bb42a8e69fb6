"""A small MLP denoiser for low-dimensional points, with a sinusoidal time embedding."""

from __future__ import annotations

import math

import torch
from torch import nn

Tensor = torch.Tensor


def time_embedding(t: Tensor, dim: int, scale: float = 1.0) -> Tensor:
    """Sinusoidal embedding of ``scale * t``, (B,) -> (B, dim).

    Discrete schedules pass steps 0..T-1 (scale 1); continuous ones times in [0, 1], which
    want ``scale`` near 1000 so the low frequencies still vary.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    angles = scale * t.float()[:, None] * freqs[None]  # (B, half)
    return torch.cat([angles.sin(), angles.cos()], dim=1)  # (B, 2 * half)


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
            torch.cat([x, time_embedding(t, self.time_dim, self.time_scale).to(x.dtype)], dim=1)
        )
