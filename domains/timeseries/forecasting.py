"""TimeGrad as a pytorch-forecasting model: :class:`TimeGradModel` behind ``BaseModel``.

The D series are the D targets of a ``TimeSeriesDataSet`` (a wide frame: one column per
series, one or more groups). The network reads the raw targets (``encoder_target``,
``decoder_target``) and scales them itself, so the dataset's target normaliser plays no
part and forecasts come back in the original scale. Other covariates are not read; the
time features are the network's own, computed from ``time_idx`` given the timestamp of
``time_idx == 0`` (``start``) and ``freq``.

pytorch-forecasting's ``BaseModel`` trains a point or distribution metric; the diffusion
loss is no such metric, so the training and validation steps are overridden to call the
network's loss, and ``to_prediction`` / ``to_quantiles`` read the sample paths.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from pytorch_forecasting.data import TimeSeriesDataSet
from pytorch_forecasting.models.base import BaseModel

from diffkit.errors import ConfigError, ShapeError

from .evaluate import sample_quantiles
from .features import time_features
from .module import TimeGradConfig, TimeGradModel
from .series import normalise_freq

# pytorch-forecasting's QuantileLoss levels, the default of mode="quantiles".
DEFAULT_QUANTILES = (0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98)


def _stack(targets) -> torch.Tensor:
    """pytorch-forecasting's targets (a list of D (B, T) tensors, or one) as (B, T, D)."""
    if isinstance(targets, torch.Tensor):
        return targets.unsqueeze(-1)
    return torch.stack(list(targets), dim=-1)


class TimeGradForecaster(BaseModel):
    """TimeGrad (Rasul et al. 2021) for pytorch-forecasting; build it with ``from_dataset``.

    Parameters
    ----------
    target
        The target column(s) of the dataset (one per series).
    prediction_length
        Th, the dataset's prediction length.
    freq, start
        Pandas frequency of ``time_idx`` steps and the timestamp of ``time_idx == 0``.
    context_length
        Steps the network reads before the horizon.
    model_options
        Any other :class:`TimeGradConfig` field (``num_cells``, ``lags``, ``schedule``, ...).
    num_samples
        Sample paths per forecast (``predict(..., n_samples=...)`` overrides it).
    sampler, steps
        Core sampler and its model calls per forecast step (default: DDPM, all steps).
    quantiles
        Levels of ``predict(mode="quantiles")``.
    **kwargs
        ``BaseModel``'s: ``learning_rate``, ``weight_decay``, ``optimizer``, ...
    """

    def __init__(
        self,
        target: str | list[str],
        prediction_length: int,
        freq: str,
        start: str,
        context_length: int | None = None,
        model_options: dict | None = None,
        num_samples: int = 100,
        sampler: str = "ddpm",
        steps: int | None = None,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        **kwargs,
    ):
        self.save_hyperparameters()
        super().__init__(**kwargs)
        targets = [target] if isinstance(target, str) else list(target)
        config = TimeGradConfig(
            target_dim=len(targets),
            prediction_length=prediction_length,
            context_length=context_length,
            freq=normalise_freq(freq),
            **(model_options or {}),
        )
        self.model = TimeGradModel(config)

    @classmethod
    def from_dataset(
        cls,
        dataset: TimeSeriesDataSet,
        *,
        freq: str,
        start,
        target_dim: int | None = None,
        **kwargs,
    ) -> "TimeGradForecaster":
        """Build the model for a dataset whose targets are the D series.

        Parameters
        ----------
        dataset
            The training ``TimeSeriesDataSet``: fixed encoder and prediction lengths
            (``min_* == max_*``), the encoder at least the context plus the largest lag.
        freq, start
            Frequency of ``time_idx`` and the timestamp at ``time_idx == 0``.
        target_dim
            Optional check: the number of series the caller expects.
        **kwargs
            Further ``__init__`` arguments; ``context_length`` defaults to the encoder
            length minus the largest lag.
        """
        targets = list(dataset.target_names)
        if target_dim is not None and target_dim != len(targets):
            raise ShapeError(
                f"the dataset has {len(targets)} target(s) but target_dim={target_dim}; pass "
                f"target_dim={len(targets)} or build the dataset with one target per series."
            )
        if dataset.min_prediction_length != dataset.max_prediction_length:
            raise ConfigError(
                "TimeGrad forecasts a fixed horizon; build the TimeSeriesDataSet with "
                "min_prediction_length equal to max_prediction_length."
            )
        encoder = dataset.min_encoder_length
        options = kwargs.get("model_options") or {}
        config = TimeGradConfig(1, 1, freq=normalise_freq(freq), **options)
        lags = config.lags
        context = kwargs.pop("context_length", None) or encoder - max(lags)
        if encoder < context + max(lags):
            raise ConfigError(
                f"the dataset's encoder holds {encoder} steps but TimeGrad reads "
                f"{context + max(lags)} (context {context} + largest lag {max(lags)}); set "
                f"min_encoder_length and max_encoder_length to at least {context + max(lags)}."
            )
        return cls(
            target=targets if dataset.multi_target else targets[0],
            prediction_length=dataset.max_prediction_length,
            freq=freq,
            start=str(pd.Timestamp(start)),
            context_length=context,
            dataset_parameters=dataset.get_parameters(),
            output_transformer=dataset.target_normalizer,
            **kwargs,
        )

    def _time_features(self, time_idx: torch.Tensor) -> torch.Tensor:
        """The network's time features at integer steps (B, T) -> (B, T, F)."""
        first = int(time_idx.min())
        last = int(time_idx.max())
        freq = self.model.config.freq
        index = pd.date_range(self.hparams.start, periods=last + 1, freq=freq)[first:]
        table = torch.as_tensor(time_features(index, freq), device=time_idx.device)  # (N, F)
        return table[time_idx - first]

    def _inputs(self, x: dict) -> dict:
        """Past targets and the time features of past and horizon from a batch's x."""
        past = _stack(x["encoder_target"]).float()  # (B, Te, D)
        horizon = x["decoder_time_idx"]  # (B, Th)
        offsets = torch.arange(-past.shape[1], 0, device=horizon.device)
        past_idx = horizon[:, :1] + offsets  # (B, Te)
        return {
            "past": past,
            "past_time_feat": self._time_features(past_idx),
            "future_time_feat": self._time_features(horizon),
        }

    def _loss(self, x: dict, y) -> torch.Tensor:
        inputs = self._inputs(x)
        future = _stack(y[0]).to(inputs["past"].dtype)  # (B, Th, D)
        return self.model.loss(
            inputs["past"],
            None,
            future,
            None,
            inputs["past_time_feat"],
            inputs["future_time_feat"],
        )

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, y = batch
        loss = self._loss(x, y)
        size = x["decoder_time_idx"].shape[0]
        self.log(f"{stage}_loss", loss, on_epoch=True, prog_bar=True, batch_size=size)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        return self._step(batch, "val")

    def forward(
        self, x: dict, n_samples: int | None = None, generator: torch.Generator | None = None
    ):
        """Sample paths: ``prediction`` per target (B, Th, S), ``samples`` (B, S, Th, D)."""
        inputs = self._inputs(x)
        samples = self.model.forecast(
            inputs["past"],
            None,
            inputs["past_time_feat"],
            inputs["future_time_feat"],
            num_samples=n_samples or self.hparams.num_samples,
            sampler=self.hparams.sampler,
            steps=self.hparams.steps,
            generator=generator,
        )  # (B, S, Th, D), original scale
        per_target = samples.permute(0, 2, 3, 1)  # (B, Th, D, S)
        if isinstance(self.hparams.target, str):
            prediction = per_target[:, :, 0]  # (B, Th, S)
        else:
            prediction = list(per_target.unbind(dim=2))  # D x (B, Th, S)
        return self.to_network_output(prediction=prediction, samples=samples)

    def to_prediction(self, out, use_metric: bool = True, **kwargs):
        """Mean of the sample paths: (B, Th), or a list of them for several targets."""
        return self._per_target(out, lambda s: s.mean(dim=-1))

    def to_quantiles(self, out, use_metric: bool = True, quantiles=None, **kwargs):
        """Sample quantiles, as GluonTS's order statistics: (B, Th, Q) per target."""
        levels = list(quantiles or self.hparams.quantiles)

        def quantile(s: torch.Tensor) -> torch.Tensor:
            q = sample_quantiles(np.moveaxis(s.detach().cpu().numpy(), -1, 0), levels)
            return torch.as_tensor(np.moveaxis(q, 0, -1), device=s.device)  # (B, Th, Q)

        return self._per_target(out, quantile)

    @staticmethod
    def _per_target(out, fn):
        prediction = out["prediction"]
        if isinstance(prediction, torch.Tensor):
            return fn(prediction)
        return [fn(p) for p in prediction]
