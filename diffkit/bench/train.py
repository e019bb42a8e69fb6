"""A short, seeded training run for benchmark cases: the domain's own loss, AdamW, a curve.

Bench budgets are minutes, so this is a plain loop rather than the Lightning engine behind
``diffkit train`` (whose start-up alone costs seconds): the same per-example loss (the
domain's ``loss`` or :func:`diffkit.training.batch_loss`), warm-up then cosine decay of the
learning rate (:func:`diffkit.training.lr_factor`), gradients clipped at 1, no EMA.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from diffkit.config import DiffusionConfig
from diffkit.domain import Domain, DomainData


@dataclass(frozen=True)
class Trained:
    """A trained network with its schedule, loss curve ``[(step, loss)]`` and cost."""

    net: torch.nn.Module
    schedule: object
    curve: list[tuple[int, float]]
    seconds: float
    steps: int

    def summary(self) -> dict:
        """The report's training line: steps, seconds, parameters, final loss."""
        params = sum(p.numel() for p in self.net.parameters() if p.requires_grad)
        final = self.curve[-1][1] if self.curve else float("nan")
        return {"steps": self.steps, "seconds": self.seconds, "params": params, "final_loss": final}


def train(
    domain: Domain,
    config,
    data: DomainData,
    diffusion: DiffusionConfig,
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
    points: int = 50,
) -> Trained:
    """Train ``domain``'s network on ``data.train`` for ``steps`` optimiser steps.

    The loss is logged at about ``points`` evenly spaced steps (the mean over the batches
    since the previous point).
    """
    from diffkit.training import batch_loss, loss_terms, lr_factor

    torch.manual_seed(seed)  # the network's initial weights
    net = domain.build_network(config, diffusion).to(device)
    if domain.prepare is not None:  # as the runner does (a latent autoencoder, a text key)
        data = domain.prepare(net, data, config)
    schedule = diffusion.build_schedule()
    g = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        data.train, batch_size=batch_size, shuffle=True, generator=g, drop_last=True
    )
    loss_fn = domain.loss or batch_loss
    opt = torch.optim.AdamW(net.parameters(), lr=lr)
    every, curve, acc, k = max(1, steps // points), [], 0.0, 0
    net.train()
    t0, step = time.perf_counter(), 0
    while step < steps:
        for batch in loader:
            batch = _to(batch, device)
            for group in opt.param_groups:
                group["lr"] = lr * lr_factor(step, min(100, steps // 10), steps)
            loss = loss_terms(
                loss_fn(
                    net,
                    batch,
                    schedule,
                    prediction=diffusion.prediction,
                    weighting=diffusion.weighting,
                    generator=None,
                )
            )["loss"].mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            step, acc, k = step + 1, acc + loss.item(), k + 1
            if step % every == 0 or step == steps:
                curve.append((step, acc / k))
                acc, k = 0.0, 0
            if step == steps:
                break
    return Trained(net.eval(), schedule, curve, time.perf_counter() - t0, steps)


def _to(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(b, device) for b in batch)
    return {k: _to(v, device) for k, v in batch.items()}
