"""The images network wrapper: label dropout in training mode only, reproducible by its count."""

import torch

from diffkit.domains.images.network import ImageDenoiser
from diffkit.domains.images.unet import UNetConfig

CONFIG = UNetConfig(
    base_channels=16, channel_mults=(1, 2), attention_levels=(), num_classes=3, norm_groups=8
)


def net_with(p: float) -> ImageDenoiser:
    torch.manual_seed(0)
    net = ImageDenoiser(CONFIG, label_dropout=p, seed=1)
    for param in net.parameters():  # the zero-initialised output layer would hide any change
        torch.nn.init.normal_(param, std=0.1)
    return net


def test_full_label_dropout_is_the_null_class_in_training_only():
    net = net_with(1.0)
    x, t, y = torch.randn(4, 1, 8, 8), torch.full((4,), 10.0), torch.tensor([0, 1, 2, 0])
    null = torch.full((4,), 3)
    dropped = net.train()(x, t, y)
    net.eval()
    torch.testing.assert_close(dropped, net(x, t, null))
    assert (net(x, t, y) - dropped).abs().max() > 1e-4


def test_partial_dropout_is_reproducible_from_the_saved_call_count():
    net = net_with(0.5).train()
    x, t, y = torch.randn(64, 1, 8, 8), torch.full((64,), 10.0), torch.arange(64) % 3
    first = net(x, t, y)
    assert int(net.training_calls) == 1
    second = net(x, t, y)
    assert (first - second).abs().max() > 1e-4  # a new draw per call
    net.training_calls.zero_()
    torch.testing.assert_close(net(x, t, y), first)
    full, none = net_with(1.0).train()(x, t, y), net_with(0.0).train()(x, t, y)
    per_example = lambda a: a.flatten(1).abs().sum(1)  # noqa: E731
    dropped = (per_example(first - full) < 1e-4).sum()
    kept = (per_example(first - none) < 1e-4).sum()
    assert dropped + kept == 64 and 16 <= dropped <= 48


def test_hflip_mirrors_a_random_half_around_the_unet_in_training_only():
    torch.manual_seed(0)
    net = ImageDenoiser(CONFIG, hflip=True, seed=1)
    for param in net.parameters():
        torch.nn.init.normal_(param, std=0.1)
    x, t = torch.randn(64, 1, 8, 8), torch.full((64,), 10.0)
    out = net.train()(x, t)
    net.eval()
    plain, mirrored = net(x, t), net(x.flip(-1), t).flip(-1)
    per_example = lambda a: a.flatten(1).abs().sum(1)  # noqa: E731
    is_plain, is_mirrored = per_example(out - plain) < 1e-4, per_example(out - mirrored) < 1e-4
    assert bool((is_plain ^ is_mirrored).all()) and 16 <= int(is_mirrored.sum()) <= 48
