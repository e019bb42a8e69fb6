"""diffkit's U-Net beside diffusers' ``UNet2DModel`` of the same layout: speed and error.

Both networks get the same widths per level, residual blocks per level, attention levels,
group norm, class conditioning and scale-shift (FiLM) time conditioning, so their parameter
counts agree to within 0.1%, and train the same way for the same steps: eps loss on
DDPM's linear schedule, AdamW, on one thread. What differs is the implementation, so images
per second (:func:`compare`: one batch of real images) and the held-out noise-prediction
error after equal steps (:func:`held_out_error`: the same batches, times and noise for both)
compare the libraries and not the recipe.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

from diffkit import schedules

from .unet import UNet, count_parameters


def diffusers_unet(unet_config, image_size: int, time_conditioning: str = "scale_shift"):
    """``UNet2DModel`` with the layout of ``unet_config`` (a :class:`.unet.UNetConfig`).

    ``time_conditioning="scale_shift"`` is diffkit's residual block: the time embedding
    projects to a scale and a shift of the second GroupNorm, so both networks are the same
    size. ``"default"`` is diffusers' own default, the embedding added before that norm: a
    network smaller by ``emb_dim + 1`` parameters per output channel of every block (7% at
    the MNIST layout), which does less work per step.
    """
    from diffusers import UNet2DModel

    widths = tuple(unet_config.base_channels * m for m in unet_config.channel_mults)
    attn = set(unet_config.attention_levels)
    last = len(widths) - 1
    down = tuple("AttnDownBlock2D" if i in attn else "DownBlock2D" for i in range(len(widths)))
    up = tuple("AttnUpBlock2D" if last - i in attn else "UpBlock2D" for i in range(len(widths)))
    return UNet2DModel(
        sample_size=image_size,
        in_channels=unet_config.in_channels,
        out_channels=unet_config.in_channels,
        block_out_channels=widths,
        layers_per_block=unet_config.num_res_blocks,
        down_block_types=down,
        up_block_types=up,
        norm_num_groups=unet_config.norm_groups,
        attention_head_dim=unet_config.head_channels,
        add_attention=unet_config.mid_attention,
        num_class_embeds=unet_config.num_classes,
        resnet_time_scale_shift=time_conditioning,
    )


def noised(schedule, images, t, eps):
    """``x_t = alpha(t) * x_0 + sigma(t) * eps`` for images (B, C, H, W) at integer steps t (B,)."""
    alpha, sigma = (v.float().view(-1, 1, 1, 1) for v in schedule.alpha_sigma(t.float()))
    return alpha * images + sigma * eps


def pair(unet_config, image_size: int, seed: int = 0) -> dict[str, tuple[nn.Module, Callable]]:
    """Both U-Nets of one layout, initialised from ``seed`` (the global RNG is left as it was),
    each with its eps predictor ``predict(x_t, t, y)`` at DDPM's integer steps ``t``."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        ours, theirs = UNet(unet_config), diffusers_unet(unet_config, image_size)
    return {
        "diffkit": (ours, lambda x, t, y: ours(x, t.float(), y)),
        "diffusers UNet2DModel": (theirs, lambda x, t, y: theirs(x, t, class_labels=y).sample),
    }


def eps_step(predict, opt, x_t, t, y, eps) -> None:
    """One eps-loss optimiser step of ``predict(x_t, t, y)``."""
    loss = (predict(x_t, t, y) - eps).pow(2).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def train_rate(predict, params, images, labels, *, steps: int, seed: int = 0) -> float:
    """Images per second of ``steps`` eps-loss AdamW steps (after two warm-up steps).

    ``predict(x_t, t, y)`` returns the eps prediction; ``t`` is DDPM's integer step.
    """
    schedule = schedules.linear()
    opt = torch.optim.AdamW(params, lr=1e-4)
    g = torch.Generator().manual_seed(seed)
    B = images.shape[0]

    def step():
        t = torch.randint(0, schedule.T, (B,), generator=g)
        eps = torch.randn(images.shape, generator=g)
        eps_step(predict, opt, noised(schedule, images, t, eps), t, labels, eps)

    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * B / (time.perf_counter() - t0)


def compare(unet_config, images, labels, *, steps: int = 10, seed: int = 0) -> dict:
    """Parameters and training images/s of both U-Nets on ``images`` (B, C, H, W)."""
    y = labels if unet_config.num_classes is not None else None
    out = {}
    for name, (net, predict) in pair(unet_config, images.shape[-1], seed).items():
        rate = train_rate(predict, net.parameters(), images, y, steps=steps)
        out[name] = {"params": count_parameters(net), "images_per_s": rate}
    return out | {"batch": images.shape[0], "steps": steps}


HELD_OUT_TIMES = tuple(range(50, 1000, 100))  # image i is noised to step HELD_OUT_TIMES[i % 10]


def held_out_error(
    unet_config,
    images,
    labels,
    held_out,
    held_out_labels,
    *,
    steps: int,
    batch: int,
    lr: float = 1e-3,
    seed: int = 0,
    times: tuple[int, ...] = HELD_OUT_TIMES,
) -> dict:
    """Held-out eps MSE of both U-Nets after ``steps`` equal training steps, and their speed.

    The two train interleaved, step by step, on the same batches of ``images`` (N, C, H, W),
    times and noise (eps loss, AdamW at a constant ``lr``), so their images/s (the first
    step, a warm-up, left out) are measured under the same load. Then each predicts the
    noise of ``held_out`` noised at the fixed ``times`` with the same noise (seed + 1).
    """
    schedule, nets = schedules.linear(), pair(unet_config, images.shape[-1], seed)
    opts = {name: torch.optim.AdamW(net.parameters(), lr=lr) for name, (net, _) in nets.items()}
    seconds = dict.fromkeys(nets, 0.0)
    g = torch.Generator().manual_seed(seed)
    for i in range(steps + 1):
        index = torch.randint(len(images), (batch,), generator=g)
        t = torch.randint(0, schedule.T, (batch,), generator=g)
        eps = torch.randn((batch, *images.shape[1:]), generator=g)
        x_t, y = noised(schedule, images[index], t, eps), labels[index]
        for name, (_, predict) in nets.items():
            t0 = time.perf_counter()
            eps_step(predict, opts[name], x_t, t, y, eps)
            seconds[name] += (time.perf_counter() - t0) if i else 0.0
    g = torch.Generator().manual_seed(seed + 1)
    t = torch.tensor(times)[torch.arange(len(held_out)) % len(times)]  # (N,)
    eps = torch.randn(held_out.shape, generator=g)
    x_t = noised(schedule, held_out, t, eps)
    out = {"steps": steps, "batch": batch, "lr": lr, "times": list(times)}
    for name, (net, predict) in nets.items():
        with torch.no_grad():
            net.eval()
            chunks = zip(x_t.split(500), t.split(500), held_out_labels.split(500), strict=True)
            pred = torch.cat([predict(*chunk) for chunk in chunks])
        out[name] = {
            "params": count_parameters(net),
            "images_per_s": steps * batch / seconds[name] if steps else float("nan"),
            "held_out_mse": float((pred - eps).pow(2).mean()),
        }
    return out
