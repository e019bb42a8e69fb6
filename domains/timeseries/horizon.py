"""The whole horizon at once: a transformer denoises the (horizon, series) block jointly.

TimeGrad (:mod:`.module`) draws a forecast one step at a time, each step's values denoised
given an RNN's state. Here, as in CSDI and TSDiff, the whole horizon is one diffusion
sample: every position attends to the observed context and to the rest of the horizon, so
a forecast's daily shape is drawn jointly rather than chained. On ETTh1's validation
windows this model (context 168) reached CRPS-sum 0.160 against TimeGrad's 0.180 at the same
3,000 steps (``benchmarks/results/timeseries-horizon.md``).

One token per time step of context + horizon: its D values (each window standardised by its
context's mean and standard deviation per series; missing values enter as 0 with indicator
0), D observed indicators, whether it lies in the horizon, its time features and
covariates; learned positions; the diffusion time's embedding added to every token; a
pre-norm transformer encoder without dropout; the prediction (eps, x0 or v) read at the
horizon's tokens. Pure torch; the diffusion (schedule, loss, samplers) is diffkit's core.
"""

from __future__ import annotations

import torch
from torch import nn

from diffkit import diffusion_loss, sample
from diffkit.errors import ShapeError, check_choice
from diffkit.nn import timestep_embedding
from diffkit.schedules import from_config

from .covariates import CovariateInputs
from .features import fill_missing, observed_mask
from .inputs import check_future_features, check_window
from .network_config import RELATIVE_FLOOR, TimeGradConfig

Tensor = torch.Tensor

FORECAST_ROWS = 512  # sample paths denoised per core call: beyond, attention is memory traffic


def last_observed(past: Tensor, observed: Tensor) -> Tensor:
    """Each series' last observed context value (B, 1, D); 0 where none is observed."""
    position = torch.arange(1, past.shape[1] + 1, device=past.device).view(1, -1, 1)
    index = (observed * position).argmax(1, keepdim=True)  # (B, 1, D)
    value = past.gather(1, index)
    return torch.where(observed.any(1, keepdim=True), value, torch.zeros_like(value))


def context_standardisation(
    past: Tensor,
    observed: Tensor,
    min_scale: float,
    floor: float = RELATIVE_FLOOR,
    centre: str = "mean",
):
    """Centre and standard deviation (B, 1, D) of each series over the observed context.

    The centre is the observed values' mean, or (``centre="last"``) the last observed value,
    from which the horizon then departs. The deviation (about the mean) is floored at
    ``floor`` times the mean |x| and at ``min_scale``, so a flat context does not blow its
    horizon up.
    """
    count = observed.sum(1, keepdim=True).clamp_min(1)  # (B, 1, D)
    filled = torch.where(observed, past, torch.zeros_like(past))
    mean = filled.sum(1, keepdim=True) / count
    squares = torch.where(observed, past - mean, torch.zeros_like(past)) ** 2
    std = (squares.sum(1, keepdim=True) / (count - 1).clamp_min(1)).sqrt()
    magnitude = filled.abs().sum(1, keepdim=True) / count
    loc = last_observed(past, observed) if centre == "last" else mean
    return loc, torch.maximum(std, floor * magnitude).clamp_min(min_scale)


class HorizonModel(nn.Module):
    """The whole-horizon network (``architecture="horizon"``) with a core schedule.

    Reads the same tensors as :class:`~.module.TimeGradModel` and has the same ``loss`` and
    ``forecast``; the lags, the RNN and the target (always the standardised level) are
    TimeGrad's alone. Called as the core's denoiser: ``net(x_t, t, past=, observed=,
    feats=)`` gives the prediction (B, Th, D) at the horizon.

    Parameters
    ----------
    config
        The settings: ``transformer_width``, ``transformer_depth``, ``transformer_heads``
        and the data's ``target_dim``, ``context_length``, ``prediction_length``, ``freq``.
    """

    def __init__(self, config: TimeGradConfig):
        super().__init__()
        config.check_complete()
        self.config = config
        D, W = config.target_dim, config.transformer_width
        span = config.context_length + config.prediction_length
        self.schedule = from_config(config.schedule)
        self.covariates = CovariateInputs(config)
        features = config.num_time_features + self.covariates.width
        self.inp = nn.Linear(2 * D + 1 + features, W)
        self.position = nn.Embedding(span, W)
        self.step = nn.Sequential(nn.Linear(W, W), nn.SiLU(), nn.Linear(W, W))
        layer = nn.TransformerEncoderLayer(
            W, config.transformer_heads, 2 * W, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(
            layer, config.transformer_depth, enable_nested_tensor=False
        )
        self.out = nn.Sequential(nn.LayerNorm(W), nn.Linear(W, D))

    def forward(self, x_t: Tensor, t: Tensor, *, past: Tensor, observed: Tensor, feats: Tensor):
        """The prediction (B, Th, D) given x_t (B, Th, D), the diffusion time t (B,), the
        standardised context (B, Tc, D), its observed mask and the features (B, Tc + Th, F)."""
        values = torch.cat([past, x_t], dim=1)  # (B, Tc + Th, D)
        present = torch.cat([observed.to(x_t.dtype), torch.ones_like(x_t)], dim=1)
        flag = torch.zeros_like(values[..., :1])
        flag[:, past.shape[1] :] = 1.0
        h = self.inp(torch.cat([values, present, flag, feats.to(x_t.dtype)], dim=-1))
        h = h + self.position.weight[None] + self.step(timestep_embedding(t, h.shape[-1]))[:, None]
        return self.out(self.encoder(h)[:, past.shape[1] :])  # (B, Th, D)

    def _prepare(self, past_target, past_observed, past_time_feat, future_time_feat, covariates):
        """Standardised, filled context, its mask, loc and scale (B, 1, D), features (B, T, F)."""
        c = self.config
        check_window(c, past_target, past_time_feat, c.history_length, "past")
        check_future_features(c, future_time_feat, past_target.shape[0])
        if future_time_feat.shape[1] != c.prediction_length:
            raise ShapeError(
                f"the horizon network draws {c.prediction_length} steps at once but "
                f"{future_time_feat.shape[1]} were asked; forecast its prediction_length and "
                "keep the steps needed, or train with that --prediction-length."
            )
        ctx = slice(-c.context_length, None)
        past = past_target[:, ctx]
        observed = observed_mask(past, None if past_observed is None else past_observed[:, ctx])
        loc, scale = context_standardisation(
            past, observed, c.min_scale, c.relative_floor, c.horizon_centre
        )
        z = fill_missing((past - loc) / scale, observed)
        covariates = covariates or {}
        dynamic = covariates.get("past_feat_dynamic_real")
        past_feat = self.covariates(
            past_time_feat[:, ctx], None if dynamic is None else dynamic[:, ctx], covariates, "past"
        )
        future_feat = self.covariates(
            future_time_feat, covariates.get("future_feat_dynamic_real"), covariates, "future"
        )
        return z, observed, loc, scale, torch.cat([past_feat, future_feat], dim=1)

    def loss(
        self,
        past_target: Tensor,
        past_observed: Tensor | None,
        future_target: Tensor,
        future_observed: Tensor | None,
        past_time_feat: Tensor,
        future_time_feat: Tensor,
        *,
        reduction: str = "mean",
        horizon_only: bool = False,
        covariates: dict[str, Tensor] | None = None,
        **loss_options,
    ) -> Tensor:
        """The diffusion loss of the standardised horizon over its observed values.

        Arguments as :meth:`~.module.TimeGradModel.loss`, ``loss_options`` (``weighting``,
        ``generator``) those of the core's ``diffusion_loss``; the horizon is all this
        network models, so ``horizon_only`` changes nothing.
        """
        check_choice("reduction", reduction, ("mean", "none"))
        z, observed, loc, scale, feats = self._prepare(
            past_target, past_observed, past_time_feat, future_time_feat, covariates
        )
        check_window(self.config, future_target, future_time_feat, 1, "future")
        fut_observed = observed_mask(future_target, future_observed)  # (B, Th, D)
        x0 = fill_missing((future_target - loc) / scale, fut_observed)
        per_example = diffusion_loss(
            self,
            x0,
            self.schedule,
            prediction=self.config.prediction,
            cond={"past": z, "observed": observed, "feats": feats},
            mask=fut_observed.to(x0.dtype),
            **loss_options,
        )  # (B,) mean over each window's observed horizon values
        if reduction == "none":
            return per_example
        count = fut_observed.flatten(1).sum(1).to(per_example.dtype)
        return (per_example * count).sum() / count.sum().clamp_min(1.0)

    @torch.no_grad()
    def forecast(
        self,
        past_target: Tensor,
        past_observed: Tensor | None,
        past_time_feat: Tensor,
        future_time_feat: Tensor,
        *,
        num_samples: int = 100,
        covariates: dict[str, Tensor] | None = None,
        future_known: Tensor | None = None,
        **sampling,
    ) -> Tensor:
        """Sample paths (B, S, Th, D) of the horizon in the original scale.

        Arguments as :meth:`~.module.TimeGradModel.forecast`; ``sampling`` (``sampler``,
        ``steps``, ``generator``, a sampler's options) goes to the core's ``sample``.
        ``future_known`` values are kept and the rest drawn given them (the core's
        inpainting), the horizon at once.
        """
        z, observed, loc, scale, feats = self._prepare(
            past_target, past_observed, past_time_feat, future_time_feat, covariates
        )
        B, S, D = z.shape[0], num_samples, z.shape[2]
        Th = future_time_feat.shape[1]
        rows = {"past": z, "observed": observed, "feats": feats}
        if future_known is not None:  # standardised like the paths, NaN where unknown
            known = torch.isfinite(future_known)
            rows["known"] = fill_missing((future_known.to(z.dtype) - loc) / scale, known)
            rows["mask"] = known.to(z.dtype)
        rows = {k: v.repeat_interleave(S, dim=0) for k, v in rows.items()}  # (B*S, ...)
        draws = []
        for start in range(0, B * S, FORECAST_ROWS):
            part = {k: v[start : start + FORECAST_ROWS] for k, v in rows.items()}
            inpaint = {k: part.pop(k) for k in ("known", "mask") if k in part}
            draws.append(
                sample(
                    self,
                    (part["past"].shape[0], Th, D),
                    self.schedule,
                    prediction=self.config.prediction,
                    cond=part,
                    device=z.device,
                    dtype=z.dtype,
                    **inpaint,
                    **sampling,
                )
            )
        paths = torch.cat(draws).view(B, S, Th, D)
        return paths * scale[:, None] + loc[:, None]  # loc, scale (B, 1, 1, D)
