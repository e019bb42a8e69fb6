"""Imputation: sample the missing values inside an observed history (``diffkit impute``).

A gap is a run of time steps with at least one missing value. Each gap is drawn as a
forecast from everything before it (earlier gaps as already drawn, path by path), step by
step; at a step where some series are observed, the draw is conditioned on them through
the core's inpainting (``known``/``mask``, :func:`diffkit.guidance.with_known`) and keeps
them. The values after a gap are used too: each path is weighted by the model's density
of the first observed step after the gap (the exp of minus its variational bound,
tempered so that half the paths' worth of diversity stays), and the gap's draws are
resampled by those weights, a particle filter's step (``resample``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from diffkit.errors import ConfigError
from diffkit.likelihood import variational_bound

from .evaluate import QUANTILES, sample_quantiles
from .features import time_features
from .module import TimeGradModel, last_observed
from .series import Series
from .windows import padded

Tensor = torch.Tensor


def gaps(observed: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs ``[start, end)`` of rows (T, D) with at least one missing value."""
    missing = ~observed.all(axis=1)  # (T,)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], missing.astype(int), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


@torch.no_grad()
def impute_paths(
    net: TimeGradModel,
    series: Series,
    *,
    num_samples: int = 100,
    sampler: str = "ddpm",
    steps: int | None = None,
    generator: torch.Generator | None = None,
    covariates=None,
    resample: bool = True,
) -> np.ndarray:
    """Sample paths (S, T, D) of ``series`` with its missing values drawn, observed kept.

    Parameters
    ----------
    net
        A trained network (in eval mode) of ``series``' D series and frequency.
    series
        The history, NaN where missing.
    num_samples
        S, the number of paths.
    sampler, steps
        Core sampler and its model calls per drawn step.
    generator
        Draws the diffusion noise and the resampling.
    covariates
        The standardised :class:`~.covariate_data.Covariates` of the series, if the
        network reads some.
    resample
        Weight and resample the paths by the first observed step after each gap.
    """
    c, S = net.config, num_samples
    if c.architecture != "timegrad":
        raise ConfigError(
            f"imputation draws each gap step by step, which the {c.architecture} network "
            "does not; impute with a run trained with --architecture timegrad."
        )
    Tp = c.history_length
    device = next(net.parameters()).device
    values, index = padded(series, Tp)  # (Tp + T, D): Tp missing steps in front
    feats = torch.from_numpy(time_features(index, c.freq)).to(device)  # (Tp + T, F)
    paths = torch.from_numpy(values.astype(np.float32)).to(device)
    paths = paths[None].repeat(S, 1, 1)  # (S, Tp + T, D)
    dynamic, static = _covariate_tensors(covariates, Tp, device)
    for start, end in gaps(np.isfinite(series.values)):
        a, b = start + Tp, end + Tp  # rows of the padded arrays
        window = _inputs(feats, dynamic, static, a - Tp, a, b, S)
        drawn = net.forecast(
            paths[:, a - Tp : a],
            None,
            window["past_time_feat"],
            window["future_time_feat"],
            num_samples=1,
            sampler=sampler,
            steps=steps,
            generator=generator,
            covariates=window["covariates"],
            future_known=paths[:, a:b],
        )  # (S, 1, b - a, D)
        paths[:, a:b] = drawn[:, 0]
        if resample and end < series.length:
            window = paths[:, b - Tp : b + 1]
            log_w = next_log_density(net, window, feats, dynamic, static, b, generator)
            choice = _systematic(tempered(log_w), generator)
            paths[:, a:b] = paths[choice, a:b]  # the gap only: earlier gaps keep their spread
    out = paths[:, Tp:].cpu().double().numpy()
    observed = np.isfinite(series.values)
    out[:, observed] = series.values[observed]  # exactly, not through float32
    return out


def next_log_density(net, window: Tensor, feats, dynamic, static, b: int, generator=None):
    """Minus the variational bound of each path's last step given its Tp steps before (S,)."""
    c = net.config
    S, Tp = window.shape[0], c.history_length
    inputs = _inputs(feats, dynamic, static, b - Tp, b, b + 1, S)
    cov = inputs["covariates"]
    observed, scale, scaled, ctx_feat = net._prepare(
        window[:, :Tp], None, inputs["past_time_feat"], cov.get("past_feat_dynamic_real"), cov
    )
    _, state = net.rnn(net._rnn_inputs(scaled, observed, ctx_feat))
    seq = torch.cat([scaled, window[:, Tp:] / scale], dim=1)  # (S, Tp + 1, D)
    obs = torch.cat([observed, torch.ones_like(observed[:, :1])], dim=1)
    future = net.covariates(
        inputs["future_time_feat"], cov.get("future_feat_dynamic_real"), cov, "future"
    )
    hidden, _ = net.rnn(net._rnn_inputs(seq, obs, future), state)
    cond = net.cond_projection(hidden[:, 0])  # (S, H)
    x = seq[:, -1]  # (S, D) scaled level
    if c.target_lag:
        base = net._base(seq, obs, Tp, last_observed(scaled, observed))
        x = (x - base) / net._step_scale(scaled, observed)[:, 0]

    def denoiser(x_t, t, cond):  # the bound works in float64, the network in its own dtype
        return net.denoiser(x_t.to(cond.dtype), t, cond=cond).double()

    # A bound over 20 of the schedule's steps (still a bound, looser) keeps the weight
    # cheap next to drawing the gap.
    times = torch.linspace(net.schedule.t_min, net.schedule.t_max, min(20, net.schedule.T))
    if net.schedule.discrete:
        times = times.round().unique()
    bound = variational_bound(
        denoiser, x, net.schedule, prediction=c.prediction, cond={"cond": cond},
        decoder="gaussian", generator=generator, times=times.double(),
    )  # fmt: skip
    return -bound.total


def tempered(log_w: Tensor, min_ess: float = 0.5) -> Tensor:
    """``beta * log_w`` with the largest beta in [0, 1] whose weights keep an effective
    sample size of at least ``min_ess * S`` (adaptive tempering, found by bisection).

    A density over D values separates the paths by many nats, so full weights would
    leave one path; tempering keeps the draws diverse while leaning towards the paths
    that agree with the observed step after the gap.
    """
    log_w = log_w.double()

    def ess(beta: float) -> float:
        w = torch.softmax(beta * log_w, dim=0)
        return float(1.0 / (w**2).sum())

    S = log_w.shape[0]
    if ess(1.0) >= min_ess * S:
        return log_w
    lo, hi = 0.0, 1.0
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ess(mid) >= min_ess * S else (lo, mid)
    return lo * log_w


def _systematic(log_w: Tensor, generator) -> Tensor:
    """Systematic resampling: S indices drawn in proportion to exp(log_w)."""
    S = log_w.shape[0]
    w = torch.softmax(log_w.double(), dim=0).cpu()
    u = (torch.rand((), generator=_cpu(generator), dtype=torch.float64) + torch.arange(S)) / S
    return torch.searchsorted(torch.cumsum(w, 0), u).clamp_max(S - 1).to(log_w.device)


def _cpu(generator):
    return generator if generator is None or generator.device.type == "cpu" else None


def _covariate_tensors(covariates, front: int, device):
    if covariates is None:
        return None, None
    dynamic = np.concatenate([np.zeros((front, covariates.dynamic.shape[1])), covariates.dynamic])
    dynamic = torch.from_numpy(dynamic.astype(np.float32)).to(device)  # (front + T', K)
    static = torch.from_numpy(covariates.static.astype(np.float32)).to(device)  # (S,)
    return dynamic, static


def _inputs(feats, dynamic, static, lo: int, a: int, b: int, S: int) -> dict:
    """Time features of rows [lo, a) and [a, b) for S paths, and their covariates."""
    out = {
        "past_time_feat": feats[lo:a].expand(S, -1, -1),
        "future_time_feat": feats[a:b].expand(S, -1, -1),
        "covariates": {},
    }
    if dynamic is not None:
        out["covariates"] = {
            "past_feat_dynamic_real": dynamic[lo:a].expand(S, -1, -1),
            "future_feat_dynamic_real": dynamic[a:b].expand(S, -1, -1),
            "feat_static_real": static.expand(S, -1),
        }
    return out


def impute_frame(paths: np.ndarray, series: Series) -> pd.DataFrame:
    """The filled table: one row per series and timestamp, imputed cells marked.

    Columns ``series, timestamp, observed, value, mean, q0.05 .. q0.95``: ``value`` is the
    observed value, or the median of the paths where it was missing; on observed cells the
    mean and quantiles are the value itself.
    """
    _, T, D = paths.shape
    frame = pd.DataFrame(
        {
            "series": np.repeat(np.asarray(series.names, dtype=object), T),
            "timestamp": np.tile(np.asarray(series.index), D),
            "observed": np.isfinite(series.values).T.reshape(D * T),
        }
    )
    levels = sample_quantiles(paths, QUANTILES)  # (Q, T, D)
    median = sample_quantiles(paths, [0.5])[0]  # (T, D)
    frame["value"] = np.where(np.isfinite(series.values), series.values, median).T.reshape(-1)
    frame["mean"] = paths.mean(axis=0).T.reshape(D * T)
    for q, level in zip(QUANTILES, levels, strict=True):
        frame[f"q{q:.2f}"] = level.T.reshape(D * T)
    return frame


def save_impute_chart(series: Series, paths: np.ndarray, path: Path) -> Path:
    """The longest gap and its surroundings, one panel per series missing values there:
    observed values (line), and at each missing cell the median (dot) and 90% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    observed = np.isfinite(series.values)  # (T, D)
    runs = gaps(observed) or [(0, 1)]
    a, b = max(runs, key=lambda r: r[1] - r[0])
    margin = max(20, 2 * (b - a))
    lo, hi = max(0, a - margin), min(series.length, b + margin)
    shown = [d for d in range(series.dim) if not observed[lo:hi, d].all()][:8] or [0]
    x = series.index[lo:hi]
    band = np.quantile(paths[:, lo:hi], [0.05, 0.5, 0.95], axis=0)  # (3, T', D)
    fig, axes = plt.subplots(len(shown), 1, figsize=(9, 2.2 * len(shown)), squeeze=False)
    for ax, d in zip(axes[:, 0], shown, strict=True):
        gap = ~observed[lo:hi, d]
        ax.plot(x, series.values[lo:hi, d], color="black", lw=1, label="observed")
        ax.vlines(x[gap], band[0, gap, d], band[2, gap, d], color="tab:blue", alpha=0.4,
                  lw=3, label="imputed 90%")  # fmt: skip
        ax.plot(x[gap], band[1, gap, d], ".", color="tab:blue", ms=5, label="imputed median")
        ax.set_title(f"{series.names[d]}: {int(gap.sum())} missing values here", fontsize=9)
    axes[0, 0].legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
