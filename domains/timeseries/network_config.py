"""TimeGrad's settings: :class:`TimeGradConfig` (reference values of Rasul et al. 2021).

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


def _reference_schedule() -> dict:
    return {"name": "linear", "T": 100, "beta_start": 1e-4, "beta_end": 0.1}


@dataclass(frozen=True)
class TimeGradConfig:
    """Settings of :class:`TimeGradModel`; defaults are TimeGrad's reference values.

    Parameters
    ----------
    target_dim
        D, the number of series forecast jointly (None until the data are known: the CLI
        fills it in from them).
    prediction_length
        Th, the forecast horizon.
    context_length
        Tc, the steps the RNN reads before the horizon (and the scaling window); defaults
        to ``prediction_length``.
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

    def __post_init__(self):
        lags = self.lags or (default_lags(self.freq) if self.freq else None)
        season = default_season(self.freq) if self.freq else None
        fill = {
            "freq": normalise_freq(self.freq) if self.freq else None,  # "H" and "h" alike
            "context_length": self.context_length or self.prediction_length,
            "season": self.season if self.season is not None or not self.freq else season,
            "cardinality": tuple(int(c) for c in self.cardinality),
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
        return {"level": 0, "difference": 1}.get(self.target, self.season or 1)

    @property
    def history_length(self) -> int:
        """Past steps the model needs: the context plus the largest lag (or the season)."""
        self.check_complete()
        return self.context_length + max(*self.lags, self.target_lag)

    @property
    def num_time_features(self) -> int:
        """Columns of the time features the model expects (``num_time_features(freq)``)."""
        self.check_complete()
        return num_time_features(self.freq)
