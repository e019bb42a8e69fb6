"""The masking forward process and MDLM's carry-over parameterisation."""

import pytest
import torch

from diffkit import ConfigError, DataError, ShapeError
from diffkit.discrete import carry_over, q_sample, schedules

MASK = 7


def tokens(b=2000, n=50, seed=0):
    return torch.randint(0, MASK, (b, n), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("s", [schedules.linear(), schedules.cosine(), schedules.loglinear(0.2)])
def test_masked_share_matches_one_minus_alpha(s):
    x0 = tokens()
    t = torch.tensor([0.0, 0.1, 0.35, 0.7, 1.0]).repeat_interleave(400)  # (2000,)
    x_t = q_sample(x0, t, s, MASK, torch.Generator().manual_seed(1))
    share = (x_t == MASK).double().reshape(5, -1).mean(-1)  # per time, 400 * 50 tokens each
    expect = s.masked(t).reshape(5, -1)[:, 0]
    se = (expect * (1 - expect) / (400 * 50)).sqrt()
    assert ((share - expect).abs() <= 5 * se + 1e-12).all(), (share, expect)
    unmasked = x_t != MASK
    assert (x_t[unmasked] == x0[unmasked]).all()  # a token is kept or masked, never changed


def test_keep_is_never_masked_and_the_seed_fixes_the_draw():
    x0, s = tokens(), schedules.linear()
    keep = torch.zeros_like(x0, dtype=torch.bool)
    keep[:, :10] = True
    x_t = q_sample(x0, torch.tensor(1.0), s, MASK, torch.Generator().manual_seed(0), keep=keep)
    assert (x_t[:, :10] == x0[:, :10]).all() and (x_t[:, 10:] == MASK).all()
    a, b, c = (q_sample(x0, 0.5, s, MASK, torch.Generator().manual_seed(k)) for k in (3, 3, 4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_bad_inputs_name_the_problem():
    s, x0 = schedules.linear(), tokens(4, 5)
    with pytest.raises(ShapeError, match=r"shape \(B, L\)"):
        q_sample(x0.float(), 0.5, s, MASK)
    with pytest.raises(ShapeError, match=r"shape \(B, L\)"):
        q_sample(x0[0], 0.5, s, MASK)
    with pytest.raises(ShapeError, match="3 times for 4 sequences"):
        q_sample(x0, torch.rand(3), s, MASK)
    with pytest.raises(ShapeError, match="keep has shape"):
        q_sample(x0, 0.5, s, MASK, keep=torch.ones(4, 6, dtype=torch.bool))
    with pytest.raises(ConfigError, match="mask_id must be a token id"):
        q_sample(x0, 0.5, s, -1)
    with pytest.raises(DataError, match="already contains the mask id"):
        q_sample(torch.full((2, 3), MASK), 0.5, s, MASK)


def test_carry_over_copies_unmasked_tokens_and_never_predicts_the_mask():
    logits = torch.randn(3, 4, 8)
    x_t = torch.tensor([[1, MASK, 2, MASK], [MASK] * 4, [0, 1, 2, 3]])
    lp = carry_over(logits, x_t, MASK)
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(3, 4))
    assert (lp[..., MASK] == -torch.inf).all()
    unmasked = x_t != MASK
    assert (lp[unmasked].argmax(-1) == x_t[unmasked]).all()
    assert (lp[unmasked].max(-1).values == 0).all()
    expect = torch.log_softmax(logits[..., :MASK], -1)  # the mask's mass removed, renormalised
    torch.testing.assert_close(lp[~unmasked][:, :MASK], expect[~unmasked])
