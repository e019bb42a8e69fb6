"""The toy bench's trained model: the domain's MLP on the 8-mode ring, in place of the exact eps.

The exact denoiser isolates the sampler; a trained network adds the model's own error, which
is what a user samples. Step schedules fitted to it (issue 17) must beat the fixed spacings
on the model at hand, not only on the exact law, so the ring is benchmarked both ways.
"""

from __future__ import annotations

import math

import torch

from diffkit.bench.train import train
from diffkit.config import DiffusionConfig

# suite -> training steps of the MLP (the bench's plain loop, batch 256, lr 1e-3)
STEPS = {"quick": 800, "full": 4000}


def mlp(steps: int, mix, schedule, context) -> tuple:
    """Train the toy domain's MLP on its built-in ring for ``steps`` steps.

    Returns ``(net, eps_at, extra)`` as :func:`.bench.exact` does: the network as
    ``net(x_t, t)``, the same network read at a diffusers scheduler's noise level
    ``eps_at(x, alpha, sigma)`` (the time of that log-SNR on ``schedule``), and the case
    result's training entries (``curve``, ``train``).
    """
    from .domain import ToyConfig, domain  # it imports the bench module

    config = ToyConfig()
    data = domain.load_data(config, None)  # the same ring as ``mix``: diffkit.toy.ring()
    diffusion = DiffusionConfig(schedule="linear", T=schedule.T)
    trained = train(domain, config, data, diffusion, steps=steps, batch_size=256,
                    seed=context.seed, device=context.device)  # fmt: skip
    net = trained.net

    def eps_at(x, alpha, sigma):
        t = schedule.t_of_log_snr(torch.tensor(2 * math.log(alpha / sigma)))
        return net(x, t.float().to(x.device).expand(x.shape[0]))

    return net, eps_at, {"curve": trained.curve, "train": trained.summary()}
