"""The throughput reference builds diffusers' UNet2DModel with diffkit's U-Net layout."""

import math

import pytest
import torch

from diffkit.domains.images.throughput import compare, diffusers_unet, held_out_error
from diffkit.domains.images.unet import ResBlock, SelfAttention, UNet, UNetConfig

pytest.importorskip("diffusers")

LAYOUTS = [
    UNetConfig(base_channels=16, channel_mults=(1, 2), num_res_blocks=1, attention_levels=(1,),
               norm_groups=16, num_classes=10),
    UNetConfig(base_channels=16, channel_mults=(1, 2, 2), num_res_blocks=2,
               attention_levels=(1, 2), norm_groups=8, mid_attention=False),
]  # fmt: skip


def attention_layers(net) -> int:
    from diffusers.models.attention_processor import Attention

    return sum(isinstance(m, (Attention, SelfAttention)) for m in net.modules())


@pytest.mark.parametrize("config", LAYOUTS)
def test_the_diffusers_unet_has_the_same_layout(config):
    ours, theirs = UNet(config), diffusers_unet(config, 16)
    x = torch.randn(2, 1, 16, 16)
    labels = torch.tensor([1, 2]) if config.num_classes else None
    assert theirs(x, torch.tensor([5, 9]), class_labels=labels).sample.shape == x.shape
    assert attention_layers(ours) == attention_layers(theirs)
    n_ours, n_theirs = (sum(p.numel() for p in m.parameters()) for m in (ours, theirs))
    assert abs(n_ours - n_theirs) / n_theirs < 1e-3  # both scale-shift: the same size


def parameters(net) -> int:
    return sum(p.numel() for p in net.parameters())


def test_diffusers_default_conditioning_lacks_exactly_the_film_scales():
    config = LAYOUTS[1]  # unconditional: the two libraries' counts agree exactly
    ours = UNet(config)
    film, default = diffusers_unet(config, 16), diffusers_unet(config, 16, "default")
    scales = sum(b.emb.out_features // 2 * (b.emb.in_features + 1)
                 for b in ours.modules() if isinstance(b, ResBlock))  # fmt: skip
    assert parameters(ours) == parameters(film)
    assert parameters(film) - parameters(default) == scales


def test_compare_reports_finite_rates_for_both():
    torch.manual_seed(0)
    out = compare(LAYOUTS[0], torch.randn(8, 1, 8, 8), torch.arange(8) % 10, steps=1)
    for name in ("diffkit", "diffusers UNet2DModel"):
        assert math.isfinite(out[name]["images_per_s"]) and out[name]["images_per_s"] > 0
        assert out[name]["params"] > 0


def test_held_out_error_trains_both_alike_and_is_a_pure_function_of_its_seed():
    g = torch.Generator().manual_seed(0)
    images, labels = torch.rand(16, 1, 8, 8, generator=g) * 2 - 1, torch.arange(16) % 10

    def run():
        return held_out_error(LAYOUTS[0], images, labels, images[:6], labels[:6], steps=2, batch=4)

    first, again = run(), run()
    for name in ("diffkit", "diffusers UNet2DModel"):
        m = first[name]
        assert m["params"] > 0 and m["images_per_s"] > 0
        assert math.isfinite(m["held_out_mse"]) and m["held_out_mse"] > 0
        assert m["held_out_mse"] == again[name]["held_out_mse"]
    assert first["steps"] == 2 and first["batch"] == 4
