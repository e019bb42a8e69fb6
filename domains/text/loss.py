"""Training objectives of the text denoiser, both through the core's Gaussian process.

- :func:`diffusion_lm_loss`, Li et al. 2022 (Diffusion-LM, eq. 2, ``L_e2e_simple``):
  the core's x0 loss on the embeddings ``x0 = E(w)`` at a uniform step, plus the anchor
  ``|E(w) - x0_hat(x_{t_0}, t_0)|^2`` at the first step, plus the rounding cross-entropy
  ``-log p(w | x0_hat(x_{t_0}))``, plus the prior term ``|alpha_T E(w)|^2`` that keeps the
  learned embeddings from growing (Diffusion-LM's code, ``tT_loss``).
- :func:`cdcd_loss`, Dieleman et al. 2022 (CDCD): the cross-entropy of the network's
  logits at a uniform step; x0 is then ``softmax(logits) E`` (score interpolation).

Both apply condition dropout (the null condition with probability ``net.cond_dropout``) so
one network is conditional and unconditional, as classifier-free guidance (Ho & Salimans
2022) needs, and self-conditioning with probability 1/2 when the network takes it (Chen et
al. 2022, "Analog Bits", sec. 3.3): the second pass sees the first pass's x0, detached.

Each returns per-example terms ``{"loss": (B,), ...}``; the engine optimises ``"loss"`` and
logs the others.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from diffkit.errors import ConfigError
from diffkit.losses import diffusion_loss, sample_t
from diffkit.process import Prediction, coefficients, q_sample

Tensor = torch.Tensor


def _check_x0(prediction) -> None:
    if Prediction.parse(prediction) is not Prediction.X0:
        raise ConfigError(
            "the text denoiser predicts x0; set diffusion.prediction=x0 (the text default)."
        )


def condition(net, batch: dict, generator=None) -> dict:
    """The batch's condition keywords, each example's replaced by the null one w.p. dropout."""
    if not getattr(net, "conditional", False) or "cond_ids" not in batch:
        return {}
    ids, pad = batch["cond_ids"], batch["cond_pad"]
    if net.training and net.cond_dropout > 0:
        u = torch.rand(ids.shape[0], generator=generator, device=ids.device)
        drop = (u < net.cond_dropout)[:, None]  # (B, 1)
        ids = torch.where(drop, torch.full_like(ids, net.null_cond_id), ids)
    return {"cond_ids": ids, "cond_pad": pad}


def _coin(n: int, p: float, device, generator=None) -> Tensor:
    return torch.rand(n, generator=generator, device=device) < p  # (B,)


def self_condition(net, x_t: Tensor, t: Tensor, cond: dict, generator=None) -> Tensor | None:
    """Half the examples get the detached x0 of a first pass, the rest zeros (Chen et al.)."""
    if not net.self_conditioning:
        return None
    with torch.no_grad():
        first = net(x_t, t, **cond).detach()
    use = _coin(x_t.shape[0], 0.5, x_t.device, generator)[:, None, None]  # (B, 1, 1)
    return torch.where(use, first, torch.zeros_like(first))


def token_nll(logits: Tensor, ids: Tensor) -> Tensor:
    """Mean over positions of ``-log softmax(logits)[ids]``: (B, L, V), (B, L) -> (B,)."""
    nll = F.cross_entropy(logits.transpose(1, 2), ids, reduction="none")  # (B, L)
    return nll.mean(dim=1)


def diffusion_lm_loss(
    net, batch: dict, schedule, *, prediction="x0", weighting=None, generator=None
) -> dict[str, Tensor]:
    """Diffusion-LM's end-to-end loss (Li et al. 2022, eq. 2) per example.

    Returns ``{"loss", "x0", "anchor", "rounding", "prior"}``, each (B,); ``loss`` is their sum.
    """
    _check_x0(prediction)
    ids = batch["ids"]
    cond = condition(net, batch, generator)
    x0 = net.embed(ids)  # (B, L, E); gradients reach the table through input and target
    b = ids.shape[0]
    t = sample_t(schedule, b, generator=generator, device=ids.device)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    sc = self_condition(net, q_sample(x0, t, noise, schedule), t, cond, generator)

    def conditioned(x, tt, **c):
        return net(x, tt, self_cond=sc, **c) if sc is not None else net(x, tt, **c)

    x0_term = diffusion_loss(
        conditioned,
        x0,
        schedule,
        prediction="x0",
        cond=cond,
        weighting=weighting,
        t=t,
        noise=noise,
    )
    first: list[Tensor] = []

    def capture(x, tt, **c):
        first.append(net(x, tt, **c))
        return first[-1]

    t0 = torch.full((b,), float(schedule.t_min), dtype=torch.float64, device=ids.device)
    anchor = diffusion_loss(
        capture, x0, schedule, prediction="x0", cond=cond, t=t0, generator=generator
    )
    rounding = token_nll(net.logits(first[0]), ids)
    t_end = torch.full((b,), float(schedule.t_max), dtype=torch.float64, device=ids.device)
    alpha_end, _ = coefficients(schedule, t_end, x0)
    prior = ((alpha_end * x0) ** 2).flatten(1).mean(1)
    return {
        "loss": x0_term + anchor + rounding + prior,
        "x0": x0_term,
        "anchor": anchor,
        "rounding": rounding,
        "prior": prior,
    }


def cdcd_loss(
    net, batch: dict, schedule, *, prediction="x0", weighting=None, generator=None
) -> dict[str, Tensor]:
    """CDCD's score-interpolation objective (Dieleman et al. 2022, sec. 3): cross-entropy.

    ``t`` is uniform (or drawn from the network's time warping when it keeps one, see
    :class:`TimeWarp`). Returns ``{"loss", "x0", "rounding"}``: ``loss`` is the
    cross-entropy, also logged as ``rounding``; ``x0`` is the squared error of
    ``softmax(logits) E`` (logged, not optimised).
    """
    _check_x0(prediction)
    ids = batch["ids"]
    cond = condition(net, batch, generator)
    x0 = net.embed(ids)  # (B, L, E)
    b = ids.shape[0]
    warp = getattr(net, "time_warp", None)
    if warp is not None:
        t = warp.sample(schedule, b, generator=generator, device=ids.device)
    else:
        t = sample_t(schedule, b, generator=generator, device=ids.device)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    x_t = q_sample(x0, t, noise, schedule)
    sc = self_condition(net, x_t, t.to(x0.dtype), cond, generator)
    extra = {"self_cond": sc} if sc is not None else {}
    x0_hat, logits = net.denoise(x_t, t.to(x0.dtype), **cond, **extra)
    ce = token_nll(logits, ids)
    if warp is not None and net.training:
        warp.update(schedule, t, ce.detach())
    x0_err = ((x0_hat - x0) ** 2).flatten(1).mean(1).detach()
    return {"loss": ce, "x0": x0_err, "rounding": ce.detach()}


def text_loss(net, batch: dict, schedule, *, prediction="x0", weighting=None, generator=None):
    """The loss the network's mode asks for: Diffusion-LM's or CDCD's."""
    fn = cdcd_loss if net.mode == "cdcd" else diffusion_lm_loss
    return fn(net, batch, schedule, prediction=prediction, weighting=weighting, generator=generator)


class TimeWarp(torch.nn.Module):
    """CDCD's time warping (Dieleman et al. 2022, sec. 3.4), in a simple binned form.

    Keeps a running mean of the cross-entropy in ``bins`` equal bins of normalised time
    (a buffer, so it travels in checkpoints) and draws training times with density
    proportional to how fast the loss changes there, ``|dCE/dt|``, mixed with 10% uniform:
    steps where the loss is flat (pure noise, or already clean) are sampled less.
    """

    def __init__(self, bins: int = 32, momentum: float = 0.98):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("ce", torch.linspace(1.0, 0.0, bins).flip(0))  # (K,) rising
        self.register_buffer("seen", torch.zeros(bins))

    def _bin(self, schedule, t: Tensor) -> Tensor:
        u = (t - schedule.t_min) / max(schedule.t_max - schedule.t_min, 1e-12)
        return (u * len(self.ce)).long().clamp(0, len(self.ce) - 1)

    def density(self) -> Tensor:
        """Sampling probability of each bin (K,)."""
        slope = torch.diff(self.ce, prepend=self.ce[:1]).abs() + 1e-6
        p = slope / slope.sum()
        return 0.9 * p + 0.1 / len(p)

    def sample(self, schedule, n: int, *, generator=None, device=None) -> Tensor:
        k = len(self.ce)
        p = self.density().to(device)
        bins = torch.multinomial(p, n, replacement=True, generator=generator)  # (n,)
        u = (bins.double() + torch.rand(n, generator=generator, device=device).double()) / k
        t = schedule.t_min + (schedule.t_max - schedule.t_min) * u
        return t.floor().clamp(0, schedule.T - 1) if schedule.discrete else t

    @torch.no_grad()
    def update(self, schedule, t: Tensor, ce: Tensor) -> None:
        bins = self._bin(schedule, t)
        for k in bins.unique().tolist():
            mean = ce[bins == k].mean().to(self.ce)
            m = self.momentum if self.seen[k] > 0 else 0.0
            self.ce[k] = m * self.ce[k] + (1 - m) * mean
            self.seen[k] += 1
