"""Shape checks of the tensors a time-series network reads, each failure one clear line."""

from __future__ import annotations

import torch

from diffkit.errors import ShapeError


def check_window(config, target: torch.Tensor, time_feat: torch.Tensor, length: int, what: str):
    """Raise unless ``target`` is (B, >= length, D) and ``time_feat`` (B, T, F) matches it.

    ``what`` ("past" or "future") names the window in the message.
    """
    c = config
    if target.dim() != 3 or target.shape[2] != c.target_dim:
        raise ShapeError(
            f"{what} target has shape {tuple(target.shape)} but (batch, time, "
            f"{c.target_dim}) is needed; pass the {c.target_dim} series the model was "
            "built for."
        )
    if target.shape[1] < length:
        reach = c.history_length - c.context_length
        why = f" (context {c.context_length} + largest lag {reach})" if reach else " (the context)"
        raise ShapeError(
            f"{what} target has {target.shape[1]} steps but {length} are needed"
            f"{why * (what == 'past')}; pass a longer {what} window."
        )
    if time_feat.shape[:2] != target.shape[:2] or time_feat.shape[2] != c.num_time_features:
        raise ShapeError(
            f"{what} time features have shape {tuple(time_feat.shape)} but "
            f"{(*target.shape[:2], c.num_time_features)} is needed; build them with "
            f"time_features(index, {c.freq!r})."
        )


def check_future_features(config, future_time_feat: torch.Tensor, batch: int, steps=None):
    """Raise unless the future time features are (batch, steps or any, F)."""
    c, shape = config, tuple(future_time_feat.shape)
    horizon = shape[1] if steps is None and len(shape) == 3 else steps
    if shape != (batch, horizon, c.num_time_features):
        raise ShapeError(
            f"future time features have shape {shape} but (batch={batch}, "
            f"{'horizon' if steps is None else steps}, {c.num_time_features}) is needed; "
            f"build them with time_features(index, {c.freq!r})."
        )
