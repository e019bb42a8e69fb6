"""TimeGrad as a pytorch-forecasting model: :class:`TimeGradModel` behind ``BaseModel``.

The D series are the D targets of a ``TimeSeriesDataSet`` (a wide frame: one column per
series, one or more groups), or the D groups of a one-target dataset (a long frame,
``layout="long"``) loaded with ``to_dataloader(batch_sampler="synchronized")``, whose
batches hold every group at one time: the model regroups each batch's rows into D-vectors
and hands each row its own series' forecast back. The network reads the raw targets
(``encoder_target``, ``decoder_target``) and scales them itself, so the dataset's target
normaliser plays no part and forecasts come back in the original scale. The time features
are the network's own, computed from ``time_idx`` given the timestamp of ``time_idx == 0``
(``start``) and ``freq``. The dataset's ``time_varying_known_reals`` (as the dataset
normalises them) are the network's dynamic covariates, its ``static_reals`` and
``static_categoricals`` its static ones; in the long layout each group's (series') values
sit side by side (D K dynamic reals, D categories per categorical).

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

from diffkit.errors import ConfigError, DataError, ShapeError, check_choice

from .evaluate import sample_quantiles
from .features import time_feature_table
from .module import TimeGradConfig
from .networks import build_model
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
        Any other :class:`TimeGradConfig` field (``num_cells``, ``lags``, ``schedule``, ...);
        ``{"architecture": "horizon"}`` for the whole-horizon transformer.
    num_samples
        Sample paths per forecast (``predict(..., n_samples=...)`` overrides it).
    sampler, steps
        Core sampler and its model calls per forecast step (default: DDPM, all steps).
    quantiles
        Levels of ``predict(mode="quantiles")``.
    groups
        Long layout: the number D of groups, each one series (None: the targets are).
    covariates
        Set by ``from_dataset``: the positions of the known reals (``known_reals``) and
        static reals (``static_reals``) among the dataset's ``reals``, of the static
        categoricals (``static_categoricals``) among its categoricals, and their
        ``cardinality``.
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
        groups: int | None = None,
        covariates: dict | None = None,
        **kwargs,
    ):
        self.save_hyperparameters()
        super().__init__(**kwargs)
        targets = [target] if isinstance(target, str) else list(target)
        cov = covariates or {}
        per = groups or 1  # long layout: each of the D rows brings its own covariates
        config = TimeGradConfig(
            target_dim=groups or len(targets),
            prediction_length=prediction_length,
            context_length=context_length,
            freq=normalise_freq(freq),
            num_feat_dynamic_real=per * len(cov.get("known_reals", ())),
            num_feat_static_real=per * len(cov.get("static_reals", ())),
            cardinality=tuple(cov.get("cardinality", ())) * per,
            **(model_options or {}),
        )
        self.model = build_model(config)

    @classmethod
    def from_dataset(
        cls,
        dataset: TimeSeriesDataSet,
        *,
        freq: str,
        start,
        layout: str = "wide",
        target_dim: int | None = None,
        **kwargs,
    ) -> "TimeGradForecaster":
        """Build the model for a dataset whose targets (or groups) are the D series.

        Parameters
        ----------
        dataset
            The training ``TimeSeriesDataSet``: fixed encoder and prediction lengths
            (``min_* == max_*``), the encoder at least the context plus the largest lag.
        freq, start
            Frequency of ``time_idx`` and the timestamp at ``time_idx == 0``.
        layout
            "wide": the targets are the series; "long": one target, one group per series
            (load it with ``batch_sampler="synchronized"`` and a batch size of at least D),
            series d being the d-th group as pytorch-forecasting encodes them (sorted).
        target_dim
            Optional check: the number of series the caller expects.
        **kwargs
            Further ``__init__`` arguments; ``context_length`` defaults to the encoder
            length minus the largest lag.
        """
        check_choice("layout", layout, ("wide", "long"))
        targets = list(dataset.target_names)
        if layout == "long":
            kwargs["groups"] = _long_layout_groups(dataset)
        found = kwargs.get("groups") or len(targets)
        if target_dim is not None and target_dim != found:
            unit = "group" if layout == "long" else "target"
            raise ShapeError(
                f"the dataset has {found} {unit}(s) but target_dim={target_dim}; pass "
                f"target_dim={found} or build the dataset with one {unit} per series."
            )
        for part in ("encoder", "prediction"):
            if getattr(dataset, f"min_{part}_length") != getattr(dataset, f"max_{part}_length"):
                raise ConfigError(
                    f"TimeGrad reads windows of fixed length; build the TimeSeriesDataSet with "
                    f"min_{part}_length equal to max_{part}_length."
                )
        encoder = dataset.min_encoder_length
        options = kwargs.get("model_options") or {}
        config = TimeGradConfig(1, 1, freq=normalise_freq(freq), **options)
        reach = config.history_length - config.context_length  # the largest lag (or 0)
        context = kwargs.pop("context_length", None) or encoder - reach
        if encoder < context + reach:
            raise ConfigError(
                f"the dataset's encoder holds {encoder} steps but the network reads "
                f"{context + reach} (context {context} + largest lag {reach}); set "
                f"min_encoder_length and max_encoder_length to at least {context + reach}."
            )
        return cls(
            target=targets if dataset.multi_target else targets[0],
            covariates=_covariate_positions(dataset),
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
        length = (last // 1024 + 1) * 1024  # whole blocks, so batches share cached tables
        table = time_feature_table(pd.Timestamp(self.hparams.start), length, freq)  # (T, F)
        window = torch.tensor(table[first:], device=time_idx.device)  # a copy: table is shared
        return window[time_idx - first]

    def _inputs(self, x: dict, future=None) -> dict:
        """Past (and future) targets as (N, T, D) and the time features, from a batch."""
        past = _stack(x["encoder_target"]).float()  # (B, Te, D)
        horizon = x["decoder_time_idx"]  # (B, Th)
        order = None
        if self.hparams.groups:  # long layout: rows are (time, series) pairs
            order = _synchronized_order(x["groups"][:, 0], horizon[:, 0], self.hparams.groups)
            past = _to_vectors(past[order], self.hparams.groups)  # (N, Te, D)
            horizon = horizon[order][:: self.hparams.groups]  # (N, Th)
            if future is not None:
                future = _to_vectors(_stack(future)[order], self.hparams.groups)
        elif future is not None:
            future = _stack(future)  # (B, Th, D)
        offsets = torch.arange(-past.shape[1], 0, device=horizon.device)
        past_idx = horizon[:, :1] + offsets  # (N, Te)
        return {
            "past": past,
            "future": None if future is None else future.to(past.dtype),
            "past_time_feat": self._time_features(past_idx),
            "future_time_feat": self._time_features(horizon),
            "order": order,
            "covariates": self._covariates(x, order),
        }

    def _covariates(self, x: dict, order) -> dict:
        """The dataset's known reals and statics as the network's covariates (by GluonTS name)."""
        cov, out = self.hparams.covariates or {}, {}

        def rows(t: torch.Tensor) -> torch.Tensor:  # long layout: (N*D, ..., K) -> (N, ..., D*K)
            if order is None:
                return t
            t = t[order]
            D = self.hparams.groups
            return t.reshape(-1, D, *t.shape[1:]).movedim(1, -2).flatten(-2)

        if cov.get("known_reals"):
            known = cov["known_reals"]
            out["past_feat_dynamic_real"] = rows(x["encoder_cont"][..., known])  # (N, Te, K')
            out["future_feat_dynamic_real"] = rows(x["decoder_cont"][..., known])  # (N, Th, K')
        if cov.get("static_reals"):
            out["feat_static_real"] = rows(x["encoder_cont"][:, 0, cov["static_reals"]])
        if cov.get("static_categoricals"):
            out["feat_static_cat"] = rows(x["encoder_cat"][:, 0, cov["static_categoricals"]])
        return out

    def _loss(self, x: dict, y) -> torch.Tensor:
        inputs = self._inputs(x, y[0])
        future = inputs["future"]
        return self.model.loss(
            inputs["past"],
            None,
            future,
            None,
            inputs["past_time_feat"],
            inputs["future_time_feat"],
            covariates=inputs["covariates"],
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
        """Sample paths: ``prediction`` per target (B, Th, S), ``samples`` (B, S, Th, D).

        In the long layout ``samples`` is (B, S, Th, 1): row b's own series.
        """
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
            covariates=inputs["covariates"],
        )  # (N, S, Th, D), original scale
        if inputs["order"] is not None:  # long layout: each row gets its series' paths
            rows = samples.permute(0, 3, 1, 2).flatten(0, 1)  # (N*D, S, Th) in sorted order
            samples = torch.empty_like(rows)
            samples[inputs["order"]] = rows
            samples = samples.unsqueeze(-1)  # (B, S, Th, 1)
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


def _covariate_positions(dataset: TimeSeriesDataSet) -> dict:
    """Where the known reals and statics sit in a dataset's batches, and their cardinality."""

    def names(field: str) -> list[str]:  # pytorch-forecasting keeps the filled-in lists private
        return list(getattr(dataset, "_" + field, None) or getattr(dataset, field, None) or [])

    reals, cats = list(dataset.reals), list(dataset.flat_categoricals)
    static_cats = names("static_categoricals")
    encoders = dataset._categorical_encoders  # the fitted ones, as BaseModel reads them
    return {
        "known_reals": [reals.index(n) for n in names("time_varying_known_reals")],
        "static_reals": [reals.index(n) for n in names("static_reals")],
        "static_categoricals": [cats.index(n) for n in static_cats],
        "cardinality": [len(encoders[n].classes_) for n in static_cats],
    }


def _long_layout_groups(dataset: TimeSeriesDataSet) -> int:
    """Number of groups of a one-target dataset whose groups are the series."""
    if dataset.multi_target or len(dataset.group_ids) != 1:
        raise ConfigError(
            "layout='long' needs one target and one group column (one group per series); "
            "pass a dataset built that way, or layout='wide' for one target per series."
        )
    return int(dataset.data["groups"][:, 0].max()) + 1


def _synchronized_order(group: torch.Tensor, time: torch.Tensor, count: int) -> torch.Tensor:
    """Row order sorting a batch by (time, group); checks it holds all groups per time."""
    order = torch.argsort(time * count + group)
    if group.numel() % count == 0:
        grid = group[order].view(-1, count)  # (N, D)
        times = time[order].view(-1, count)
        expected = torch.arange(count, device=group.device)
        if (grid == expected).all() and (times == times[:, :1]).all():
            return order
    raise DataError(
        f"a batch does not hold all {count} series at each forecast time; load the data "
        f"with to_dataloader(batch_sampler='synchronized', batch_size={count}) or more."
    )


def _to_vectors(rows: torch.Tensor, count: int) -> torch.Tensor:
    """Rows sorted by (time, group), (N*D, T, 1), as N D-vector sequences (N, T, D)."""
    return rows[..., 0].view(-1, count, rows.shape[1]).transpose(1, 2)
