"""The text denoiser: exact rounding, the null condition, padding, self-conditioning, CDCD."""

import pytest
import torch

from diffkit.domains.text.generate import nearest_ids
from diffkit.domains.text.network import TextDenoiser
from diffkit.errors import ConfigError, ShapeError

V, L, E = 200, 10, 16


def make(**kw) -> TextDenoiser:
    torch.manual_seed(0)
    args = dict(embed_dim=E, width=32, depth=2, heads=4, max_length=L, dropout=0.0)
    return TextDenoiser(V, **{**args, **kw}).eval()


@pytest.mark.parametrize("mode", ["diffusion_lm", "cdcd"])
def test_rounding_exact_embeddings_recovers_every_token(mode):
    net = make(mode=mode)
    ids = torch.arange(V).reshape(20, L)  # every token once
    x0 = net.embed(ids)
    assert torch.equal(nearest_ids(net, x0, torch.ones(L, V, dtype=torch.bool)), ids)
    # the logits are -|x - E_w|^2 up to a constant per position: the same argmax as distance
    dist = torch.cdist(x0.reshape(-1, E), net.table())
    assert torch.equal(net.logits(x0).reshape(-1, V).argmax(-1), dist.argmin(-1))


def test_rounding_respects_the_allowed_set():
    net = make()
    ids = torch.full((1, L), 7)
    allowed = torch.ones(L, V, dtype=torch.bool)
    allowed[:, 7] = False
    out = nearest_ids(net, net.embed(ids), allowed)
    assert (out != 7).all()


def test_output_shapes_and_cdcd_x0_is_a_mixture_of_embeddings():
    x, t = torch.randn(3, L, E), torch.tensor([0.0, 10.0, 1999.0])
    assert make()(x, t).shape == (3, L, E)
    net = make(mode="cdcd")
    x0, logits = net.denoise(x, t)
    assert logits.shape == (3, L, V)
    torch.testing.assert_close(x0, logits.softmax(-1) @ net.table())
    norms = net.table().norm(dim=-1)  # CDCD's normalised table
    torch.testing.assert_close(norms, torch.full((V,), E**0.5))


def test_null_condition_of_any_length_is_the_unconditional_model():
    net = make(cond_vocab_size=V, cond_length=8)
    x, t = torch.randn(2, L, E), torch.tensor([5.0, 500.0])
    plain = net(x, t)  # no condition given: the null condition
    for lc in (1, 3, 8):
        null = torch.full((2, lc), net.null_cond_id)
        pad = torch.ones(2, lc, dtype=torch.bool)
        torch.testing.assert_close(net(x, t, cond_ids=null, cond_pad=pad), plain)
    real = net(x, t, cond_ids=torch.randint(0, V, (2, 4)), cond_pad=torch.ones(2, 4, dtype=bool))
    assert not torch.allclose(real, plain)


def test_condition_padding_hides_the_padded_condition_tokens():
    net = make(cond_vocab_size=V, cond_length=8)
    x, t = torch.randn(1, L, E), torch.tensor([50.0])
    pad = torch.tensor([[True, True, True, False, False]])
    a = net(x, t, cond_ids=torch.tensor([[2, 9, 3, 0, 0]]), cond_pad=pad)
    b = net(x, t, cond_ids=torch.tensor([[2, 9, 3, 55, 66]]), cond_pad=pad)
    torch.testing.assert_close(a, b)


def test_key_padding_mask_hides_padded_positions():
    net = make()
    x, t = torch.randn(1, L, E), torch.tensor([100.0])
    pad = torch.arange(L)[None] < 6
    y = x.clone()
    y[:, 6:] = torch.randn(1, L - 6, E)
    torch.testing.assert_close(net(x, t, pad=pad)[:, :6], net(y, t, pad=pad)[:, :6])
    assert not torch.allclose(net(x, t)[:, :6], net(y, t)[:, :6])


def test_self_conditioning_input_defaults_to_zeros_and_is_used():
    net = make(self_conditioning=True)
    x, t = torch.randn(2, L, E), torch.tensor([3.0, 300.0])
    torch.testing.assert_close(net(x, t), net(x, t, self_cond=torch.zeros_like(x)))
    assert not torch.allclose(net(x, t), net(x, t, self_cond=torch.randn_like(x)))


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ConfigError, match="unknown text model mode"):
        make(mode="nope")
    net = make(cond_vocab_size=V, cond_length=4)
    with pytest.raises(ShapeError, match="takes"):
        net(torch.randn(1, L, E + 1), torch.zeros(1))
    with pytest.raises(ShapeError, match="at most 4"):
        net(torch.randn(1, L, E), torch.zeros(1), cond_ids=torch.zeros(1, 6, dtype=torch.long))
