"""Network building blocks every domain may share (pure torch, nothing domain-specific)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0, scale: float = 1.0):
    """Sinusoidal embedding ``(B,) -> (B, dim)`` of ``scale * t`` (Transformer / DDPM).

    Discrete schedules pass steps 0..T-1 (scale 1); continuous ones times in [0, 1], which
    want ``scale`` near 1000 so that the low frequencies still vary.
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = scale * t.float()[:, None] * freqs[None]  # (B, half)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (B, 2 * half)
    return F.pad(emb, (0, dim % 2))  # (B, dim)
