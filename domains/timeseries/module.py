"""TimeGrad (Rasul et al. 2021): an RNN over time conditions a denoiser for each step's D-vector.

Pure torch, after GluonTS's ``module.py``: no GluonTS, no pytorch-forecasting, no
Lightning, so the GluonTS estimator, the pytorch-forecasting model and the CLI all wrap
this one module. The diffusion (schedule, loss, samplers) is diffkit's core.

At each time step the RNN reads the mean-scaled lagged values of all D series, one
observed indicator per lagged value (missing values enter as 0 *with* indicator 0), a
learned embedding per series, and Fourier features of the timestamp. Its state, projected
to a conditioning vector h_t, conditions :class:`ConditionalDenoiser` on x_t's D values.
Training is teacher-forced over context + horizon; forecasting runs the RNN one step at a
time and draws each step with a full reverse diffusion, vectorised over samples x batch.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from diffkit import diffusion_loss, sample
from diffkit.errors import check_choice
from diffkit.schedules import from_config

from .covariates import CovariateInputs
from .denoiser import ConditionalDenoiser
from .features import (
    fill_missing,
    lagged_values,
    mean_scale,
    observed_mask,
)
from .inputs import check_future_features, check_window
from .network_config import TimeGradConfig

Tensor = torch.Tensor


class TimeGradModel(nn.Module):
    """TimeGrad's network: RNN over time + conditional denoiser, with a core schedule.

    Time features come from ``features.time_features(index, config.freq)``; ``past_*``
    tensors hold at least ``config.history_length`` steps (only the last ones are used).
    Observed masks may be None (then NaN marks missing values) and are combined with NaN.

    Parameters
    ----------
    config
        The settings.
    """

    def __init__(self, config: TimeGradConfig):
        super().__init__()
        config.check_complete()
        self.config = config
        D, L = config.target_dim, len(config.lags)
        self.schedule = from_config(config.schedule)
        self.embedding = nn.Embedding(D, config.embedding_dim)
        self.covariates = CovariateInputs(config)
        input_size = 2 * D * L + D * config.embedding_dim + config.num_time_features
        input_size += self.covariates.width
        rnn = nn.GRU if config.cell_type == "gru" else nn.LSTM
        self.rnn = rnn(
            input_size,
            config.num_cells,
            config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.cond_projection = nn.Linear(config.num_cells, config.cond_dim)
        self.denoiser = ConditionalDenoiser(D, config.cond_dim, config.denoiser)

    def _prepare(self, past_target, past_observed, past_time_feat, past_dynamic=None, static=None):
        """Last history_length steps, mask, scale (B, 1, D) and the scaled, filled history."""
        c = self.config
        check_window(c, past_target, past_time_feat, c.history_length, "past")
        past_target = past_target[:, -c.history_length :]
        if past_observed is not None:
            past_observed = past_observed[:, -c.history_length :]
        observed = observed_mask(past_target, past_observed)  # (B, Tp, D)
        if c.scaling:
            ctx = slice(-c.context_length, None)
            scale = mean_scale(past_target[:, ctx], observed[:, ctx], c.min_scale)  # (B, 1, D)
        else:
            scale = torch.ones_like(past_target[:, :1])
        scaled = fill_missing(past_target, observed) / scale  # (B, Tp, D)
        ctx_feat = past_time_feat[:, -c.context_length :]
        if past_dynamic is not None:
            past_dynamic = past_dynamic[:, -c.context_length :]
        return observed, scale, scaled, self.covariates(ctx_feat, past_dynamic, static, "past")

    def _step_scale(self, scaled: Tensor, observed: Tensor) -> Tensor:
        """Mean |change| per series over the context's observed pairs (B, 1, D); 1 for levels.

        The change is over ``target_lag`` steps: 1 for differences, the season for the
        seasonal target.
        """
        c, lag = self.config, self.config.target_lag
        if lag == 0:
            return torch.ones_like(scaled[:, :1])
        ctx = slice(-c.context_length, None)
        change = scaled[:, lag:] - scaled[:, :-lag]  # (B, Tp - lag, D)
        pairs = observed[:, lag:] & observed[:, :-lag]
        return mean_scale(change[:, ctx], pairs[:, ctx], c.min_scale)  # (B, 1, D)

    def _diffused(self, seq: Tensor, obs: Tensor, length: int, step_scale: Tensor):
        """What the diffusion models at the last ``length`` positions of seq, and its mask."""
        lag = self.config.target_lag
        if lag == 0:
            return seq[:, -length:], obs[:, -length:]
        base = seq[:, -length - lag : -lag]  # (B, length, D): the values lag steps before
        change = (seq[:, -length:] - base) / step_scale
        return change, obs[:, -length:] & obs[:, -length - lag : -lag]

    def _base(self, seq: Tensor, obs: Tensor, position: int, previous: Tensor) -> Tensor:
        """The value the target at ``position`` of seq is measured from (B, D).

        ``previous`` is the last observed (or drawn) value: differences skip a missing
        last step, and a seasonal base that is missing falls back on it.
        """
        lag = self.config.target_lag
        if lag == 0:
            return torch.zeros_like(previous)
        if lag == 1:
            return previous
        return torch.where(obs[:, position - lag], seq[:, position - lag], previous)

    def _rnn_inputs(self, seq: Tensor, observed: Tensor, time_feat: Tensor) -> Tensor:
        """RNN inputs for the last ``time_feat.shape[1]`` positions of seq (B, T_in, D)."""
        B, length = seq.shape[0], time_feat.shape[1]
        lags = lagged_values(seq, self.config.lags, length)  # (B, length, D, L)
        lag_obs = lagged_values(observed.to(seq.dtype), self.config.lags, length)
        embed = self.embedding.weight.reshape(1, 1, -1).expand(B, length, -1)  # (B, length, D*E)
        return torch.cat(
            [lags.flatten(2), lag_obs.flatten(2), embed, time_feat.to(seq.dtype)], dim=-1
        )  # (B, length, input_size)

    def loss(
        self,
        past_target: Tensor,
        past_observed: Tensor | None,
        future_target: Tensor,
        future_observed: Tensor | None,
        past_time_feat: Tensor,
        future_time_feat: Tensor,
        *,
        weighting: str | None = None,
        reduction: str = "mean",
        generator: torch.Generator | None = None,
        horizon_only: bool = False,
        covariates: dict[str, Tensor] | None = None,
    ) -> Tensor:
        """Teacher-forced diffusion loss over context + horizon.

        Parameters
        ----------
        past_target, past_observed, past_time_feat
            (B, Tp, D), (B, Tp, D) or None, (B, Tp, F) with Tp >= ``history_length``.
        future_target, future_observed, future_time_feat
            (B, Th, D), (B, Th, D) or None, (B, Th, F).
        weighting
            Loss weighting of :func:`diffkit.diffusion_loss` ("none" or "min_snr").
        reduction
            "mean": a scalar; "none": one value per example, shape (B,).
        generator
            Draws the diffusion times and noise.
        horizon_only
            Score the Th horizon steps alone (a validation loss of what is forecast).
        covariates
            By GluonTS field name: ``past_feat_dynamic_real`` (B, Tp, K) and
            ``future_feat_dynamic_real`` (B, Th, K), ``feat_static_real`` (B, S),
            ``feat_static_cat`` (B, C) integers; those the config declares are needed.

        Returns
        -------
        torch.Tensor
            The mean squared error of the denoiser over every observed value of the
            Tc + Th steps (or the Th), missing values counting nowhere, over the batch or
            per example.
        """
        check_choice("reduction", reduction, ("mean", "none"))
        B, Th, D = future_target.shape  # (B, Th, D)
        check_window(self.config, future_target, future_time_feat, 1, "future")
        covariates = covariates or {}
        observed, scale, scaled, ctx_feat = self._prepare(
            past_target,
            past_observed,
            past_time_feat,
            covariates.get("past_feat_dynamic_real"),
            covariates,
        )
        future_time_feat = self.covariates(
            future_time_feat, covariates.get("future_feat_dynamic_real"), covariates, "future"
        )
        fut_observed = observed_mask(future_target, future_observed)  # (B, Th, D)
        seq = torch.cat([scaled, fill_missing(future_target, fut_observed) / scale], dim=1)
        obs = torch.cat([observed, fut_observed], dim=1)  # (B, Tp + Th, D)
        time_feat = torch.cat([ctx_feat, future_time_feat], dim=1)  # (B, T, F)
        T = time_feat.shape[1]  # Tc + Th
        hidden, _ = self.rnn(self._rnn_inputs(seq, obs, time_feat))  # (B, T, C)
        x0, mask = self._diffused(seq, obs, T, self._step_scale(scaled, observed))  # (B, T, D)
        keep = self._loss_positions(B, T, D, generator, hidden.device)
        if keep is not None:  # (B, k) positions of each window
            hidden, x0, mask = (v.gather(1, keep[..., None].expand(-1, -1, v.shape[2]))
                                for v in (hidden, x0, mask))  # fmt: skip
            T = keep.shape[1]
        cond = self.cond_projection(hidden)  # (B, T, H)
        mask = mask.reshape(B * T, D)
        per_step = diffusion_loss(
            self.denoiser,
            x0.reshape(B * T, D),
            self.schedule,
            prediction=self.config.prediction,
            cond={"cond": cond.reshape(B * T, -1)},
            mask=mask,
            weighting=weighting,
            generator=generator,
        )  # (B*T,) mean over each step's observed values
        count = mask.sum(dim=1).to(per_step.dtype).reshape(B, T)
        if horizon_only:
            count = torch.cat([torch.zeros_like(count[:, : T - Th]), count[:, T - Th :]], dim=1)
        total = (per_step.reshape(B, T) * count).sum(dim=1)  # (B,)
        if reduction == "none":
            return total / count.sum(dim=1).clamp_min(1.0)
        return total.sum() / count.sum().clamp_min(1.0)

    def _loss_positions(self, B: int, T: int, D: int, generator, device) -> Tensor | None:
        """Random positions (B, k) per window when B T D exceeds ``max_loss_values``."""
        budget = self.config.max_loss_values
        if budget is None or budget >= B * T * D:
            return None
        k = max(1, budget // (B * D))
        if k >= T:
            return None
        if not getattr(self, "_said_positions", False):
            self._said_positions = True
            warnings.warn(
                f"{D} series: each training window's loss reads {k} of its {T} positions "
                f"(max_loss_values={budget} values per step; set it higher or to none to "
                "read them all).",
                stacklevel=3,
            )
        order = torch.rand(B, T, generator=generator, device=device).argsort(dim=1)
        return order[:, :k]  # (B, k)

    @torch.no_grad()
    def forecast(
        self,
        past_target: Tensor,
        past_observed: Tensor | None,
        past_time_feat: Tensor,
        future_time_feat: Tensor,
        *,
        num_samples: int = 100,
        sampler: str = "ddpm",
        steps: int | None = None,
        generator: torch.Generator | None = None,
        covariates: dict[str, Tensor] | None = None,
        future_known: Tensor | None = None,
        **sampler_options,
    ) -> Tensor:
        """Sample paths of the next ``future_time_feat.shape[1]`` steps, in the original scale.

        Parameters
        ----------
        past_target, past_observed, past_time_feat
            (B, Tp, D), (B, Tp, D) or None, (B, Tp, F) with Tp >= ``history_length``.
        future_time_feat
            (B, Th, F): time features of the steps to forecast.
        num_samples
            S, sample paths per example.
        sampler, steps
            Any registered core sampler and its number of model calls per step (default:
            all schedule steps).
        generator
            Draws the diffusion noise.
        covariates
            As in :meth:`loss`; the future dynamic reals cover the steps to forecast.
        future_known
            (B, Th, D) values already known among the steps to draw (NaN elsewhere): each
            step is drawn conditioned on its known entries (the core's ``known``/``mask``
            inpainting), which it keeps; imputation uses it for partly observed steps.
        **sampler_options
            Passed on to the sampler (e.g. ``eta`` for DDIM).

        Returns
        -------
        torch.Tensor
            Samples of shape (B, S, Th, D). Call ``model.eval()`` first to turn dropout off.
        """
        c = self.config
        covariates = covariates or {}
        observed, scale, scaled, ctx_feat = self._prepare(
            past_target,
            past_observed,
            past_time_feat,
            covariates.get("past_feat_dynamic_real"),
            covariates,
        )
        B, Tp, D = scaled.shape
        Th, S = future_time_feat.shape[1], num_samples
        check_future_features(c, future_time_feat, B)
        future_time_feat = self.covariates(
            future_time_feat, covariates.get("future_feat_dynamic_real"), covariates, "future"
        )  # (B, Th, F + covariates)
        step_scale = self._step_scale(scaled, observed).repeat_interleave(S, dim=0)  # (B*S, 1, D)
        previous = last_observed(scaled, observed).repeat_interleave(S, dim=0)  # (B*S, D)
        # Read the context once per example, then repeat the state for the S sample paths.
        _, state = self.rnn(self._rnn_inputs(scaled, observed, ctx_feat))
        state = tuple(s.repeat_interleave(S, dim=1) for s in _as_tuple(state))  # (layers, B*S, C)
        # Buffers over past + horizon, filled as the paths are drawn (drawn values are observed).
        seq = torch.cat([scaled, scaled.new_zeros(B, Th, D)], dim=1).repeat_interleave(S, dim=0)
        obs = torch.cat([observed, observed.new_ones(B, Th, D)], dim=1).repeat_interleave(S, dim=0)
        future_feat = future_time_feat.to(seq.dtype).repeat_interleave(S, dim=0)  # (B*S, Th, F)
        if future_known is not None:  # scaled like the paths, NaN where unknown
            future_known = (future_known.to(seq.dtype) / scale).repeat_interleave(S, dim=0)
        for k in range(Th):
            end = Tp + k + 1  # inputs of position Tp + k read lags up to position Tp + k - 1
            inputs = self._rnn_inputs(seq[:, :end], obs[:, :end], future_feat[:, k : k + 1])
            hidden, state = self.rnn(inputs, _from_tuple(state))  # (B*S, 1, C)
            state = _as_tuple(state)
            cond = self.cond_projection(hidden[:, 0])  # (B*S, H)
            known, base = {}, self._base(seq, obs, Tp + k, previous)  # (B*S, D)
            if future_known is not None and torch.isfinite(future_known[:, k]).any():
                mask = torch.isfinite(future_known[:, k])  # (B*S, D)
                value = fill_missing(future_known[:, k], mask)
                if c.target_lag:
                    value = (value - base) / step_scale[:, 0]
                known = {"known": value, "mask": mask.to(seq.dtype)}
            draw = sample(
                self.denoiser,
                (B * S, D),
                self.schedule,
                sampler=sampler,
                steps=steps,
                prediction=c.prediction,
                cond={"cond": cond},
                generator=generator,
                device=seq.device,
                dtype=seq.dtype,
                **known,
                **sampler_options,
            )  # (B*S, D)
            if c.target_lag:
                draw = base + step_scale[:, 0] * draw
            seq[:, Tp + k] = previous = draw
        paths = seq[:, Tp:].reshape(B, S, Th, D)  # (B, S, Th, D) scaled
        return paths * scale[:, :, None, :]  # scale (B, 1, 1, D)


def last_observed(x: Tensor, observed: Tensor) -> Tensor:
    """The last observed value of each series in a window (B, T, D) -> (B, D); 0 if none."""
    T = x.shape[1]
    position = torch.arange(T, device=x.device).view(1, T, 1) * observed  # (B, T, D)
    last = position.argmax(dim=1, keepdim=True)  # (B, 1, D)
    return torch.where(observed.any(dim=1), x.gather(1, last)[:, 0], torch.zeros_like(x[:, 0]))


def _as_tuple(state) -> tuple[Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


def _from_tuple(state: tuple[Tensor, ...]):
    return state if len(state) == 2 else state[0]
