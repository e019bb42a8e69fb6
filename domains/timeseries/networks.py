"""The time-series network a configuration names: TimeGrad or the whole-horizon transformer."""

from __future__ import annotations

from torch import nn

from .horizon import HorizonModel
from .module import TimeGradModel
from .network_config import TimeGradConfig


def build_model(config: TimeGradConfig) -> nn.Module:
    """:class:`~.module.TimeGradModel` or, with ``architecture="horizon"``,
    :class:`~.horizon.HorizonModel`; both have the same ``loss`` and ``forecast``."""
    if config.architecture == "horizon":
        return HorizonModel(config)
    return TimeGradModel(config)
