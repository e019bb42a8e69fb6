"""The time-series domain: ``diffkit train --domain timeseries`` and its forecast/evaluate.

Data are any file :func:`data.load` reads (``--data``), or, by default, the seasonal VAR of
:mod:`synthetic` whose true predictive law is known, so evaluation also reports the CRPS
of the true law as a floor. The last ``test_windows`` windows of ``prediction_length``
steps are held out as GluonTS does it; the ``validation_windows`` windows just before them
are the validation set (its loss picks the best checkpoint and stops training early);
training reads every window of the rest.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from diffkit.chunks import draw_in_chunks
from diffkit.config import DiffusionConfig
from diffkit.domain import Domain, DomainData, EvaluateOptions, option, save_samples_as
from diffkit.errors import ConfigError, DataError, ShapeError, check_choice
from diffkit.sampling import SAMPLERS

from .bench import cases as bench_cases
from .covariate_data import WithCovariates, covariate_settings, forecast_covariates, read_table
from .covariates import covariate_names
from .data import load
from .evaluate import evaluate as score
from .impute import impute_frame, impute_paths, save_impute_chart
from .module import TimeGradConfig
from .networks import build_model
from .output import FORMATS, forecast_frame, save_fan_chart, save_frame
from .series import Series, Split, check_series, rolling_windows
from .synthetic import seasonal_var, synthetic, true_predictive_samples
from .target_choice import AUTO, chosen_target
from .windows import WindowDataset, check_compatible, forecast_inputs

Tensor = torch.Tensor


@dataclass(frozen=True)
class TimeSeriesConfig:
    """The data, the TimeGrad network and its evaluation (the ``[model]`` section).

    ``network`` is the :class:`TimeGradConfig`; its keys are keys of ``[model]`` and flags
    of their own (``--num-cells 40``, ``--min-scale``, ``--step-embedding-dim``), except the
    schedule and prediction, which come from ``[diffusion]``. Its ``freq`` and
    ``target_dim`` are filled in from the data when not given; a value given must match.
    """

    network: TimeGradConfig = field(default_factory=TimeGradConfig)
    start: str | None = None  # first timestamp of a headerless .txt matrix
    test_windows: int = 1
    validation_windows: int | None = None  # None: as many as test windows; 0: none
    train_length: int | None = None  # None: everything before the test windows
    num_samples: int = 100
    eval_sampler: str = "ddpm"
    eval_steps: int | None = None  # None: every schedule step
    synthetic_length: int = 1000
    data_seed: int = 0
    covariate_columns: tuple[str, ...] = ()  # CSV columns known in the future (covariate_data)
    static_columns: tuple[str, ...] = ()  # long-CSV columns constant per series

    def __post_init__(self):
        for name in ("test_windows", "num_samples", "synthetic_length"):
            if not 1 <= getattr(self, name) <= 10_000_000:
                raise ConfigError(
                    f"model.{name} must lie in 1..10000000, got {getattr(self, name)}."
                )
        if self.validation_windows is not None and self.validation_windows < 0:
            raise ConfigError(
                f"model.validation_windows must not be negative, got {self.validation_windows}."
            )
        for name in ("train_length", "eval_steps"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be at least 1, got {getattr(self, name)}.")
        check_choice("eval sampler", self.eval_sampler, SAMPLERS)


# TimeGrad's reference diffusion: 100 linear steps, beta 1e-4..0.1, eps-loss; and its
# training: batches of 64 windows, lr 1e-3; 3,000 steps (the benchmark's length), the
# validation loss measured every 100, stopping after 3 checks without a better one. At
# 1,000 steps every validation loss was still falling; at 3,000 ETTh1's validation CRPS-sum
# fell from 0.196 to 0.181 and Exchange's stayed (0.00822 and 0.00823).
DIFFUSION_DEFAULTS = {"schedule": "linear", "T": 100, "beta_start": 1e-4, "beta_end": 0.1}
# The target is chosen from the validation windows (target_choice): TimeGrad's scaled level,
# or each step's scaled change where the level moves less per step than the schedule's
# smallest noise resolves (Exchange). Differences won Exchange's validation windows by far
# (CRPS-sum 0.0082 against 0.0105 for the benchmark's reference row) and lost ETTh1's four
# weeks to the level (0.199 against 0.196 at 1,000 steps, 0.194 against 0.181 at 3,000);
# the seasonal target lost both (benchmarks/results/timeseries-tune.md).
# The network: the whole-horizon transformer, which won both data sets' validation windows
# at 3,000 steps: Exchange CRPS-sum 0.0079 against TimeGrad's 0.0082 (differences, the best
# TimeGrad), ETTh1 0.160 against 0.180 (benchmarks/results/timeseries-tune.md,
# timeseries-horizon.md). --architecture timegrad is TimeGrad, the reference.
MODEL_DEFAULTS = {"target": "auto", "architecture": "horizon"}
# The horizon network's own diffusion: on ETTh1's validation windows (context 168, 3,000
# steps) the cosine schedule at T = 1000 with v-prediction gave CRPS-sum 0.160 where
# TimeGrad's 100 linear steps gave 0.165 (eps) and 0.169 (v)
# (benchmarks/results/timeseries-horizon.md).
HORIZON_DIFFUSION = {"schedule": "cosine", "T": 1000, "prediction": "v"}
HORIZON_EVAL_STEPS = 100  # ancestral sampling's calls, as TimeGrad's 100 steps (of 1000)
TRAIN_DEFAULTS = {
    "batch_size": 64,
    "lr": 1e-3,
    "max_steps": 3000,
    "checkpoint_every": 100,
    "patience": 3,
}


@dataclass(frozen=True)
class ForecastOptions:
    """The time-series domain's flags of ``diffkit forecast``."""

    num_samples: int = option(100, "Sample paths per forecast.", low=1, high=1_000_000)
    raw: bool = option(False, "One row per sample path instead of mean and quantiles.")


@dataclass(frozen=True)
class ImputeOptions:
    """The time-series domain's flags of ``diffkit impute``."""

    num_samples: int = option(100, "Sample paths per missing value.", low=1, high=100_000)
    # Off by default: chosen on the validation draw of benchmarks/timeseries_impute.py.
    resample: bool = option(
        False, "Weight the paths by the observed step after each gap and resample them."
    )


def architecture_defaults(model: dict) -> dict:
    """The defaults that follow from the run's ``[model]`` values: the horizon network's
    diffusion (``HORIZON_DIFFUSION``) and 100 evaluation steps where it is the architecture."""
    nested = model.get("network") if isinstance(model.get("network"), dict) else {}
    architecture = model.get("architecture", nested.get("architecture", "timegrad"))
    if architecture != "horizon":
        return {}
    return {"diffusion": HORIZON_DIFFUSION, "model": {"eval_steps": HORIZON_EVAL_STEPS}}


def network_config(config: TimeSeriesConfig, diffusion: DiffusionConfig | None = None):
    """The network's :class:`TimeGradConfig` with the run's schedule and prediction type."""
    diffusion = diffusion or DiffusionConfig(**DIFFUSION_DEFAULTS)
    return dataclasses.replace(
        config.network, schedule=diffusion.build_schedule(), prediction=diffusion.prediction
    )


def build_network(config: TimeSeriesConfig, diffusion: DiffusionConfig | None = None):
    return build_model(network_config(config, diffusion))


def read_series(config: TimeSeriesConfig, path: Path | None, *, infer: bool = False) -> Series:
    """The full series: the file at ``path`` or the built-in seasonal VAR.

    ``infer`` reads the frequency from the timestamps where the file has them (to compare it
    with a trained model's instead of forcing the data onto the model's grid).
    """
    if path is None:
        freq = config.network.freq or "D"
        return synthetic(config.synthetic_length, freq=freq, seed=config.data_seed)
    headerless = ".txt" in Path(path).suffixes
    freq = None if infer and not headerless else config.network.freq
    return load(path, freq, config.start)


def read_inputs(config, path: Path | None, *, infer: bool = False, settings=None):
    """The series and its covariates (None without covariate columns), standardised with
    ``settings["covariates"]`` when given (a trained run's)."""
    if not (config.covariate_columns or config.static_columns):
        return read_series(config, path, infer=infer), None
    if path is None:
        raise ConfigError(
            "--covariate-columns and --static-columns name columns of a file; pass it as --data."
        )
    freq = None if infer else config.network.freq
    series, covariates = read_table(path, freq, config.covariate_columns, config.static_columns)
    if settings is not None:
        covariates = covariates.standardised(settings["covariates"])
    return series, covariates


def complete(config: TimeSeriesConfig, series: Series, covariates=None) -> TimeSeriesConfig:
    """``config`` with ``target_dim``, ``freq`` and covariate counts from the data."""
    net = config.network
    if net.target_dim is not None and net.target_dim != series.dim:
        # target_dim is the user's --target-dim, or the trained model's: say both
        raise ShapeError(
            f"the data holds {series.dim} series but the run's target_dim is {net.target_dim} "
            f"(a --target-dim given, or the data it was trained on); pass data with "
            f"{net.target_dim} series, or train without --target-dim."
        )
    if net.freq is not None and net.freq != series.freq:
        raise ConfigError(
            f"the data has frequency {series.freq!r} but the run's freq is {net.freq!r} (a "
            "--freq given, or the data it was trained on); resample the data, or train "
            "without --freq."
        )
    net = dataclasses.replace(net, target_dim=series.dim, freq=series.freq)
    if covariates is not None:
        dynamic, static = covariates.dynamic.shape[1], len(covariates.static)
        net = dataclasses.replace(net, num_feat_dynamic_real=dynamic, num_feat_static_real=static)
    return dataclasses.replace(config, network=net)


def load_data(config: TimeSeriesConfig, path: Path | None) -> DomainData:
    series, covariates = read_inputs(config, path)
    config = complete(config, series, covariates)
    split = data_split(series, config)
    settings = {"source": str(path) if path else "synthetic", "names": list(series.names)}
    if config.network.target == AUTO:  # chosen on the validation windows, before training
        config, settings["target_choice"] = chosen_target(config, split)
    net = config.network
    if net.target_lag + net.context_length + net.prediction_length > split.train.length:
        raise DataError(
            f"the seasonal target's season of {net.season} steps reaches before the "
            f"{split.train.length} training steps (with a context of {net.context_length} and "
            f"a horizon of {net.prediction_length}); pass a shorter --season or a longer series."
        )
    train = WindowDataset(split, net)
    val = WindowDataset(split, net, validation=True) if split.validation else None
    if covariates is not None:
        settings["covariates"] = covariate_settings(covariates, split.train.length)
        standardised = covariates.standardised(settings["covariates"])
        train = WithCovariates(train, standardised)
        val = WithCovariates(val, standardised) if val is not None else None
    return DomainData(train, val, settings, config)


def validation_windows(config: TimeSeriesConfig) -> int:
    """The number of validation windows: ``validation_windows``, by default ``test_windows``."""
    v = config.validation_windows
    return config.test_windows if v is None else v


def data_split(series: Series, config: TimeSeriesConfig) -> Split:
    """Training range, validation and test windows of ``series``; one line if it is too short."""
    net, windows = config.network, validation_windows(config)
    check_series(series, net.context_length, net.prediction_length)
    held_out = net.prediction_length * (config.test_windows + windows)
    needed = held_out + net.context_length + net.prediction_length
    if config.train_length is None and series.length < needed:
        raise DataError(
            f"the series has {series.length} time steps but {config.test_windows} test and "
            f"{windows} validation windows of {net.prediction_length} after a training window "
            f"of {net.context_length} + {net.prediction_length} need {needed}; use a longer "
            "series or fewer --test-windows / --validation-windows."
        )
    split = rolling_windows(
        series,
        net.prediction_length,
        config.test_windows,
        train_length=config.train_length,
        validation_windows=windows,
    )
    check_series(split.train, net.context_length, net.prediction_length)
    return split


def loss(net, batch, schedule, *, prediction, weighting, generator=None):
    # The network owns the run's schedule and prediction (build_network got the config).
    return net.loss(
        batch["past_target"],
        None,
        batch["future_target"],
        None,
        batch["past_time_feat"],
        batch["future_time_feat"],
        weighting=weighting,
        reduction="none",
        generator=generator,
        horizon_only="horizon_only" in batch,  # validation windows score what is forecast
        covariates={k: batch[k] for k in covariate_names(net.config)},
    )


def forecast_paths(net, histories, *, num_samples, sampler, steps, generator, covariates=None):
    """Sample paths (B, S, Th, D) after each history, and the B future timestamp grids."""
    device = next(net.parameters()).device
    inputs = forecast_inputs(histories, net.config)
    known = {}
    if covariates is not None:
        known = forecast_covariates(histories, net.config, covariates)
        known = {k: v.to(device) for k, v in known.items()}
    past, past_feat, future_feat = (x.to(device) for x in inputs[:3])
    index = inputs[3]
    samples = net.forecast(
        past,
        None,
        past_feat,
        future_feat,
        num_samples=num_samples,
        sampler=sampler,
        steps=steps or None,
        generator=generator,
        covariates=known,
    )  # (B, S, Th, D)
    return samples, index


def source_path(settings: dict, data: str | Path | None = None) -> Path | None:
    """The series to continue: ``data`` when given, else the run's own (None: synthetic)."""
    if data:
        return Path(data)
    source = settings.get("source", "synthetic")
    return None if source == "synthetic" else Path(source)


def continue_series(net, series, n, sampler, steps, generator, covariates=None):
    """``n`` sample paths (n, Th, D) after the end of ``series``, and their timestamps.

    Drawn in chunks, refused when the paths would not fit in memory (the core's chunking).
    """
    index = []

    def paths(k: int):
        samples, stamps = forecast_paths(
            net.eval(),
            [series],
            num_samples=k,
            sampler=sampler,
            steps=steps,
            generator=generator,
            covariates=covariates,
        )
        index[:] = stamps
        return samples[0]

    return draw_in_chunks(paths, n, what="sample paths"), index[0]


def generate(
    net, schedule, n, *, config, settings, sampler, steps, prediction, generator=None, options=None
):
    """``n`` sample paths (n, Th, D) of the horizon after the end of the run's data."""
    series, known = read_inputs(config, source_path(settings), settings=settings)
    steps = steps or config.eval_steps
    return continue_series(net, series, n, sampler, steps, generator, known)[0]


def evaluate(net, schedule, data, *, config, settings, prediction, generator=None, options=None):
    """CRPS, CRPS-sum, energy score, ND, NRMSE, MSE over the held-out rolling windows.

    ``options`` (``--sampler``, ``--steps``, ``--num-samples``) override the run's
    ``eval_sampler``, ``eval_steps`` and ``num_samples``.
    """
    if options is not None:
        config = options.onto(
            config, sampler="eval_sampler", steps="eval_steps", num_samples="num_samples"
        )
    split = data.train.split
    samples, _ = forecast_paths(
        net.eval(),
        list(split.histories),
        num_samples=config.num_samples,
        sampler=config.eval_sampler,
        steps=config.eval_steps,
        generator=generator,
        covariates=getattr(data.train, "covariates", None),
    )
    out = score(list(samples.cpu().double().numpy()), split.targets).as_dict()
    if settings.get("source") == "synthetic" and data.settings.get("source") == "synthetic":
        process = seasonal_var()
        truth = [
            true_predictive_samples(
                process, h.values, config.network.prediction_length, config.num_samples, seed=k
            )
            for k, h in enumerate(split.histories)
        ]
        floor = score(truth, split.targets).as_dict()
        out.update({f"{key}_true_law": value for key, value in floor.items()})
    out["windows"] = len(split.tests)
    return out


def forecast(
    net,
    schedule,
    data,
    out,
    *,
    config,
    settings,
    prediction,
    sampler,
    steps,
    generator=None,
    options: ForecastOptions | None = None,
) -> list[Path]:
    """Forecast the horizon after the end of ``data`` (default the run's data) to ``out``."""
    options = options or ForecastOptions()
    path = source_path(settings, data)
    series, known = read_inputs(config, path, infer=True, settings=settings)
    check_compatible(series, net.config, f"{path or 'the synthetic series'}")
    samples, index = continue_series(
        net, series, options.num_samples, sampler, steps or config.eval_steps, generator, known
    )
    paths = samples.cpu().double().numpy()  # (S, Th, D)
    frame = forecast_frame(paths, index, series.names, raw=options.raw)
    written = [save_frame(frame, Path(out))]
    written.append(save_fan_chart(series, paths, index, Path(out).with_suffix(".png")))
    return written


def impute(
    net,
    schedule,
    data,
    out,
    *,
    config,
    settings,
    prediction,
    sampler,
    steps,
    generator=None,
    options: ImputeOptions | None = None,
) -> list[Path]:
    """Sample the missing values of the table at ``data``; write it filled, and a chart."""
    options = options or ImputeOptions()
    if Path(out).suffix.lower() not in FORMATS:
        raise ConfigError(f"--out must end in .csv or .parquet, got {str(out)!r}.")
    series, known = read_inputs(config, Path(data), infer=True, settings=settings)
    check_compatible(series, net.config, str(data))
    if np.isfinite(series.values).all():
        raise DataError(f"{data} has no missing value; leave the cells to fill empty.")
    paths = impute_paths(
        net.eval(),
        series,
        num_samples=options.num_samples,
        sampler=sampler,
        steps=steps or config.eval_steps,
        generator=generator,
        covariates=known,
        resample=options.resample,
    )  # (S, T, D)
    written = [save_frame(impute_frame(paths, series), Path(out))]
    written.append(save_impute_chart(series, paths, Path(out).with_suffix(".png")))
    return written


def save_samples(samples: Tensor, path: Path) -> None:
    """Sample paths (n, Th, D) as .npy, .pt or a long .csv (sample, step, one column per series)."""
    save_samples_as(samples, path, ".csv", _save_csv)


def _save_csv(x: Tensor, path: Path) -> None:
    n, steps, dim = x.shape
    sample, step = np.meshgrid(np.arange(n), np.arange(steps), indexing="ij")
    table = np.column_stack([sample.ravel(), step.ravel(), x.numpy().reshape(n * steps, dim)])
    header = ",".join(["sample", "step", *(f"s{d}" for d in range(dim))])
    np.savetxt(path, table, delimiter=",", header=header, comments="", fmt="%.8g")


domain = Domain(
    name="timeseries",
    config=TimeSeriesConfig,
    build_network=build_network,
    load_data=load_data,
    generate=generate,
    evaluate=evaluate,
    save_samples=save_samples,
    description=(
        "TimeGrad: an RNN over time conditions a denoiser per step (multivariate); or "
        "--architecture horizon: a transformer denoises the whole horizon at once."
    ),
    loss=loss,
    defaults={"diffusion": DIFFUSION_DEFAULTS, "train": TRAIN_DEFAULTS, "model": MODEL_DEFAULTS},
    defaults_for=architecture_defaults,
    forecast=forecast,
    impute=impute,
    options={"evaluate": EvaluateOptions, "forecast": ForecastOptions, "impute": ImputeOptions},
    bench=bench_cases,
)
