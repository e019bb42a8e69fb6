"""The shared transformer block: causal and padding masks hide what they should, adaLN-Zero."""

import pytest
import torch

from diffkit.domains.text.blocks import (
    Block,
    attention_mask,
    count_parameters,
    sinusoidal_embedding,
)
from diffkit.errors import ConfigError

torch.set_num_threads(1)


def _block():
    torch.manual_seed(0)
    return Block(16, 4).eval()


def test_causal_output_ignores_later_tokens():
    block, x = _block(), torch.randn(2, 7, 16)
    y = x.clone()
    y[:, 4:] = torch.randn(2, 3, 16)
    a, b = block(x, causal=True), block(y, causal=True)
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-6)
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_padded_keys_are_ignored_and_no_nan():
    block, x = _block(), torch.randn(2, 6, 16)
    pad = torch.tensor([[True] * 4 + [False] * 2, [True] * 6])
    y = x.clone()
    y[0, 4:] = 100.0
    a, b = block(x, pad=pad), block(y, pad=pad)
    assert torch.allclose(a[0, :4], b[0, :4], atol=1e-5)
    assert torch.allclose(a[1], b[1])
    assert torch.isfinite(block(x, pad=torch.zeros(2, 6, dtype=torch.bool))).all()


def test_mask_shape_and_diagonal():
    pad = torch.tensor([[True, False, False]])
    mask = attention_mask(pad, causal=True, length=3)
    assert mask.shape == (1, 1, 3, 3)
    assert mask[0, 0].tolist() == [[True, False, False], [True, True, False], [True, False, True]]
    assert attention_mask(None, causal=False, length=3) is None


def test_zero_gates_make_the_block_the_identity():
    block, x = _block(), torch.randn(2, 5, 16)
    modulation = torch.zeros(2, 6, 16)
    assert torch.equal(block(x, modulation=modulation), x)
    modulation[:, 2] = 1.0  # attention gate open, scale 0, shift 0: plain pre-LN attention branch
    modulation[:, 5] = 1.0
    assert torch.allclose(block(x, modulation=modulation), block(x), atol=1e-6)


def test_width_must_divide_heads_and_helpers():
    with pytest.raises(ConfigError, match="divisible"):
        Block(10, 4)
    # two LayerNorms, qkv, output projection, MLP in and out (weights + biases)
    expected = 2 * (2 * 8) + (8 * 24 + 24) + (8 * 8 + 8) + (8 * 32 + 32) + (32 * 8 + 8)
    assert count_parameters(Block(8, 2)) == expected
    emb = sinusoidal_embedding(torch.tensor([0.0, 3.0]), 9)
    assert emb.shape == (2, 9) and torch.equal(emb[0, :4], torch.ones(4))
