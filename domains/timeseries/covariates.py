"""Covariates of the TimeGrad RNN: dynamic reals known in the future and static features.

Dynamic real features (prices, holidays, weather forecasts) are known for the context and
the horizon, like the time features, and ride beside them: (B, T, K). Static features of
an example (S reals and categories embedded in E values each) are repeated at every step.
The RNN reads them all at the step they belong to, so the state that conditions each
step's denoiser has seen that step's covariates (DeepAR's way of using them).
"""

from __future__ import annotations

import torch
from torch import nn

from diffkit.errors import ShapeError

Tensor = torch.Tensor


def covariate_names(config) -> list[str]:
    """The covariate inputs a network built with ``config`` reads, by GluonTS field name."""
    names = []
    if config.num_feat_dynamic_real:
        names += ["past_feat_dynamic_real", "future_feat_dynamic_real"]
    if config.num_feat_static_real:
        names.append("feat_static_real")
    if config.cardinality:
        names.append("feat_static_cat")
    return names


class CovariateInputs(nn.Module):
    """Appends an example's covariates to its time features: (B, T, F) -> (B, T, F + width).

    Parameters
    ----------
    config
        A :class:`~.module.TimeGradConfig`: ``num_feat_dynamic_real``,
        ``num_feat_static_real``, ``cardinality`` and ``static_embedding_dim``.
    """

    def __init__(self, config):
        super().__init__()
        self.dynamic = config.num_feat_dynamic_real
        self.static_real = config.num_feat_static_real
        self.cardinality = tuple(config.cardinality)
        self.embeddings = nn.ModuleList(
            nn.Embedding(c, config.static_embedding_dim) for c in self.cardinality
        )
        self.width = self.dynamic + self.static_real + sum(e.embedding_dim for e in self.embeddings)

    def forward(
        self, time_feat: Tensor, dynamic: Tensor | None, static: dict | None, what: str
    ) -> Tensor:
        """``time_feat`` (B, T, F) with ``dynamic`` (B, >= T, K; its last T steps) and the
        statics ``{"feat_static_real": (B, S), "feat_static_cat": (B, C)}`` after it."""
        B, T, _ = time_feat.shape
        parts = [time_feat]
        if self.dynamic:
            shape = (B, T, self.dynamic)
            if dynamic is None or dynamic.dim() != 3 or tuple(dynamic[:, -T:].shape) != shape:
                got = "none" if dynamic is None else f"shape {tuple(dynamic.shape)}"
                raise ShapeError(
                    f"{what} dynamic real features of shape {shape} are needed, got {got}; "
                    "pass the covariates the model was built with, past and future."
                )
            parts.append(dynamic[:, -T:].to(time_feat.dtype))
        statics = self._static(static or {}, B, time_feat.dtype)
        parts += [v[:, None].expand(B, T, -1) for v in statics]  # (B, T, S), (B, T, C*E)
        return torch.cat(parts, dim=-1) if len(parts) > 1 else time_feat

    def _static(self, static: dict, B: int, dtype) -> list[Tensor]:
        out = []
        real, cat = static.get("feat_static_real"), static.get("feat_static_cat")
        if self.static_real:
            if real is None or tuple(real.shape) != (B, self.static_real):
                got = "none" if real is None else f"shape {tuple(real.shape)}"
                raise ShapeError(
                    f"static real features of shape ({B}, {self.static_real}) are needed, "
                    f"got {got}; pass the static features the model was built with."
                )
            out.append(real.to(dtype))
        if self.cardinality:
            if cat is None or tuple(cat.shape) != (B, len(self.cardinality)):
                got = "none" if cat is None else f"shape {tuple(cat.shape)}"
                raise ShapeError(
                    f"static categorical features of shape ({B}, {len(self.cardinality)}) "
                    f"are needed, got {got}; pass the categories the model was built with."
                )
            cat = cat.long()
            if ((cat < 0) | (cat >= torch.tensor(self.cardinality, device=cat.device))).any():
                raise ShapeError(
                    f"a static category lies outside 0..cardinality - 1 {self.cardinality}; "
                    "encode each category as an integer below its cardinality."
                )
            embedded = [e(cat[:, j]) for j, e in enumerate(self.embeddings)]  # C x (B, E)
            out.append(torch.cat(embedded, dim=-1).to(dtype))  # (B, C * E)
        return out
