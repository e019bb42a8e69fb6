"""TimeGrad as a GluonTS ``PyTorchLightningEstimator`` (GluonTS's ``estimator.py`` pattern).

Data are GluonTS multivariate entries: a ``target`` of shape (D, T), as
``MultivariateGrouper`` builds them. The transformation adds GluonTS's observed-values
indicator (NaN -> 0 with indicator 0) and the network's own time features
(``features.time_features``), so a GluonTS pipeline feeds the network exactly what the CLI
does. Training samples windows with ``ExpectedNumInstanceSampler`` as GluonTS's models do.
"""

import dataclasses
import functools
from collections.abc import Iterable

import numpy as np
import pandas as pd
import torch
from gluonts.core.component import validated
from gluonts.dataset.common import Dataset
from gluonts.dataset.field_names import FieldName
from gluonts.dataset.loader import as_stacked_batches
from gluonts.itertools import Cyclic
from gluonts.model.forecast_generator import SampleForecastGenerator
from gluonts.torch.model.estimator import PyTorchLightningEstimator
from gluonts.torch.model.predictor import PyTorchPredictor
from gluonts.transform import (
    AddObservedValuesIndicator,
    AsNumpyArray,
    Chain,
    ExpectedNumInstanceSampler,
    InstanceSampler,
    InstanceSplitter,
    MapTransformation,
    SelectFields,
    TestSplitSampler,
    Transformation,
    ValidationSplitSampler,
)

from diffkit.errors import ConfigError, DataError, ShapeError

from .covariates import covariate_names
from .data import period_timestamp
from .features import time_feature_table
from .gluonts_lightning import (
    PREDICTION_INPUT_NAMES,
    TRAINING_INPUT_NAMES,
    TimeGradLightningModule,
)
from .module import TimeGradConfig
from .series import normalise_freq


class AsTargetMatrix(MapTransformation):
    """Check an entry holds ``target_dim`` series and store its target as float32 (D, T)."""

    @validated()
    def __init__(self, target_dim: int, field: str = FieldName.TARGET) -> None:
        self.target_dim = target_dim
        self.field = field

    def map_transform(self, data: dict, is_train: bool) -> dict:
        target = np.asarray(data[self.field], dtype=np.float32)
        if target.ndim == 1 and self.target_dim == 1:
            target = target[None]  # (1, T): one series is a 1-dimensional multivariate one
        if target.ndim != 2 or target.shape[0] != self.target_dim:
            found = f"{target.shape[0]} series" if target.ndim == 2 else "a univariate target"
            raise ShapeError(
                f"a dataset entry holds {found} but the estimator has target_dim="
                f"{self.target_dim}; set target_dim to the number of series or group the "
                f"series with MultivariateGrouper(max_target_dim={self.target_dim})."
            )
        data[self.field] = target  # (D, T)
        return data


class AddTimeGradFeatures(MapTransformation):
    """Add the network's time features, (F, T [+ prediction_length]), from start and freq.

    GluonTS's ``AddTimeFeatures`` encodes calendar fields differently; this computes
    ``features.time_features`` so GluonTS and the CLI give the network identical inputs.
    """

    @validated()
    def __init__(
        self,
        freq: str,
        pred_length: int,
        output_field: str = FieldName.FEAT_TIME,
        start_field: str = FieldName.START,
        target_field: str = FieldName.TARGET,
    ) -> None:
        self.freq = normalise_freq(freq)
        self.pred_length = pred_length
        self.output_field = output_field
        self.start_field = start_field
        self.target_field = target_field

    def map_transform(self, data: dict, is_train: bool) -> dict:
        start = data[self.start_field]
        if isinstance(start, pd.Period):
            if normalise_freq(start.freqstr) != self.freq:
                raise DataError(
                    f"the dataset's frequency is {start.freqstr!r} but the estimator's is "
                    f"{self.freq!r}; pass freq={start.freqstr!r} to TimeGradEstimator."
                )
            start = period_timestamp(start)
        # Prediction needs the features of the horizon too, as AddTimeFeatures does.
        length = data[self.target_field].shape[-1] + (0 if is_train else self.pred_length)
        # Cached: training revisits the same entries for every window it draws.
        table = time_feature_table(pd.Timestamp(start), length, self.freq)  # (T, F)
        data[self.output_field] = table.T  # (F, T), time last as GluonTS's fields
        return data


class CheckRows(MapTransformation):
    """A ShapeError unless a covariate field holds the number of rows the estimator declares."""

    @validated()
    def __init__(self, field: str, rows: int) -> None:
        self.field = field
        self.rows = rows

    def map_transform(self, data: dict, is_train: bool) -> dict:
        if self.field not in data:
            raise ShapeError(
                f"a dataset entry has no {self.field!r} but the estimator declares "
                f"{self.rows}; add the field to every entry or drop the setting."
            )
        found = data[self.field].shape[0]
        if found != self.rows:
            raise ShapeError(
                f"a dataset entry's {self.field!r} holds {found} rows but the estimator "
                f"declares {self.rows}; pass the same number (grouped entries hold one "
                "block per series: CovariateGrouper)."
            )
        return data


class ShiftForecastStart(MapTransformation):
    """Move ``forecast_start`` ``lead_time`` steps on, past the gap the network draws."""

    @validated()
    def __init__(self, lead_time: int, field: str = FieldName.FORECAST_START) -> None:
        self.lead_time = lead_time
        self.field = field

    def map_transform(self, data: dict, is_train: bool) -> dict:
        data[self.field] = data[self.field] + self.lead_time
        return data


class SeededSampleForecastGenerator(SampleForecastGenerator):
    """GluonTS's sample forecasts, drawn from a generator seeded afresh on each ``predict``.

    With a seed, the same predictor (or a deserialised copy) gives identical forecasts on
    every call; with ``seed=None`` the draws come from torch's global generator.
    """

    @validated()
    def __init__(self, seed: int | None = 0) -> None:
        self.seed = seed

    def __call__(self, inference_data_loader, prediction_net, *args, **kwargs):
        if self.seed is not None:
            device = next(prediction_net.parameters()).device
            generator = torch.Generator(device=device).manual_seed(self.seed)
            prediction_net = functools.partial(prediction_net, generator=generator)
        yield from super().__call__(inference_data_loader, prediction_net, *args, **kwargs)


class TimeGradEstimator(PyTorchLightningEstimator):
    """TimeGrad (Rasul et al. 2021) for GluonTS: diffkit's :class:`TimeGradModel` network.

    Parameters
    ----------
    freq
        Pandas frequency of the data (picks default lags and the time features).
    prediction_length
        Th, the forecast horizon.
    target_dim
        D, the number of series of each (grouped) entry.
    context_length
        Steps the network reads before the horizon; ``prediction_length`` by default.
    model_options
        Any other :class:`TimeGradConfig` field, e.g. ``{"num_cells": 40, "lags": [1, 2],
        "schedule": {...}, "denoiser": {...}}``; ``{"architecture": "horizon"}`` trains the
        whole-horizon transformer (:class:`~.horizon.HorizonModel`) instead of TimeGrad.
    lr, weight_decay
        Adam's settings.
    batch_size, num_batches_per_epoch
        Training windows per batch and batches per epoch.
    num_parallel_samples
        Sample paths per forecast.
    sampler, steps
        Core sampler and model calls per forecast step (default: DDPM over all steps).
    prediction_seed
        Seed of the forecast draws (None: torch's global generator).
    trainer_kwargs
        Passed to ``lightning.Trainer`` (default: 100 epochs, gradient clipping at 10).
    train_sampler, validation_sampler
        GluonTS instance samplers of the training and validation windows.
    num_feat_dynamic_real, num_feat_static_real, cardinality
        Covariates of each (grouped) entry, as GluonTS's fields: ``feat_dynamic_real``
        (K, T) known in the future too (for prediction it runs ``lead_time +
        prediction_length`` steps past the target), ``feat_static_real`` (S,) and
        ``feat_static_cat`` (C,) integers below ``cardinality`` (one count per category
        field). :class:`~.gluonts_data.CovariateGrouper` groups univariate entries
        keeping them.
    lead_time
        GluonTS's gap between the end of the context and the forecast: forecasts start
        ``lead_time`` steps after the last value read (0: right after it). TimeGrad is
        autoregressive, so it draws the ``lead_time`` steps of the gap and returns the
        ``prediction_length`` after them; training teaches all ``lead_time +
        prediction_length`` steps of each window.
    """

    @validated()
    def __init__(
        self,
        freq: str,
        prediction_length: int,
        target_dim: int,
        context_length: int | None = None,
        model_options: dict | None = None,
        lr: float = 1e-3,
        weight_decay: float = 1e-8,
        batch_size: int = 64,
        num_batches_per_epoch: int = 50,
        num_parallel_samples: int = 100,
        sampler: str = "ddpm",
        steps: int | None = None,
        prediction_seed: int | None = 0,
        trainer_kwargs: dict | None = None,
        train_sampler: InstanceSampler | None = None,
        validation_sampler: InstanceSampler | None = None,
        lead_time: int = 0,
        num_feat_dynamic_real: int = 0,
        num_feat_static_real: int = 0,
        cardinality: list[int] | None = None,
    ) -> None:
        if lead_time < 0:
            raise ConfigError(f"lead_time must be at least 0, got {lead_time}.")
        super().__init__(
            trainer_kwargs={"max_epochs": 100, "gradient_clip_val": 10.0, **(trainer_kwargs or {})},
            lead_time=lead_time,
        )
        # Build the config now so bad settings fail here with diffkit's own message.
        self.config = TimeGradConfig(
            target_dim=target_dim,
            prediction_length=prediction_length,
            context_length=context_length,
            freq=normalise_freq(freq),
            num_feat_dynamic_real=num_feat_dynamic_real,
            num_feat_static_real=num_feat_static_real,
            cardinality=tuple(cardinality or ()),
            **(model_options or {}),
        )
        self.covariate_names = covariate_names(self.config)
        self.freq = self.config.freq
        self.prediction_length = prediction_length
        self.target_dim = target_dim
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.num_batches_per_epoch = num_batches_per_epoch
        self.num_parallel_samples = num_parallel_samples
        self.sampler = sampler
        self.steps = steps
        self.prediction_seed = prediction_seed
        self.window = lead_time + prediction_length  # steps after the context the network draws
        self.train_sampler = train_sampler or ExpectedNumInstanceSampler(
            num_instances=1.0, min_future=self.window
        )
        self.validation_sampler = validation_sampler or ValidationSplitSampler(
            min_future=self.window
        )

    def create_transformation(self) -> Transformation:
        c = self.config
        fields = [FieldName.ITEM_ID, FieldName.INFO, FieldName.START, FieldName.TARGET]
        covariates = []
        if c.num_feat_dynamic_real:
            fields.append(FieldName.FEAT_DYNAMIC_REAL)
            covariates.append(AsNumpyArray(FieldName.FEAT_DYNAMIC_REAL, expected_ndim=2))
            covariates.append(CheckRows(FieldName.FEAT_DYNAMIC_REAL, c.num_feat_dynamic_real))
        if c.num_feat_static_real:
            fields.append(FieldName.FEAT_STATIC_REAL)
            covariates.append(AsNumpyArray(FieldName.FEAT_STATIC_REAL, expected_ndim=1))
            covariates.append(CheckRows(FieldName.FEAT_STATIC_REAL, c.num_feat_static_real))
        if c.cardinality:
            fields.append(FieldName.FEAT_STATIC_CAT)
            covariates.append(
                AsNumpyArray(FieldName.FEAT_STATIC_CAT, expected_ndim=1, dtype=np.int64)
            )
            covariates.append(CheckRows(FieldName.FEAT_STATIC_CAT, len(c.cardinality)))
        return Chain(
            [
                SelectFields(fields, allow_missing=True),
                AsTargetMatrix(self.target_dim),
                AddObservedValuesIndicator(
                    target_field=FieldName.TARGET, output_field=FieldName.OBSERVED_VALUES
                ),
                AddTimeGradFeatures(self.freq, self.window),
                *covariates,
            ]
        )

    def create_lightning_module(self) -> TimeGradLightningModule:
        return TimeGradLightningModule(
            config=dataclasses.asdict(self.config),
            lr=self.lr,
            weight_decay=self.weight_decay,
            num_parallel_samples=self.num_parallel_samples,
            sampler=self.sampler,
            steps=self.steps,
            lead_time=self.lead_time,
        )

    def _create_instance_splitter(self, mode: str) -> Transformation:
        sampler = {
            "training": self.train_sampler,
            "validation": self.validation_sampler,
            "test": TestSplitSampler(),
        }[mode]
        # The future holds the gap and the horizon (contiguous, as the network reads
        # them); the forecast start is then moved past the gap, where GluonTS's own
        # InstanceSplitter(lead_time=...) puts it.
        return InstanceSplitter(
            target_field=FieldName.TARGET,
            is_pad_field=FieldName.IS_PAD,
            start_field=FieldName.START,
            forecast_start_field=FieldName.FORECAST_START,
            instance_sampler=sampler,
            past_length=self.config.history_length,
            future_length=self.window,
            # Padded steps get observed value 0, so the network treats them as missing.
            time_series_fields=[
                FieldName.FEAT_TIME,
                FieldName.OBSERVED_VALUES,
                *([FieldName.FEAT_DYNAMIC_REAL] * bool(self.config.num_feat_dynamic_real)),
            ],
        ) + ShiftForecastStart(self.lead_time)

    def create_training_data_loader(
        self, data: Dataset, module: TimeGradLightningModule, **kwargs
    ) -> Iterable:
        next(iter(data), None)  # transform one entry so bad data fail before training starts
        instances = self._create_instance_splitter("training").apply(
            Cyclic(data).stream(), is_train=True
        )
        return as_stacked_batches(
            instances,
            batch_size=self.batch_size,
            shuffle_buffer_length=kwargs.get("shuffle_buffer_length"),
            field_names=TRAINING_INPUT_NAMES + self.covariate_names,
            output_type=torch.tensor,
            num_batches_per_epoch=self.num_batches_per_epoch,
        )

    def create_validation_data_loader(
        self, data: Dataset, module: TimeGradLightningModule, **kwargs
    ) -> Iterable:
        instances = self._create_instance_splitter("validation").apply(data, is_train=True)
        return as_stacked_batches(
            instances,
            batch_size=self.batch_size,
            field_names=TRAINING_INPUT_NAMES + self.covariate_names,
            output_type=torch.tensor,
        )

    def create_predictor(
        self, transformation: Transformation, module: TimeGradLightningModule
    ) -> PyTorchPredictor:
        return PyTorchPredictor(
            input_transform=transformation + self._create_instance_splitter("test"),
            input_names=PREDICTION_INPUT_NAMES + self.covariate_names,
            prediction_net=module,
            forecast_generator=SeededSampleForecastGenerator(self.prediction_seed),
            batch_size=self.batch_size,
            prediction_length=self.prediction_length,
            lead_time=self.lead_time,
            device="auto",
        )
