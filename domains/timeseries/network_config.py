"""The time-series network's settings: :class:`TimeGradConfig` (TimeGrad's reference values
of Rasul et al. 2021, or the whole-horizon transformer's with ``architecture="horizon"``).

Kept apart from the network (:mod:`.module`) so the glue and the CLI can build, check and
complete a configuration without the network's code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from diffkit.errors import ConfigError, check_choice
from diffkit.schedules import Schedule, from_config

from .denoiser import DenoiserConfig
from .features import default_lags, default_season, num_time_features
from .series import normalise_freq

TARGETS = ("level", "difference", "seasonal", "auto")
ARCHITECTURES = ("timegrad", "horizon")
HORIZON_CENTRES = ("mean", "last")  # what the horizon network standardises about
# The horizon network's least context deviation, as a fraction of the context's mean |x|.
# Exchange's validation windows (3,000 steps, seed 0): CRPS-sum 0.00789 at 1e-3, 0.00739 at
# 1e-2, 0.00728 at 3e-2 (under 1e-3 the pegged CNY's flat 30-day contexts put horizons up to
# 335 deviations away); no ETTh1 window's deviation is under 4.8% of its level, so there it
# changes nothing.
RELATIVE_FLOOR = 3e-2
# The horizon network's default context, in horizons: on ETTh1's validation windows a week
# (168 h) before a day's horizon beat three days (CRPS-sum 0.160 against 0.164 at 3,000 steps;
# benchmarks/results/timeseries-horizon.md); TimeGrad's RNN reads one horizon and its lags.
HORIZON_CONTEXT = 7


def _reference_schedule() -> dict:
    return {"name": "linear", "T": 100, "beta_start": 1e-4, "beta_end": 0.1}


@dataclass(frozen=True)
class TimeGradConfig:
    """Settings of the network (:func:`~.networks.build_model`); defaults are TimeGrad's.

    Parameters
    ----------
    architecture
        "timegrad": TimeGrad's RNN over time conditioning a denoiser per step
        (:class:`~.module.TimeGradModel`, the reference); "horizon": a transformer over
        context and horizon that denoises the whole horizon at once
        (:class:`~.horizon.HorizonModel`), which reads neither the lags nor the RNN's,
        denoiser's and embedding's settings and models the standardised level.
    transformer_width, transformer_depth, transformer_heads
        The horizon network's token width, encoder layers and attention heads.
    horizon_centre, relative_floor
        How the horizon network standardises each window per series: about the context's
        mean ("mean") or its last observed value ("last"), divided by the context's
        standard deviation, floored at ``relative_floor`` times its mean |x|.
    target_dim
        D, the number of series forecast jointly (None until the data are known: the CLI
        fills it in from them).
    prediction_length
        Th, the forecast horizon.
    context_length
        Tc, the steps the network reads before the horizon (and the scaling window);
        defaults to ``prediction_length`` (TimeGrad) or ``HORIZON_CONTEXT`` horizons (the
        horizon network).
    freq
        Pandas frequency string; it picks the default lags and the time features (None
        until the data are known).
    lags
        Positive lags of the RNN input; ``default_lags(freq)`` when omitted. The seasonal
        target adds its season.
    cell_type, num_layers, num_cells, dropout
        The RNN: "gru" or "lstm", 2 layers of 40 cells by default.
    embedding_dim
        Size of the learned per-series embedding.
    cond_dim
        Size H of the conditioning vector projected from the RNN state.
    denoiser
        Architecture of the conditional denoiser.
    schedule
        Diffusion schedule as ``Schedule.config()`` data (or a Schedule); reference: 100
        linear steps, beta 1e-4..0.1. The CLI sets it (and ``prediction``) from the run's
        ``[diffusion]`` section, so neither is a ``[model]`` key.
    prediction
        What the denoiser predicts: "eps", "x0" or "v".
    scaling, min_scale
        Divide each series by its mean |x| over the observed context values (floored).
    num_feat_dynamic_real
        K, covariates known in the past and the future (prices, holidays, weather
        forecasts): (B, T, K) tensors beside the time features, read by the RNN at the
        step they belong to, so each step's draw is conditioned on that step's values.
    max_loss_values
        Values (windows x positions x series) the denoiser reads per training step at
        most: beyond it (hundreds of series), each window's loss reads a random subset of
        its positions, the same number for every window, an unbiased estimate of the same
        loss at a cost that no longer grows with the positions; the RNN still reads them
        all. None: every position. No change at 8 series and batches of 64.
    num_feat_static_real, cardinality, static_embedding_dim
        Static features of each example: S real values, and one categorical per entry of
        ``cardinality`` (its number of categories), each embedded in
        ``static_embedding_dim`` values; both reach the RNN at every step.
    target
        What the diffusion models at each step: "level", the scaled value (TimeGrad), or
        "difference", the change from the previous step divided by the series' mean
        absolute change over the context. Differences suit series that move little per
        step relative to their level (exchange rates, prices): there the scaled level's
        conditional spread is far below the schedule's smallest noise, and the sampler's
        last denoising step shrinks it (by half at a spread of 0.005 with the reference
        schedule), while differences have a spread near 1.
    """

    target_dim: int | None = None
    prediction_length: int = 24
    context_length: int | None = None
    freq: str | None = None
    lags: tuple[int, ...] | None = None
    cell_type: str = "gru"
    num_layers: int = 2
    num_cells: int = 40
    dropout: float = 0.1
    embedding_dim: int = 1
    cond_dim: int = 100
    denoiser: DenoiserConfig = field(default_factory=DenoiserConfig)
    schedule: dict = field(default_factory=_reference_schedule, metadata={"engine": True})
    prediction: str = field(default="eps", metadata={"engine": True})
    scaling: bool = True
    min_scale: float = 1e-5
    target: str = "level"
    season: int | None = None
    num_feat_dynamic_real: int = 0
    num_feat_static_real: int = 0
    cardinality: tuple[int, ...] = ()
    static_embedding_dim: int = 2
    max_loss_values: int | None = 2**16
    architecture: str = "timegrad"
    transformer_width: int = 64
    transformer_depth: int = 3
    transformer_heads: int = 4
    horizon_centre: str = "mean"
    relative_floor: float = RELATIVE_FLOOR

    def __post_init__(self):
        lags = self.lags or (default_lags(self.freq) if self.freq else None)
        season = default_season(self.freq) if self.freq else None
        fill = {
            "freq": normalise_freq(self.freq) if self.freq else None,  # "H" and "h" alike
            "context_length": self.context_length
            or self.prediction_length * (HORIZON_CONTEXT if self.architecture == "horizon" else 1),
            "season": self.season if self.season is not None or not self.freq else season,
            "cardinality": tuple(int(c) for c in self.cardinality),
            # the horizon network standardises each window: nothing for "auto" to choose
            "target": "level"
            if (self.architecture, self.target) == ("horizon", "auto")
            else self.target,
            # canonical form (every parameter spelled out) so equal schedules compare equal
            "schedule": (
                self.schedule if isinstance(self.schedule, Schedule) else from_config(self.schedule)
            ).config(),
        }
        if isinstance(self.denoiser, dict):  # read back from JSON
            fill["denoiser"] = DenoiserConfig(**self.denoiser)
        if lags and self.target == "seasonal" and fill["season"]:
            lags = (*lags, fill["season"])  # the RNN reads the value the target starts from
        fill["lags"] = tuple(sorted(set(lags))) if lags else None
        for name, value in fill.items():
            object.__setattr__(self, name, value)
        check_choice("cell type", self.cell_type, ("gru", "lstm"))
        check_choice("prediction", self.prediction, ("eps", "x0", "v"))
        check_choice("target", self.target, TARGETS)
        check_choice("architecture", self.architecture, ARCHITECTURES)
        if self.architecture == "horizon" and self.target != "level":
            raise ConfigError(
                f"the horizon network models each window's standardised level, not the "
                f"{self.target} target; drop --target, or pass --architecture timegrad."
            )
        check_choice("horizon centre", self.horizon_centre, HORIZON_CENTRES)
        if not self.relative_floor >= 0:
            raise ConfigError(
                f"relative_floor must be at least 0 (a fraction of the mean |x|, like 3e-2); "
                f"got {self.relative_floor}."
            )
        for name in ("transformer_width", "transformer_depth", "transformer_heads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1; got {getattr(self, name)}.")
        if self.transformer_width % self.transformer_heads:
            raise ConfigError(
                f"transformer_width {self.transformer_width} must be a multiple of "
                f"transformer_heads {self.transformer_heads}; pass widths like "
                f"{self.transformer_heads * 16}."
            )
        if self.season is not None and self.season < 1:
            raise ConfigError(f"season must be at least 1 step; got {self.season}.")
        for name in ("target_dim", "prediction_length", "num_layers", "num_cells", "cond_dim"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be at least 1; got {value}.")
        if self.embedding_dim < 1 or not 0 <= self.dropout < 1 or self.min_scale <= 0:
            raise ConfigError(
                "embedding_dim must be at least 1, dropout lie in [0, 1) and min_scale be "
                f"positive; got {self.embedding_dim}, {self.dropout} and {self.min_scale}."
            )
        if min(self.num_feat_dynamic_real, self.num_feat_static_real) < 0 or any(
            c < 1 for c in self.cardinality
        ):
            raise ConfigError(
                "covariate counts must be at least 0 and every cardinality at least 1; got "
                f"{self.num_feat_dynamic_real}, {self.num_feat_static_real} and "
                f"{self.cardinality}."
            )
        if self.max_loss_values is not None and self.max_loss_values < 1:
            raise ConfigError(
                f"max_loss_values must be at least 1 (or none); got {self.max_loss_values}."
            )
        if self.static_embedding_dim < 1:
            raise ConfigError(
                f"static_embedding_dim must be at least 1; got {self.static_embedding_dim}."
            )
        if self.lags is not None and self.lags[0] < 1:
            raise ConfigError(f"lags must be positive (1 = the previous step); got {self.lags}.")

    def check_complete(self) -> None:
        """ConfigError unless the data-dependent ``target_dim``, ``freq`` and target are set."""
        if self.target_dim is None or self.freq is None:
            raise ConfigError(
                "the number of series and the frequency are not known yet; load the data "
                "first (they are filled in from it) or set target_dim and freq."
            )
        if self.target == "auto":
            raise ConfigError(
                "target 'auto' is chosen from the data by `diffkit train`; pass level, "
                "difference or seasonal to a network built directly."
            )

    @property
    def target_lag(self) -> int:
        """How far back the value the target is measured from lies: 0 for the level."""
        if self.architecture == "horizon":
            return 0
        return {"level": 0, "difference": 1}.get(self.target, self.season or 1)

    @property
    def history_length(self) -> int:
        """Past steps the model needs: the context plus the largest lag (or the season);
        the context alone for the horizon network."""
        self.check_complete()
        if self.architecture == "horizon":
            return self.context_length
        return self.context_length + max(*self.lags, self.target_lag)

    @property
    def num_time_features(self) -> int:
        """Columns of the time features the model expects (``num_time_features(freq)``)."""
        self.check_complete()
        return num_time_features(self.freq)
