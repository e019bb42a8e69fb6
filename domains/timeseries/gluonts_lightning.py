"""GluonTS's thin Lightning layer around :class:`TimeGradModel` (its ``lightning_module.py``).

The module only maps GluonTS's batch fields onto the network's ``loss`` and ``forecast``;
the network itself stays pure torch. Its constructor takes plain data (the config as a
dict) so GluonTS's ``@validated`` serialisation can write and rebuild it with a predictor.
"""

import lightning.pytorch as pl
import torch
from gluonts.core.component import validated

from .covariates import covariate_names
from .module import TimeGradConfig
from .networks import build_model

# GluonTS field names the network reads, in the order the predictor passes them.
PREDICTION_INPUT_NAMES = [
    "past_target",
    "past_observed_values",
    "past_time_feat",
    "future_time_feat",
]
TRAINING_INPUT_NAMES = [*PREDICTION_INPUT_NAMES, "future_target", "future_observed_values"]


class TimeGradLightningModule(pl.LightningModule):
    """Trains the network (TimeGrad or the horizon transformer) on GluonTS batches; forecasts
    for a predictor.

    Parameters
    ----------
    config
        ``dataclasses.asdict`` of a :class:`TimeGradConfig`.
    lr, weight_decay
        Adam's settings (TimeGrad's reference: 1e-3, 1e-8).
    num_parallel_samples
        Sample paths drawn per series in ``forward``.
    sampler, steps
        Core sampler and its model calls per time step when forecasting (default: DDPM
        over every schedule step).
    lead_time
        Steps drawn before the forecast and dropped from it (GluonTS's ``lead_time``).
    """

    @validated()
    def __init__(
        self,
        config: dict,
        lr: float = 1e-3,
        weight_decay: float = 1e-8,
        num_parallel_samples: int = 100,
        sampler: str = "ddpm",
        steps: int | None = None,
        lead_time: int = 0,
    ) -> None:
        super().__init__()
        self.lead_time = lead_time
        self.model = build_model(TimeGradConfig(**config))
        self.lr = lr
        self.weight_decay = weight_decay
        self.num_parallel_samples = num_parallel_samples
        self.sampler = sampler
        self.steps = steps

    def forward(
        self,
        past_target: torch.Tensor,
        past_observed_values: torch.Tensor,
        past_time_feat: torch.Tensor,
        future_time_feat: torch.Tensor,
        generator: torch.Generator | None = None,
        **covariates: torch.Tensor,
    ) -> torch.Tensor:
        """Sample paths (B, S, Th, D) in the original scale, as GluonTS's predictor expects.

        ``future_time_feat`` (and ``future_feat_dynamic_real``) cover the gap and the
        horizon; the gap's draws are dropped. ``covariates`` by GluonTS field name.
        """
        paths = self.model.forecast(
            past_target,
            past_observed_values,
            past_time_feat,
            future_time_feat,
            num_samples=self.num_parallel_samples,
            sampler=self.sampler,
            steps=self.steps,
            generator=generator,
            covariates=covariates,
        )  # (B, S, lead_time + Th, D)
        return paths[:, :, self.lead_time :]

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        loss = self.model.loss(
            batch["past_target"],
            batch["past_observed_values"],
            batch["future_target"],
            batch["future_observed_values"],
            batch["past_time_feat"],
            batch["future_time_feat"],
            covariates={k: batch[k] for k in covariate_names(self.model.config)},
        )
        size = batch["past_target"].shape[0]
        self.log(f"{stage}_loss", loss, on_epoch=True, prog_bar=True, batch_size=size)
        return loss

    def training_step(self, batch, batch_idx: int):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx: int):
        return self._step(batch, "val")

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
