"""Training throughput: diffkit's U-Net beside diffusers' ``UNet2DModel`` of the same layout.

Both networks get the same widths per level, residual blocks per level, attention levels,
group norm and class conditioning, and train the same way for the same steps: eps loss on
DDPM's linear schedule, AdamW, one batch of real images, on one thread. What differs is the
implementation, so images per second compare the libraries and not the recipe.
"""

from __future__ import annotations

import time

import torch

from diffkit import schedules


def diffusers_unet(unet_config, image_size: int):
    """``UNet2DModel`` with the layout of ``unet_config`` (a :class:`.unet.UNetConfig`)."""
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
    )


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
        alpha, sigma = (v.float() for v in schedule.alpha_sigma(t.float()))
        eps = torch.randn(images.shape, generator=g)
        x_t = alpha.view(-1, 1, 1, 1) * images + sigma.view(-1, 1, 1, 1) * eps
        loss = (predict(x_t, t, labels) - eps).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * B / (time.perf_counter() - t0)


def compare(unet_config, images, labels, *, steps: int = 10, seed: int = 0) -> dict:
    """Parameters and training images/s of both U-Nets on ``images`` (B, C, H, W)."""
    from .unet import UNet

    torch.manual_seed(seed)
    ours = UNet(unet_config)
    theirs = diffusers_unet(unet_config, images.shape[-1])
    y = labels if unet_config.num_classes is not None else None
    rate_ours = train_rate(
        lambda x, t, lab: ours(x, t.float(), lab), ours.parameters(), images, y, steps=steps
    )
    rate_theirs = train_rate(
        lambda x, t, lab: theirs(x, t, class_labels=lab).sample,
        theirs.parameters(),
        images,
        y,
        steps=steps,
    )
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    return {
        "diffkit": {"params": count(ours), "images_per_s": rate_ours},
        "diffusers UNet2DModel": {"params": count(theirs), "images_per_s": rate_theirs},
        "batch": images.shape[0],
        "steps": steps,
    }
