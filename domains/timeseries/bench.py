"""The time-series domain's benchmark: CRPS-sum and CRPS of TimeGrad against NFE per sampler.

TimeGrad is trained briefly on the built-in seasonal VAR (and, beyond smoke, on Exchange
from ``--data-dir``), then forecasts the held-out rolling windows with every sampler at
every budget of denoiser calls per forecast step. Beside it, in the same run: the true
predictive law of the VAR (the floor a perfect forecaster reaches), a random walk with
Gaussian increments, the seasonal naive forecast, and beyond smoke GluonTS's DeepAR
(imported only then; "reference not installed" without gluonts). Metrics are
:mod:`.evaluate`'s, equal to GluonTS's MultivariateEvaluator.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from functools import partial

import numpy as np
import torch

from diffkit.bench import (
    NOT_INSTALLED,
    Case,
    Context,
    Skip,
    counting,
    fitted,
    result,
    row,
    steps_for,
)
from diffkit.bench.train import train
from diffkit.config import DiffusionConfig
from diffkit.domain import DomainData
from diffkit.sampling import using_spacing

from .evaluate import evaluate as score
from .module import TimeGradConfig
from .series import Split, rolling_windows
from .synthetic import seasonal_var, synthetic, true_predictive_samples
from .windows import WindowDataset

# suite -> training steps, batch, horizon, test windows, sample paths, DeepAR
BUDGETS = {
    "smoke": {"steps": 150, "batch": 32, "horizon": 12, "windows": 2, "paths": 32, "deepar": 0},
    "quick": {"steps": 300, "batch": 64, "horizon": 24, "windows": 4, "paths": 50, "deepar": 1},
    "full": {"steps": 2000, "batch": 64, "horizon": 24, "windows": 7, "paths": 100, "deepar": 1},
}
UNIT = "CRPS-sum (relative to the sum's scale)"
# suite -> budgets whose steps are fitted (of those the run asks for), calibration windows
# (from the training range), sample paths per window, and sampling runs per fitted step
FIT = {"smoke": ((5,), 1, 8, 2), "quick": ((10,), 1, 16, 6), "full": ((10,), 2, 16, 15)}
REFERENCE_STEPS = {"smoke": 20, "quick": 100, "full": 100}  # of the fit's reference solve
METRICS = ("crps_sum", "crps")


def increments(values: np.ndarray) -> np.ndarray:
    """The steps' changes (T - 1, D), rows with a missing value dropped."""
    inc = np.diff(values, axis=0)
    return inc[np.isfinite(inc).all(axis=1)]


def random_walk(
    split: Split, num_samples: int, seed: int = 0, *, scale: float = 1.0, recent: int | None = None
) -> list[np.ndarray]:
    """Last value plus Gaussian increments with the training range's mean and covariance.

    ``scale`` multiplies the covariance (0: a point forecast, the last value plus the drift); with
    ``recent``, each window's covariance is that of its own history's last ``recent`` steps
    (the volatility of late, as a GARCH-minded forecaster would take it).
    """
    inc = increments(split.train.values)
    mean, cov = inc.mean(axis=0), np.cov(inc, rowvar=False)
    rng = np.random.default_rng(seed)
    out = []
    for history in split.histories:
        last = history.values[np.isfinite(history.values).all(axis=1)][-1]
        own = cov if recent is None else np.cov(increments(history.values[-recent:]), rowvar=False)
        size = (num_samples, split.prediction_length)
        steps = rng.multivariate_normal(mean, own * scale, size=size)
        out.append(last + np.cumsum(steps, axis=1))  # (S, Th, D)
    return out


def seasonal_naive(split: Split, season: int, num_samples: int) -> list[np.ndarray]:
    """The value one season earlier, as ``num_samples`` identical paths (a point forecast)."""
    Th, out = split.prediction_length, []
    for history in split.histories:
        past = history.values[-season:]  # (season, D)
        path = np.stack([past[h % season] for h in range(Th)])  # (Th, D)
        out.append(np.repeat(path[None], num_samples, axis=0))  # (S, Th, D)
    return out


def deepar(split: Split, budget_s: float, seed: int, num_samples: int) -> list[np.ndarray]:
    """GluonTS's torch DeepAR on the series as univariate items, stopped after ``budget_s``."""
    import pandas as pd
    from gluonts.dataset.common import ListDataset
    from gluonts.torch.model.deepar import DeepAREstimator

    freq, Th = split.train.freq, split.prediction_length

    def items(series):
        start = pd.Period(series.index[0], freq=freq)
        return [{"start": start, "target": series.values[:, d]} for d in range(series.dim)]

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as root:  # GluonTS keeps a best-epoch checkpoint
        trainer = {
            "max_time": {"seconds": max(budget_s, 5)},
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": False,
            "default_root_dir": root,
        }
        estimator = DeepAREstimator(
            freq=freq, prediction_length=Th, context_length=Th, trainer_kwargs=trainer
        )
        predictor = estimator.train(ListDataset(items(split.train), freq=freq))
    out = []
    for history in split.histories:
        forecasts = list(predictor.predict(ListDataset(items(history), freq=freq)))
        out.append(np.stack([f.samples[:num_samples] for f in forecasts], axis=-1))  # (S, Th, D)
    return out


def metrics(samples: list[np.ndarray], split: Split) -> dict[str, float]:
    m = score(samples, split.targets).as_dict()
    return {k: m[k] for k in METRICS}


def run_forecasts(load, season: int, suite: str, context: Context) -> dict:
    """Train on ``load()``'s data, then every (sampler, NFE) and the references."""
    from .domain import DIFFUSION_DEFAULTS, domain, forecast_paths  # it imports this module

    b = BUDGETS[suite]
    config, split, process = load(b)
    diffusion = DiffusionConfig(**DIFFUSION_DEFAULTS)
    data = DomainData(WindowDataset(split, config.network), None, {}, config)
    trained = train(
        domain,
        config,
        data,
        diffusion,
        steps=b["steps"],
        batch_size=b["batch"],
        seed=context.seed,
        device=context.device,
    )
    net, T = trained.net, diffusion.T
    rows, Th, S = [], split.prediction_length, b["paths"]
    for sampler in context.samplers:
        for nfe in context.nfes:
            steps = steps_for(sampler, nfe, T)
            g = torch.Generator(device=context.device).manual_seed(context.seed + 1)
            with counting(net.denoiser) as calls, torch.no_grad():
                t0 = time.perf_counter()
                samples, _ = forecast_paths(
                    net,
                    list(split.histories),
                    num_samples=S,
                    sampler=sampler,
                    steps=steps,
                    generator=g,
                )
                wall = time.perf_counter() - t0
            per_step = calls() / Th  # one batched sample() per forecast step
            paths = list(samples.cpu().double().numpy())
            rows.append(
                row(
                    "diffkit",
                    sampler,
                    round(per_step),
                    nfe_budget=nfe,
                    steps=steps,
                    wall_s=wall,
                    **metrics(paths, split),
                )
            )
            context.advance()
    notes = fitted_rows(rows, net, split, S, context)
    references = {"random walk": "ok", "seasonal naive": "ok"}
    t0 = time.perf_counter()
    rw = metrics(random_walk(split, S, context.seed), split)
    rows.append(row("baseline", "random walk", None, wall_s=time.perf_counter() - t0, **rw))
    t0 = time.perf_counter()
    sn = metrics(seasonal_naive(split, season, S), split)
    rows.append(
        row("baseline", f"seasonal naive ({season})", None, wall_s=time.perf_counter() - t0, **sn)
    )
    if b["deepar"]:
        references["DeepAR (GluonTS)"] = _deepar_row(rows, split, trained.seconds, context, S)
    floor = {}
    if process is not None:
        truth = [
            true_predictive_samples(process, h.values, Th, S, seed=context.seed + k)
            for k, h in enumerate(split.histories)
        ]
        floor = metrics(truth, split)
        references["true law"] = "ok"
    setup = (
        f"TimeGrad ({trained.summary()['params']} parameters) trained {b['steps']} steps "
        f"(batch {b['batch']}); {len(split.tests)} rolling windows of {Th} steps, {S} sample "
        f"paths each, {split.train.dim} series; diffusion T={T}, linear beta 1e-4..0.1. NFE "
        "is denoiser calls per forecast step."
    )
    return result(
        rows,
        references,
        floor=floor,
        curve=trained.curve,
        setup=setup,
        floor_label="true law",
        train=trained.summary(),
        notes=notes,
    )


def fitted_rows(rows, net, split: Split, S: int, context: Context) -> list[str]:
    """Add every fixed spacing's and the fitted steps' rows of :data:`fitted.SAMPLER` at
    :data:`FIT`'s budgets to ``rows``; returns the notes. The fit forecasts windows of the
    training range with its own noise seed: neither the test windows nor their noise."""
    from .domain import forecast_paths  # it imports this module

    sampler, Th = fitted.SAMPLER, split.prediction_length
    if sampler not in context.samplers:
        return []
    nfes, windows, paths, evals = FIT[context.suite]
    calibration = list(rolling_windows(split.train, Th, windows).histories)

    def forecast(histories, paths, seed, name, steps):
        g = torch.Generator(device=context.device).manual_seed(seed)
        samples, _ = forecast_paths(
            net, histories, num_samples=paths, sampler=name, steps=steps, generator=g
        )
        return samples  # (B, paths, Th, D)

    def run(times, name=sampler):
        seed = context.seed + fitted.CALIBRATION_SEED
        with using_spacing(times):
            return forecast(calibration, paths, seed, name, len(times))

    def evaluate(spacing, steps, name=sampler):
        with counting(net.denoiser) as calls, torch.no_grad(), using_spacing(spacing):
            samples = forecast(list(split.histories), S, context.seed + 1, name, steps)
        return round(calls() / Th), metrics(list(samples.cpu().double().numpy()), split)

    notes, T = [], net.schedule.T
    for nfe in (n for n in nfes if n in context.nfes):
        steps = steps_for(sampler, nfe, T)
        fit = fitted.fit_run(run, net.schedule, sampler=sampler, nfe=nfe, max_evals=evals * steps,
                             reference_steps=REFERENCE_STEPS[context.suite])  # fmt: skip
        rows += fitted.compare(evaluate, fit, rows, sampler=sampler, nfe=nfe, steps=steps,
                               target=net.schedule)  # fmt: skip
        notes.append(fitted.note(rows, "crps_sum", sampler=sampler, nfe=nfe))
    return notes


def _deepar_row(rows, split, budget_s, context, S) -> str:
    try:
        import gluonts  # noqa: F401
    except ImportError:
        return NOT_INSTALLED
    t0 = time.perf_counter()
    try:
        values = metrics(deepar(split, budget_s, context.seed, S), split)
    except Exception as e:  # a reference that fails is reported, not fatal to the case
        return f"failed: {type(e).__name__}: {e}"
    rows.append(row("GluonTS", "DeepAR", None, wall_s=time.perf_counter() - t0, **values))
    return "ok"


def synthetic_data(budget: dict):
    """The built-in seasonal VAR (8 series, weekly season), its split and true law."""
    from .domain import TimeSeriesConfig

    net = TimeGradConfig(prediction_length=budget["horizon"])
    config = TimeSeriesConfig(network=net, test_windows=budget["windows"])
    series = synthetic(config.synthetic_length, freq="D", seed=config.data_seed)
    config = dataclasses.replace(
        config, network=dataclasses.replace(net, target_dim=series.dim, freq="D")
    )
    split = rolling_windows(series, budget["horizon"], budget["windows"])
    return config, split, seasonal_var()


def exchange_data(data_dir, budget: dict):
    """GluonTS's exchange_rate_nips from ``data_dir`` (Skip when absent)."""
    from .data import exchange_rate_nips
    from .domain import TimeSeriesConfig

    folder = data_dir / "exchange_rate" / "exchange_rate.txt.gz" if data_dir else None
    if folder is None or not folder.is_file():
        raise Skip("Exchange needs --data-dir holding exchange_rate/exchange_rate.txt.gz.")
    split = exchange_rate_nips(folder)
    net = TimeGradConfig(
        prediction_length=30,
        context_length=30,
        freq="B",
        target="difference",
        target_dim=split.train.dim,
    )
    return TimeSeriesConfig(network=net, test_windows=5), split, None


def _exchange(suite: str, context: Context) -> dict:
    return run_forecasts(partial(exchange_data, context.data_dir), 5, suite, context)


def cases(suite: str) -> list[Case]:
    """The synthetic VAR in every suite; Exchange from ``--data-dir`` beyond smoke."""
    refs = ("true law", "random walk", "seasonal naive")
    common = dict(
        domain="timeseries",
        metric="crps_sum",
        unit=UNIT,
        metrics=("crps",),
        labels={"crps": "CRPS (relative to the series' scale)"},
        nfe_label="denoiser calls per forecast step (NFE)",
    )
    deepar_ref = () if suite == "smoke" else ("DeepAR (GluonTS)",)
    out = [
        Case(
            name="var",
            title="TimeGrad on the built-in seasonal VAR (true law known)",
            references=refs + deepar_ref,
            run=partial(run_forecasts, synthetic_data, 7, suite),
            **common,
        )
    ]
    if suite != "smoke":
        out.append(
            Case(
                name="exchange",
                title="TimeGrad on Exchange (exchange_rate_nips)",
                references=refs[1:] + deepar_ref,
                run=partial(_exchange, suite),
                **common,
            )
        )
    return out
