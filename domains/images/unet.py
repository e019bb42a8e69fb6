"""U-Net noise predictor in the DDPM / improved-diffusion family, called as ``net(x_t, t, y=...)``.

Residual blocks with GroupNorm + SiLU and scale-shift (FiLM) conditioning on a sinusoidal time
embedding, self-attention at chosen levels through ``F.scaled_dot_product_attention``, optional
class conditioning with a reserved null class for classifier-free guidance. Inputs whose sides
the down-sampling does not divide (28x28 with three down-samplings) are zero-padded on the
bottom/right inside ``forward`` and the output cropped back. The network knows nothing of
schedules: ``t`` is whatever number the caller uses for the diffusion time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from diffkit.errors import ConfigError, ShapeError
from diffkit.nn import timestep_embedding


@dataclass(frozen=True)
class UNetConfig:
    """Configuration of :class:`UNet`; the defaults are the 28x28 MNIST model (1.74M parameters).

    Widths 32/64/64 at 28/14/7 px with two residual blocks per level and attention at 7x7
    follow DDPM's CIFAR-10 layout scaled down so that training runs at tens of images per
    second per CPU core; diffusers' ``UNet2DModel`` has 1.74M parameters at the same layout
    with ``resnet_time_scale_shift="scale_shift"`` and 1.62M with its default additive time
    embedding (scale-shift conditioning doubles the per-block time projections).

    Parameters
    ----------
    in_channels : int
        Image channels (1 grey, 3 RGB, 4 for the autoencoder's latents).
    out_channels : int or None
        Output channels; ``None`` means ``in_channels`` (an eps, x0 or v prediction).
    base_channels : int
        Width of the first level; the time embedding is ``4 * base_channels`` wide.
    channel_mults : tuple of int
        Width of each level as a multiple of ``base_channels``; there are
        ``len(channel_mults) - 1`` down-samplings by 2.
    num_res_blocks : int
        Residual blocks per level on the way down (the way up has one more, as in DDPM).
    attention_levels : tuple of int
        Level indices (0 = full resolution) whose blocks get self-attention.
    head_channels : int
        Channels per attention head; a level of width ``c`` has ``max(1, c // head_channels)``.
    mid_attention : bool
        Self-attention between the two residual blocks at the bottom.
    dropout : float
        Dropout in every residual block; 0 suits short CPU runs that underfit, DDPM used 0.1
        on CIFAR-10 for long ones.
    num_classes : int or None
        Class-conditional when set; label ``num_classes`` is the null (unconditional) class.
    norm_groups : int
        GroupNorm groups; every level width must be a multiple of it.
    time_scale : float
        Multiplier applied to ``t`` before the sinusoidal embedding: 1 for discrete steps
        0..T-1, e.g. 1000 for continuous time in [0, 1].
    """

    in_channels: int = 1
    out_channels: int | None = None
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 2
    attention_levels: tuple[int, ...] = (2,)
    head_channels: int = 32
    mid_attention: bool = True
    dropout: float = 0.0
    num_classes: int | None = None
    norm_groups: int = 32
    time_scale: float = 1.0

    def __post_init__(self) -> None:
        # Lists (from a JSON checkpoint) become tuples so the config stays hashable.
        object.__setattr__(self, "channel_mults", tuple(self.channel_mults))
        object.__setattr__(self, "attention_levels", tuple(self.attention_levels))
        if self.in_channels < 1 or self.base_channels < 1 or self.num_res_blocks < 1:
            raise ConfigError(
                "in_channels, base_channels and num_res_blocks must be positive; raise them."
            )
        if not self.channel_mults or min(self.channel_mults) < 1:
            raise ConfigError("channel_mults must be a non-empty tuple of positive integers.")
        for level in self.attention_levels:
            if not 0 <= level < len(self.channel_mults):
                raise ConfigError(
                    f"attention level {level} does not exist; use indices "
                    f"0..{len(self.channel_mults) - 1} of channel_mults."
                )
        for mult in self.channel_mults:
            if (self.base_channels * mult) % self.norm_groups:
                raise ConfigError(
                    f"level width {self.base_channels * mult} is not a multiple of "
                    f"norm_groups={self.norm_groups}; change base_channels or norm_groups."
                )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout {self.dropout} must lie in [0, 1); lower it.")
        if self.num_classes is not None and self.num_classes < 1:
            raise ConfigError(f"num_classes {self.num_classes} must be positive or None.")

    @property
    def size_multiple(self) -> int:
        """Height and width are padded up to a multiple of this inside ``forward``."""
        return 2 ** (len(self.channel_mults) - 1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, FiLM on the second norm from the (already SiLU'd) embedding."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * out_ch)
        self.norm2 = nn.GroupNorm(groups, out_ch)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity (improved-diffusion)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)  # (B, C, 1, 1) each
        h = F.silu(torch.addcmul(shift, self.norm2(h), scale + 1.0))  # norm(h) * (1 + s) + b
        return self.skip(x) + self.conv2(self.dropout(h))


class SelfAttention(nn.Module):
    """Multi-head self-attention over the H*W positions, pre-GroupNorm, residual.

    The projections are linear layers on the (B, HW, C) tokens, as in diffusers' ``Attention``:
    on CPU a ``Linear`` over 49 tokens costs a third of the 1x1 convolution it equals. Weights
    saved by the former 1x1 convolutions (shape (out, in, 1, 1)) load unchanged.
    """

    def __init__(self, channels: int, head_channels: int, groups: int):
        super().__init__()
        self.heads = max(1, channels // head_channels)
        if channels % self.heads:
            raise ConfigError(
                f"{channels} channels do not split into {self.heads} heads; "
                "choose head_channels dividing every attention level's width."
            )
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Linear(channels, 3 * channels)  # [q | k | v], each head-major
        self.proj = nn.Linear(channels, channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("qkv.weight", "proj.weight"):
            weight = state_dict.get(prefix + name)
            if weight is not None and weight.ndim == 4:  # a 1x1 convolution's (out, in, 1, 1)
                state_dict[prefix + name] = weight.flatten(1)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B, HW, C)
        qkv = self.qkv(tokens).reshape(b, h * w, 3 * self.heads, c // self.heads)
        q, k, v = qkv.transpose(1, 2).chunk(3, dim=1)  # (B, heads, HW, d) each, unit stride on d
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, h * w, c)
        return x + self.proj(out).transpose(1, 2).reshape(b, c, h, w)


class Downsample(nn.Module):
    """Stride-2 3x3 convolution; halves H and W."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour doubling then a 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Step(nn.Module):
    """One residual block, then optional attention, then optional up-sampling."""

    def __init__(self, res: ResBlock, attn: nn.Module | None, up: nn.Module | None = None):
        super().__init__()
        self.res, self.attn, self.up = res, attn, up

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        x = self.res(x, emb)
        if self.attn is not None:
            x = self.attn(x)
        if self.up is not None:
            x = self.up(x)
        return x


class UNet(nn.Module):
    """The U-Net; see :class:`UNetConfig` for its knobs.

    Called as ``net(x, t, y=None)`` with ``x`` of shape (B, C, H, W), ``t`` a float tensor (B,)
    (or a scalar) and ``y`` optional long labels (B,); returns a tensor of ``x``'s shape with
    ``out_channels`` channels. ``y`` is ignored by an unconditional net; a conditional net given
    no ``y`` uses the null class ``num_classes``.
    """

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = c = config
        widths = [c.base_channels * m for m in c.channel_mults]
        emb_dim = 4 * c.base_channels
        groups = c.norm_groups

        def res(i: int, o: int) -> ResBlock:
            return ResBlock(i, o, emb_dim, c.dropout, groups)

        def attn(ch: int, level: int) -> nn.Module | None:
            return (
                SelfAttention(ch, c.head_channels, groups) if level in c.attention_levels else None
            )

        self.time_mlp = nn.Sequential(
            nn.Linear(c.base_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        self.class_emb = (
            nn.Embedding(c.num_classes + 1, emb_dim) if c.num_classes is not None else None
        )
        self.conv_in = nn.Conv2d(c.in_channels, widths[0], 3, padding=1)

        self.down = nn.ModuleList()
        skip_widths, ch = [widths[0]], widths[0]
        for level, width in enumerate(widths):
            for _ in range(c.num_res_blocks):
                self.down.append(_Step(res(ch, width), attn(width, level)))
                ch = width
                skip_widths.append(ch)
            if level < len(widths) - 1:
                self.down.append(Downsample(ch))
                skip_widths.append(ch)

        mid_attn = SelfAttention(ch, c.head_channels, groups) if c.mid_attention else None
        self.mid = nn.ModuleList([_Step(res(ch, ch), mid_attn), _Step(res(ch, ch), None)])

        self.up = nn.ModuleList()
        for level in reversed(range(len(widths))):
            width = widths[level]
            for i in range(c.num_res_blocks + 1):
                up = Upsample(width) if level > 0 and i == c.num_res_blocks else None
                self.up.append(_Step(res(ch + skip_widths.pop(), width), attn(width, level), up))
                ch = width

        self.norm_out = nn.GroupNorm(groups, ch)
        self.conv_out = nn.Conv2d(ch, c.out_channels or c.in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        c = self.config
        if x.ndim != 4 or x.shape[1] != c.in_channels:
            raise ShapeError(
                f"expected images of shape (B, {c.in_channels}, H, W), got {tuple(x.shape)}; "
                "match UNetConfig.in_channels to the data."
            )
        batch, height, width = x.shape[0], x.shape[2], x.shape[3]
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(batch)  # (B,)
        emb = self.time_mlp(timestep_embedding(t * c.time_scale, c.base_channels))  # (B, E)
        if self.class_emb is not None:
            if y is None:
                y = torch.full((batch,), c.num_classes, dtype=torch.long, device=x.device)
            emb = emb + self.class_emb(check_labels(y, c.num_classes))
        emb = F.silu(emb)  # every block's FiLM projection starts with SiLU (improved-diffusion)

        m = c.size_multiple
        pad_h, pad_w = -height % m, -width % m
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))  # (B, C, H', W'), H' and W' multiples of m

        h = self.conv_in(x)
        skips = [h]
        for block in self.down:
            h = block(h, emb)
            skips.append(h)
        for block in self.mid:
            h = block(h, emb)
        for block in self.up:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)  # (B, C_h + C_skip, H, W)
        out = self.conv_out(F.silu(self.norm_out(h)))
        return out[:, :, :height, :width] if pad_h or pad_w else out


def check_labels(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Return ``y`` as long labels (B,) after checking they lie in 0..num_classes (null)."""
    if y.dtype.is_floating_point or y.ndim != 1:
        raise ShapeError(
            f"class labels must be a 1-D integer tensor (B,), got {y.dtype} {tuple(y.shape)}; "
            "pass y as torch.long."
        )
    if y.numel() and (int(y.min()) < 0 or int(y.max()) > num_classes):
        raise ShapeError(
            f"class labels must lie in 0..{num_classes} ({num_classes} is the null class); "
            "remap the labels or raise num_classes."
        )
    return y.long()


def drop_labels(
    y: torch.Tensor, p: float, num_classes: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Replace each label by the null class ``num_classes`` with probability ``p``.

    Training with this label dropout teaches one network both the conditional and the
    unconditional model, which classifier-free guidance combines (Ho & Salimans 2022).

    Parameters
    ----------
    y : torch.Tensor
        Long labels (B,) in 0..num_classes-1.
    p : float
        Drop probability in [0, 1].
    num_classes : int
        Number of real classes; the null label is this number.
    generator : torch.Generator, optional
        Source of randomness, on ``y``'s device.

    Returns
    -------
    torch.Tensor
        New labels (B,); ``y`` is not modified.
    """
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"label dropout {p} must lie in [0, 1]; typical values are 0.1-0.2.")
    drop = torch.rand(y.shape, generator=generator, device=y.device) < p
    return torch.where(drop, torch.full_like(y, num_classes), y)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) scalar parameters in ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
