"""TimeGrad's conditional denoiser: dilated residual 1-D convolutions over the series axis.

After Rasul et al. 2021, Sec. 3 / Fig. 2 and the reference ``EpsilonTheta`` of pytorch-ts,
itself DiffWave's (Kong et al. 2021) residual stack: the D-dimensional vector of one time
step is read as a 1-channel signal of length D; each residual layer adds the diffusion-step
embedding, applies a dilated convolution plus the projected conditioning, a gated
activation (sigmoid * tanh) and a 1x1 convolution split into residual and skip parts.

Differences from the reference, for any D: convolutions keep the length D with "same"
padding (circular where D allows it, zeros otherwise) instead of padding 1x1 convolutions
by 2 and trimming with unpadded 3-wide ones; the output projection's bias is zeroed too,
so the network predicts exactly 0 at initialisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from diffkit.errors import ConfigError, ShapeError

_SLOPE = 0.4  # leaky-ReLU slope of the reference


@dataclass(frozen=True)
class DenoiserConfig:
    """Architecture of :class:`ConditionalDenoiser` (reference values of TimeGrad).

    Parameters
    ----------
    residual_layers
        Number of gated residual layers.
    residual_channels
        Channels of the residual stream.
    dilation_cycle_length
        Layer i uses dilation ``2 ** (i % dilation_cycle_length)``.
    step_embedding_dim
        Number of sinusoid frequencies of the diffusion-step embedding (sin and cos each).
    step_hidden_dim
        Width of the MLP that maps the step embedding into each layer.
    max_cond_hidden
        Cap on the width of the conditioning upsampler's middle layer (the reference's
        D // 2): uncapped, its D // 2 x D weights make the cost quadratic in D (2 million
        weights at 2,000 series); no change up to 256 series.
    """

    residual_layers: int = 8
    residual_channels: int = 8
    dilation_cycle_length: int = 2
    step_embedding_dim: int = 16
    step_hidden_dim: int = 64
    max_cond_hidden: int = 128

    def __post_init__(self):
        for name in (
            "residual_layers",
            "residual_channels",
            "dilation_cycle_length",
            "step_embedding_dim",
            "step_hidden_dim",
            "max_cond_hidden",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"denoiser {name} must be at least 1; got {getattr(self, name)}.")


def step_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """DiffWave's sinusoidal embedding of a (float) diffusion step: (N,) -> (N, 2 * dim)."""
    exponents = torch.arange(dim, device=t.device, dtype=torch.float32) * 4.0 / dim
    angles = t.float()[:, None] * 10.0 ** exponents[None, :]  # (N, dim)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)  # (N, 2 * dim)


class SeriesConv(nn.Conv1d):
    """A 1-D convolution over the series axis of channels-major (C, N, D) tensors.

    Same weights, initialisation and result as ``nn.Conv1d`` with "same" padding (circular
    where D allows it, zeros otherwise) applied to (N, C, D), computed as one matrix product
    of shifted copies: for signals of a few values and channels, as here, that is several
    times faster on CPU than a convolution kernel, backward included. Channels first keeps
    each channel block contiguous, so the gated activation's halves stay fast to read.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, length: int, dilation: int = 1):
        pad = dilation * (kernel - 1) // 2
        # Circular padding needs the signal to be at least as long as the padding.
        mode = "circular" if 0 < pad < length else "zeros"
        super().__init__(c_in, c_out, kernel, padding=pad, dilation=dilation, padding_mode=mode)
        self.offsets = tuple(dilation * j - pad for j in range(kernel))

    def _shifted(self, x: torch.Tensor, offset: int) -> torch.Tensor:
        # out[..., i] = x[..., i + offset], wrapped around or zero outside the signal
        if offset == 0:
            return x
        if self.padding_mode == "circular":
            return torch.roll(x, -offset, dims=-1)
        D = x.shape[-1]
        out = torch.zeros_like(x)
        if abs(offset) < D:
            if offset > 0:
                out[..., : D - offset] = x[..., offset:]
            else:
                out[..., -offset:] = x[..., : D + offset]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x (C_in, N, D) -> (C_out, N, D)
        _, N, D = x.shape
        shifted = [self._shifted(x, o) for o in self.offsets]
        parts = shifted[0] if len(shifted) == 1 else torch.cat(shifted, dim=0)  # (k*C_in, N, D)
        weight = self.weight.permute(0, 2, 1).reshape(self.out_channels, -1)  # (C_out, k*C_in)
        out = torch.addmm(self.bias[:, None], weight, parts.reshape(-1, N * D))  # (C_out, N*D)
        return out.view(self.out_channels, N, D)


class _ResidualLayer(nn.Module):
    def __init__(self, channels: int, hidden: int, dilation: int, length: int):
        super().__init__()
        self.step_projection = nn.Linear(hidden, channels)
        self.dilated_conv = SeriesConv(channels, 2 * channels, 3, length, dilation)
        self.cond_projection = SeriesConv(1, 2 * channels, 1, length)
        self.output_projection = SeriesConv(channels, 2 * channels, 1, length)
        nn.init.kaiming_normal_(self.cond_projection.weight)
        nn.init.kaiming_normal_(self.output_projection.weight)

    def forward(self, x, cond, step):
        # x (C, N, D), cond (1, N, D), step (N, hidden)
        y = x + self.step_projection(step).T[:, :, None]  # (C, N, D)
        y = self.dilated_conv(y) + self.cond_projection(cond)  # (2C, N, D)
        gate, signal = y.chunk(2, dim=0)
        y = torch.sigmoid(gate) * torch.tanh(signal)  # (C, N, D)
        y = F.leaky_relu(self.output_projection(y), _SLOPE)  # (2C, N, D)
        residual, skip = y.chunk(2, dim=0)
        return (x + residual) / math.sqrt(2.0), skip


class ConditionalDenoiser(nn.Module):
    """Predicts the noise of one time step's D-vector given the RNN's conditioning vector.

    Called as ``denoiser(x_t, t, cond=h)`` with x_t of shape (N, D), t of shape (N,) (the
    diffusion step as a float) and h of shape (N, H); returns a tensor of shape (N, D).

    Parameters
    ----------
    target_dim
        D, the number of series.
    cond_dim
        H, the size of the conditioning vector.
    config
        Architecture; TimeGrad's reference by default.
    """

    def __init__(self, target_dim: int, cond_dim: int, config: DenoiserConfig | None = None):
        super().__init__()
        config = config or DenoiserConfig()
        self.target_dim, self.cond_dim, self.config = target_dim, cond_dim, config
        C, hidden = config.residual_channels, config.step_hidden_dim
        self.input_projection = SeriesConv(1, C, 1, target_dim)
        self.step_mlp = nn.Sequential(
            nn.Linear(2 * config.step_embedding_dim, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
        )
        # The reference upsamples H -> D // 2 -> D with leaky ReLUs.
        mid = max(min(target_dim // 2, config.max_cond_hidden), 1)
        self.cond_upsampler = nn.Sequential(
            nn.Linear(cond_dim, mid),
            nn.LeakyReLU(_SLOPE),
            nn.Linear(mid, target_dim),
            nn.LeakyReLU(_SLOPE),
        )
        self.layers = nn.ModuleList(
            _ResidualLayer(C, hidden, 2 ** (i % config.dilation_cycle_length), target_dim)
            for i in range(config.residual_layers)
        )
        self.skip_projection = SeriesConv(C, C, 3, target_dim)
        self.output_projection = SeriesConv(C, 1, 3, target_dim)
        nn.init.kaiming_normal_(self.input_projection.weight)
        nn.init.kaiming_normal_(self.skip_projection.weight)
        nn.init.zeros_(self.output_projection.weight)
        nn.init.zeros_(self.output_projection.bias)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if x_t.dim() != 2 or x_t.shape[1] != self.target_dim:
            raise ShapeError(
                f"denoiser input has shape {tuple(x_t.shape)} but (N, {self.target_dim}) is "
                f"needed; pass one row of {self.target_dim} series values per example."
            )
        # Channels-major throughout: (C, N, D), the D series values as the signal axis.
        x = F.leaky_relu(self.input_projection(x_t[None]), _SLOPE)  # (C, N, D)
        step = self.step_mlp(step_embedding(t, self.config.step_embedding_dim))  # (N, hidden)
        cond_up = self.cond_upsampler(cond)[None]  # (1, N, D)
        skip = 0.0
        for layer in self.layers:
            x, s = layer(x, cond_up, step)
            skip = skip + s
        x = skip / math.sqrt(len(self.layers))  # (C, N, D)
        x = F.leaky_relu(self.skip_projection(x), _SLOPE)
        return self.output_projection(x)[0]  # (N, D)
