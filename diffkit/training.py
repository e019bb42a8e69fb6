"""The training engine: a LightningModule around (network, schedule, prediction, weighting).

AdamW with linear warm-up then cosine decay, an EMA of the weights with warm-up decay, and
data and noise drawn from generators seeded by ``(seed, micro-batch index, rank)``, so a
resumed run sees exactly the batches and noise the uninterrupted run would have seen.
"""

from __future__ import annotations

import copy
import math

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import move_data_to_device
from torch.utils.data import Sampler

from diffkit.config import DiffusionConfig, TrainConfig
from diffkit.domain import split_batch
from diffkit.errors import TrainingError
from diffkit.losses import diffusion_loss
from diffkit.seeding import mix_seed

Tensor = torch.Tensor


def lr_factor(step: int, warmup: int, total: int, min_ratio: float = 0.0) -> float:
    """Multiplier of the base LR at optimizer step ``step``: linear warm-up, then cosine.

    Rises linearly from ``1/warmup`` to 1 over ``warmup`` steps, then follows half a cosine
    from 1 down to ``min_ratio`` at ``total``.
    """
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def ema_decay(updates: int, max_decay: float) -> float:
    """EMA decay after ``updates`` updates: ``min(max_decay, (1 + n) / (10 + n))``.

    The warm-up keeps the average from being dominated by the random initial weights.
    """
    return min(max_decay, (1 + updates) / (10 + updates))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, net: torch.nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * net`` for parameters; buffers are copied."""
    for e, p in zip(ema.parameters(), net.parameters(), strict=True):
        e.lerp_(p.detach().to(e.dtype), 1 - decay)
    for e, b in zip(ema.buffers(), net.buffers(), strict=True):
        e.copy_(b)


class StepBatches(Sampler[list[int]]):
    """Batch indices for micro-batches ``start..stop-1``, each a function of its index.

    Indices are drawn with replacement from a generator seeded by ``(seed, index)``; rank
    ``r`` of ``world`` takes the r-th slice of a batch of ``batch_size * world``.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        start: int,
        stop: int,
        rank: int = 0,
        world: int = 1,
    ):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start, self.stop, self.rank, self.world = start, stop, rank, world

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self):
        for i in range(self.start, self.stop):
            g = torch.Generator().manual_seed(mix_seed(self.seed, i))
            idx = torch.randint(0, self.n, (self.batch_size * self.world,), generator=g)
            yield idx[self.rank * self.batch_size : (self.rank + 1) * self.batch_size].tolist()


def batch_loss(
    net: torch.nn.Module,
    batch,
    schedule,
    *,
    prediction: str,
    weighting: str,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Per-example :func:`diffkit.diffusion_loss` of a domain batch (see ``split_batch``)."""
    x0, cond, mask = split_batch(batch)
    return diffusion_loss(
        net,
        x0,
        schedule,
        prediction=prediction,
        cond=cond,
        mask=mask,
        weighting=weighting,
        generator=generator,
    )


def loss_terms(loss: Tensor | dict[str, Tensor]) -> dict[str, Tensor]:
    """A domain loss as ``{"loss": (B,), component: (B,), ...}`` (a bare tensor is "loss")."""
    if isinstance(loss, Tensor):
        return {"loss": loss}
    if "loss" not in loss:
        raise KeyError("a domain loss returning a dict must hold the key 'loss'")
    return dict(loss)


class DiffusionModule(pl.LightningModule):
    """Trains ``net`` with a per-example loss and keeps its EMA in ``ema``.

    ``state`` (optional) is a checkpoint's training state to resume from: optimizer,
    scheduler and step. ``loss`` is a domain's own loss (``Domain.loss``); by default
    :func:`batch_loss`.
    """

    def __init__(
        self,
        net: torch.nn.Module,
        diffusion: DiffusionConfig,
        train: TrainConfig,
        total_steps: int,
        state: dict | None = None,
        loss=None,
    ):
        super().__init__()
        self.net = net
        self.loss_fn = loss or batch_loss
        self.ema = copy.deepcopy(net).requires_grad_(False).eval()
        self.schedule = diffusion.build_schedule()
        self.diffusion, self.train_cfg, self.total_steps = diffusion, train, total_steps
        self.resume_state = state
        self.step = int(state["step"]) if state else 0  # optimizer steps taken
        self.start_step = self.step
        self.first_bad: Tensor | None = None  # first step whose loss was not finite, or -1

    def configure_optimizers(self):
        cfg = self.train_cfg
        opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        total, warmup, floor = self.total_steps, cfg.warmup_steps, cfg.min_lr_ratio
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, warmup, total, floor))
        if self.resume_state:
            opt.load_state_dict(self.resume_state["optimizer"])
            sched.load_state_dict(self.resume_state["scheduler"])
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def training_step(self, batch, batch_idx):
        micro = self.start_step * self.train_cfg.accumulate + batch_idx
        g = torch.Generator(device=self.device)
        g.manual_seed(mix_seed(self.train_cfg.seed, micro, self.global_rank, 1))
        terms = self.terms(self.net, batch, g)
        loss = terms.pop("loss").mean()
        self.note_finite(loss)
        if (self.step + 1) % self.train_cfg.log_every == 0:
            self.check_finite()
        self.log("loss", loss.detach(), prog_bar=True, on_step=True, logger=True)
        for name, term in terms.items():  # a domain's loss components, each logged on its own
            self.log(f"loss/{name}", term.detach().mean(), on_step=True, logger=True)
        return loss

    def terms(self, net: torch.nn.Module, batch, generator) -> dict[str, Tensor]:
        """The loss terms of ``net`` (the network or its EMA) on ``batch``, each (B,)."""
        return loss_terms(
            self.loss_fn(
                net,
                batch,
                self.schedule,
                prediction=self.diffusion.prediction,
                weighting=self.diffusion.weighting,
                generator=generator,
            )
        )

    def note_finite(self, loss: Tensor) -> None:
        """Remember on the loss's device the first step whose loss is NaN or inf (no sync)."""
        if self.first_bad is None:
            self.first_bad = torch.full((), -1, dtype=torch.long, device=loss.device)
        bad = ~torch.isfinite(loss) & (self.first_bad < 0)
        self.first_bad = torch.where(bad, self.step + 1, self.first_bad)

    def check_finite(self) -> None:
        """TrainingError if a loss since the start was not finite (one host sync).

        Called every ``log_every`` steps and before each checkpoint, so no checkpoint holds
        weights trained on a NaN loss. Under DDP every rank calls it at the same step and the
        ranks agree on the earliest bad step (one all-reduce), so all stop with one error
        instead of the others waiting forever for the rank that stopped.
        """
        if self.first_bad is None:
            return  # no training step yet: the same on every rank
        first = first_bad_on_any_rank(self.first_bad)
        if (step := int(first)) >= 0:
            raise TrainingError(
                f"the loss became NaN or inf at step {step}; training stopped "
                "(lower train.lr or check the data for NaN)."
            )

    def optimizer_step(self, *args, **kwargs):
        super().optimizer_step(*args, **kwargs)
        ema_update(self.ema, self.net, ema_decay(self.step, self.train_cfg.ema_max_decay))
        self.step += 1

    def training_state(self) -> dict:
        """Optimizer, scheduler and step: what resuming needs besides the weights."""
        return {
            "optimizer": self.optimizers().optimizer.state_dict(),
            # lr_lambdas is [None] for a plain function: nothing pickled, weights_only loads it
            "scheduler": self.lr_schedulers().state_dict(),
            "step": self.step,
        }


def first_bad_on_any_rank(first_bad: Tensor) -> Tensor:
    """The earliest of the ranks' first bad steps (-1 if none), by one MIN all-reduce of
    ``first_bad`` (-1 counted as no step) when a process group of several ranks runs."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return first_bad
    none = torch.iinfo(torch.long).max
    flag = torch.where(first_bad < 0, none, first_bad)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return torch.where(flag == none, -1, flag)


@torch.no_grad()
def validation_loss(
    module: DiffusionModule, dataset, *, seed: int, batch_size: int, max_batches: int = 8
) -> float:
    """Mean loss of the EMA network on ``dataset`` with fixed noise (comparable across steps)."""
    n = len(dataset)
    device = next(module.ema.parameters()).device
    g = torch.Generator(device=device).manual_seed(mix_seed(seed, 2))
    total, count = 0.0, 0
    for b in range(min(max_batches, math.ceil(n / batch_size))):
        rows = [dataset[i] for i in range(b * batch_size, min(n, (b + 1) * batch_size))]
        batch = move_data_to_device(torch.utils.data.default_collate(rows), device)
        loss = module.terms(module.ema, batch, g)["loss"]
        total, count = total + loss.sum().item(), count + len(loss)
    return total / max(count, 1)
