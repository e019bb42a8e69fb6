import pytest
import torch
import torch.nn.functional as F

from diffkit.domains.images.unet import (
    UNet,
    UNetConfig,
    count_parameters,
    drop_labels,
    timestep_embedding,
)
from diffkit.errors import ConfigError, ShapeError

TINY = dict(base_channels=16, channel_mults=(1, 2), num_res_blocks=1, attention_levels=(1,),
            head_channels=8, norm_groups=8, dropout=0.0)  # fmt: skip


def tiny(**overrides) -> UNet:
    return UNet(UNetConfig(**{**TINY, **overrides})).eval()


def randomised(net: UNet, seed: int = 0) -> UNet:
    """Give the zero-initialised output layers weights, so inputs visibly reach the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return net


@pytest.mark.parametrize(
    ("size", "channels", "mults"),
    [
        (8, 1, (1, 2)),
        (28, 1, (1, 2, 2)),
        (28, 3, (1, 2, 2, 2)),
        (32, 3, (1, 2, 2)),
        (20, 1, (1, 2)),
    ],
)
def test_output_has_input_shape(size, channels, mults):
    net = tiny(in_channels=channels, channel_mults=mults)
    x = torch.randn(2, channels, size, size)
    out = net(x, torch.tensor([0.0, 999.0]))
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


def test_non_square_and_padded_input_is_cropped_back():
    net = randomised(tiny(channel_mults=(1, 2, 2, 2)))  # 28 -> padded to 32 inside
    x = torch.randn(2, 1, 28, 20)
    assert net(x, torch.zeros(2)).shape == (2, 1, 28, 20)


def test_out_channels_and_scalar_time():
    net = tiny(in_channels=3, out_channels=6)
    assert net(torch.randn(2, 3, 8, 8), torch.tensor(5.0)).shape == (2, 6, 8, 8)


def test_zero_init_makes_the_fresh_net_predict_zero():
    out = tiny()(torch.randn(2, 1, 8, 8), torch.ones(2))
    assert torch.equal(out, torch.zeros_like(out))


def test_time_step_changes_the_output():
    net = randomised(tiny())
    x = torch.randn(3, 1, 8, 8)
    a, b = net(x, torch.full((3,), 10.0)), net(x, torch.full((3,), 500.0))
    assert (a - b).abs().mean() > 1e-3


def test_continuous_time_with_time_scale():
    net = randomised(tiny(time_scale=1000.0))
    x = torch.randn(2, 1, 8, 8)
    a, b = net(x, torch.full((2,), 0.1)), net(x, torch.full((2,), 0.9))
    assert (a - b).abs().mean() > 1e-3


def test_class_label_changes_the_output_only_when_conditional():
    x, t = torch.randn(4, 1, 8, 8), torch.full((4,), 100.0)
    y1, y2 = torch.tensor([0, 1, 2, 3]), torch.tensor([4, 5, 6, 7])
    cond = randomised(tiny(num_classes=10))
    assert (cond(x, t, y=y1) - cond(x, t, y=y2)).abs().mean() > 1e-3
    null = torch.full((4,), 10)  # the reserved unconditional class is a valid label
    assert torch.equal(cond(x, t, y=null), cond(x, t))  # no y means the null class
    uncond = randomised(tiny())
    assert torch.equal(uncond(x, t, y=y1), uncond(x, t, y=y2))
    assert torch.equal(uncond(x, t, y=y1), uncond(x, t))


def test_bad_labels_and_shapes_raise():
    net = tiny(num_classes=3)
    x, t = torch.randn(2, 1, 8, 8), torch.zeros(2)
    with pytest.raises(ShapeError, match=r"0\.\.3"):
        net(x, t, y=torch.tensor([0, 4]))
    with pytest.raises(ShapeError, match="integer"):
        net(x, t, y=torch.tensor([0.0, 1.0]))
    with pytest.raises(ShapeError, match="in_channels"):
        net(torch.randn(2, 3, 8, 8), t)


@pytest.mark.parametrize(
    "bad",
    [dict(base_channels=12), dict(attention_levels=(5,)), dict(dropout=1.5), dict(num_classes=0)],
)
def test_bad_config_raises(bad):
    with pytest.raises(ConfigError):
        UNetConfig(**{**TINY, **bad})


def test_label_dropout_rate_is_near_p():
    y = torch.randint(10, (200_000,), generator=torch.Generator().manual_seed(0))
    dropped = drop_labels(y, 0.2, 10, generator=torch.Generator().manual_seed(1))
    is_null = dropped == 10
    assert abs(is_null.float().mean().item() - 0.2) < 0.005
    assert torch.equal(dropped[~is_null], y[~is_null])
    assert torch.equal(drop_labels(y, 0.0, 10), y)
    with pytest.raises(ConfigError):
        drop_labels(y, 1.5, 10)


def test_timestep_embedding_is_cosines_then_sines_and_a_zero_for_odd_widths():
    t = torch.tensor([0.0, 1.0, 999.0])
    emb = timestep_embedding(t, 7)
    # DDPM / Transformer: frequencies 10000^(-k/3), k = 0, 1, 2; the 7th column is padding.
    freqs = 10000.0 ** (-torch.arange(3.0) / 3)
    angle = t[:, None] * freqs  # (3, 3)
    expected = torch.cat([angle.cos(), angle.sin(), torch.zeros(3, 1)], dim=1)
    torch.testing.assert_close(emb, expected, atol=2e-4, rtol=0)  # float32 angles up to 999


def test_default_config_size_and_parameter_count():
    net = UNet(UNetConfig())
    assert round(count_parameters(net) / 1e4) == 174  # the 1.74M the config's docstring states
    cond = UNet(UNetConfig(num_classes=10))
    assert count_parameters(cond) - count_parameters(net) == 11 * 4 * 32  # embedding rows


def test_a_few_steps_of_eps_training_lower_the_loss(digits):
    """Plain DDPM eps-loss on the digits with a hand-written linear schedule (no core needed)."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = UNet(UNetConfig(**TINY)).train()
    alpha_bar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000), 0)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    losses = []
    for _ in range(60):
        x0 = digits.images[torch.randint(len(digits), (32,), generator=g)]
        t = torch.randint(1000, (32,), generator=g)
        eps = torch.randn(x0.shape, generator=g)
        a = alpha_bar[t][:, None, None, None]
        loss = F.mse_loss(net(a.sqrt() * x0 + (1 - a).sqrt() * eps, t.float()), eps)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) / 10 < 0.8 * sum(losses[:10]) / 10


def test_config_round_trips_through_json():
    import dataclasses
    import json

    config = UNetConfig(num_classes=10, channel_mults=(1, 2, 2, 2))
    again = UNetConfig(**json.loads(json.dumps(dataclasses.asdict(config))))
    assert again == config and hash(again) == hash(config)


def _attention_by_hand(attn, x: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v per head over the H*W positions, written out with einsum."""
    b, c, h, w = x.shape
    heads, d = attn.heads, c // attn.heads
    tokens = attn.norm(x).reshape(b, c, h * w).permute(0, 2, 1)  # (B, N, C)
    q, k, v = (tokens @ attn.qkv.weight.T + attn.qkv.bias).split(c, dim=-1)  # (B, N, C) each
    q, k, v = (m.reshape(b, h * w, heads, d) for m in (q, k, v))  # (B, N, heads, d)
    weights = torch.einsum("bnhd,bmhd->bhnm", q, k).div(d**0.5).softmax(-1)
    out = torch.einsum("bhnm,bmhd->bnhd", weights, v).reshape(b, h * w, c)
    out = out @ attn.proj.weight.T + attn.proj.bias  # (B, N, C)
    return x + out.permute(0, 2, 1).reshape(b, c, h, w)


def test_self_attention_is_multi_head_softmax_attention_and_reads_1x1_conv_weights():
    from diffkit.domains.images.unet import SelfAttention

    attn = randomised(SelfAttention(16, head_channels=8, groups=8))  # two heads
    x = torch.randn(3, 16, 4, 5)
    with torch.no_grad():
        torch.testing.assert_close(attn(x), _attention_by_hand(attn, x), atol=1e-5, rtol=1e-5)
        # a checkpoint of the former layout stored the projections as (out, in, 1, 1) convs
        legacy = {k: v[..., None, None] if k.endswith("qkv.weight") or k.endswith("proj.weight")
                  else v for k, v in attn.state_dict().items()}  # fmt: skip
        fresh = SelfAttention(16, head_channels=8, groups=8)
        fresh.load_state_dict(legacy)
        torch.testing.assert_close(fresh(x), attn(x), atol=0, rtol=0)
