"""The transformer block shared by the text domain's networks (diffusion LM and AR baseline).

One pre-LN block (Xiong et al. 2020): ``x + attn(LN(x))`` then ``x + mlp(LN(x))``, with an
optional causal mask, a key padding mask and optional adaLN-Zero modulation (Peebles & Xie
2023, DiT) so a diffusion denoiser can inject its time embedding. Sharing it lets the
baseline and the diffusion model be compared at one parameter count.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from diffkit.errors import ConfigError


def attention_mask(pad: torch.Tensor | None, causal: bool, length: int, device=None):
    """The boolean mask ``scaled_dot_product_attention`` takes: True where a query may attend.

    Parameters
    ----------
    pad
        (B, L) bool, True at real tokens; keys where it is False are never attended to.
        None means every position is real.
    causal
        Whether query ``i`` may only see keys ``j <= i``.
    length
        L, used when ``pad`` is None.

    Returns
    -------
    torch.Tensor or None
        (B, 1, L, L) bool (or (1, 1, L, L) without ``pad``), or None when nothing is masked.
        The diagonal is always allowed, so a padded query never has an empty row (no NaN).
    """
    if pad is None and not causal:
        return None
    device = pad.device if pad is not None else device
    eye = torch.eye(length, dtype=torch.bool, device=device)
    mask = torch.ones(length, length, dtype=torch.bool, device=device)
    if causal:
        mask = torch.tril(mask)
    mask = mask[None, None]  # (1, 1, L, L)
    if pad is not None:
        mask = mask & pad[:, None, None, :].bool()  # (B, 1, L, L): keys masked
    return mask | eye


class Block(nn.Module):
    """Pre-LN transformer block: multi-head self-attention and a GELU MLP, each residual.

    Parameters
    ----------
    width
        Model width D; must be divisible by ``heads``.
    heads
        Number of attention heads.
    dropout
        Dropout on attention weights and on both residual branches.
    mlp_ratio
        Hidden width of the MLP as a multiple of ``width``.
    """

    def __init__(self, width: int, heads: int, *, dropout: float = 0.0, mlp_ratio: int = 4):
        super().__init__()
        if width % heads:
            raise ConfigError(
                f"width {width} is not divisible by heads {heads}; pick a width that is a "
                "multiple of the number of heads."
            )
        self.heads = heads
        self.dropout = dropout
        self.norm1 = nn.LayerNorm(width, elementwise_affine=True)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=True)
        self.mlp = nn.Sequential(
            nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width)
        )
        self.drop = nn.Dropout(dropout)

    def attend(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Multi-head self-attention of ``h`` (B, L, D) under a boolean ``mask``."""
        B, L, D = h.shape
        q, k, v = self.qkv(h).view(B, L, 3, self.heads, D // self.heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))  # (B, H, L, D/H)
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return self.proj(out.transpose(1, 2).reshape(B, L, D))  # (B, L, D)

    def forward(
        self,
        x: torch.Tensor,
        *,
        pad: torch.Tensor | None = None,
        causal: bool = False,
        modulation: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Apply the block to ``x`` (B, L, D).

        Parameters
        ----------
        pad
            (B, L) bool, True at real tokens (keys elsewhere are ignored).
        causal
            Causal (left-to-right) attention.
        modulation
            None, or (B, 6, D): shift, scale, gate for attention then MLP (adaLN-Zero):
            ``x + gate * f(LN(x) * (1 + scale) + shift)``.
        mask
            A precomputed :func:`attention_mask` (overrides ``pad`` and ``causal``), so a
            stack of blocks builds it once.
        """
        if mask is None:
            mask = attention_mask(pad, causal, x.shape[1], x.device)
        if modulation is None:
            x = x + self.drop(self.attend(self.norm1(x), mask))
            return x + self.drop(self.mlp(self.norm2(x)))
        shift1, scale1, gate1, shift2, scale2, gate2 = modulation.unbind(1)  # each (B, D)
        h = self.norm1(x) * (1 + scale1[:, None]) + shift1[:, None]
        x = x + gate1[:, None] * self.drop(self.attend(h, mask))
        h = self.norm2(x) * (1 + scale2[:, None]) + shift2[:, None]
        return x + gate2[:, None] * self.drop(self.mlp(h))


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Transformer sinusoidal features of ``t`` (B,) (positions or diffusion times): (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]  # (B, half)
    emb = torch.cat([angles.cos(), angles.sin()], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
