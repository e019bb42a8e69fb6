"""MDLM's continuous-time bound: tight for the exact denoiser, an upper bound otherwise."""

import itertools
import math

import numpy as np
import pytest
import torch

from diffkit import ConfigError, ShapeError
from diffkit.discrete import (
    masked_cross_entropy,
    masked_diffusion_loss,
    nll_bound,
    schedules,
    stratified_t,
    toy,
)

FACTORISED = toy.factorised(
    torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2], [0.1, 0.1, 0.8], [1 / 3, 1 / 3, 1 / 3]])
)  # V = 3, L = 4: the exact posterior of a masked token is its marginal
CORRELATED = toy.random(vocab=3, length=4, seed=0)  # all 81 sequences, correlated
MASK = 3


class Marginals(torch.nn.Module):
    """An inexact denoiser: each position's marginal, whatever the other tokens say."""

    def __init__(self, dist):
        super().__init__()
        onehot = torch.nn.functional.one_hot(dist.sequences, dist.vocab).double()  # (N, L, V)
        m = torch.einsum("n,nlv->lv", dist.probs, onehot)
        self.logits = torch.cat([m.log(), torch.full((dist.length, 1), -torch.inf)], -1).float()
        self.log_prob = lambda x: m.log()[torch.arange(dist.length), x].sum(-1)  # exact NLL

    def forward(self, x_t, t):
        return self.logits.expand(x_t.shape[0], -1, -1)


def all_masks(length):
    return torch.tensor(list(itertools.product([False, True], repeat=length)))  # (2^L, L)


def brute_force_bound(net, x0, schedule, nodes=24):
    """The bound with every mask pattern enumerated and t integrated by Gauss-Legendre."""
    ts, ws = np.polynomial.legendre.leggauss(nodes)
    total = torch.zeros(x0.shape[0], dtype=torch.float64)
    for t, w in zip((ts + 1) / 2, ws / 2, strict=True):
        t = torch.tensor(t, dtype=torch.float64)
        a, m, weight = schedule.alpha(t), schedule.masked(t), schedule.weight(t)
        for mask in all_masks(x0.shape[1]):
            k = int(mask.sum())
            x_t = torch.where(mask, MASK, x0)
            ce = masked_cross_entropy(net(x_t, t.float().expand(len(x0))), x0, x_t, MASK)
            total += w * weight * m**k * a ** (x0.shape[1] - k) * ce.double()
    return total


def any_order_nll(dist, x0):
    """The average over token orders of an autoregressive NLL with exact conditionals."""
    length, total = x0.shape[1], torch.zeros(x0.shape[0], dtype=torch.float64)
    for mask in all_masks(length):
        k = length - int(mask.sum())  # tokens already known
        if k == length:
            continue
        chance = math.factorial(k) * math.factorial(length - k - 1) / math.factorial(length)
        post = dist.posterior(torch.where(mask, MASK, x0))  # (B, L, V)
        nll = -post.gather(-1, x0.unsqueeze(-1)).squeeze(-1).log()
        total += chance * (nll * mask).sum(-1)
    return total


@pytest.mark.parametrize("dist", [FACTORISED, CORRELATED], ids=["factorised", "correlated"])
@pytest.mark.parametrize("schedule", [schedules.linear(), schedules.cosine()], ids=["lin", "cos"])
def test_the_bound_of_the_exact_denoiser_is_each_sequences_nll(dist, schedule):
    x0 = dist.sequences
    bound = brute_force_bound(dist.denoiser(), x0, schedule)
    torch.testing.assert_close(bound, dist.nll(x0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(any_order_nll(dist, x0), dist.nll(x0), atol=1e-9, rtol=0)
    expected_bound = float((dist.probs * bound).sum())
    assert expected_bound == pytest.approx(dist.entropy(), abs=1e-5)


def test_the_bound_of_an_inexact_denoiser_is_its_own_nll_and_above_the_entropy():
    net, x0 = Marginals(CORRELATED), CORRELATED.sequences
    bound = brute_force_bound(net, x0, schedules.linear())
    torch.testing.assert_close(bound, -net.log_prob(x0), atol=1e-5, rtol=1e-5)
    assert float((CORRELATED.probs * bound).sum()) > CORRELATED.entropy() + 0.1
    assert (bound > CORRELATED.nll(x0)).any() and (bound < CORRELATED.nll(x0)).any()


def test_loglinear_omits_the_last_eps_of_the_path():
    s, x0 = schedules.loglinear(eps=0.05), FACTORISED.sequences
    bound = brute_force_bound(FACTORISED.denoiser(), x0, s)
    torch.testing.assert_close(bound, 0.95 * FACTORISED.nll(x0), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("dist", [FACTORISED, CORRELATED], ids=["factorised", "correlated"])
@pytest.mark.parametrize("method", ["quadrature", "mc"])
def test_nll_bound_estimates_the_entropy_within_its_standard_error(dist, method):
    x0 = dist.sample(4000, torch.Generator().manual_seed(0))
    options = {"mask_id": MASK, "num_t": 16, "masks_per_t": 2, "method": method}
    bound = nll_bound(dist.denoiser(), x0, schedules.cosine(), **options)
    gap = bound.nats - dist.nll(x0)  # 0 in expectation, each sequence's own NLL subtracted
    se = gap.std() / math.sqrt(len(gap))
    assert se < 0.03 and gap.mean().abs() < 4 * se, (gap.mean(), se)  # mc: se 0.027
    torch.testing.assert_close(bound.bits_per_token, bound.nats / (4 * math.log(2)))
    again = nll_bound(dist.denoiser(), x0, schedules.cosine(), **options)
    assert torch.equal(bound.nats, again.nats)  # seeded by default


def test_the_loss_is_weighted_masked_cross_entropy_with_gradients_only_there():
    logits = torch.randn(2, 5, 4, requires_grad=True)
    x0 = torch.tensor([[0, 1, 2, 0, 1], [2, 2, 1, 0, 0]])
    keep = torch.zeros_like(x0, dtype=torch.bool)
    keep[:, 0] = True
    t = torch.tensor([1.0, 0.5], dtype=torch.float64)
    seen = {}

    def net(x_t, tt):
        seen["x_t"], seen["t"] = x_t, tt
        return logits

    g = torch.Generator().manual_seed(0)
    loss = masked_diffusion_loss(
        net, x0, schedules.linear(), mask_id=MASK, t=t, keep=keep, generator=g
    )
    x_t = seen["x_t"]
    assert loss.shape == (2,) and seen["t"].dtype == torch.float32
    assert (x_t[0, 1:] == MASK).all() and (x_t[:, 0] == x0[:, 0]).all()  # t = 1, keep
    lp = torch.log_softmax(logits.detach()[..., :MASK], -1).gather(-1, x0.unsqueeze(-1))[..., 0]
    expect = -(lp * (x_t == MASK)).sum(-1) / t.float()  # weight 1/t for the linear schedule
    torch.testing.assert_close(loss, expect)
    loss.sum().backward()
    assert (logits.grad[x_t != MASK] == 0).all() and (logits.grad[x_t == MASK] != 0).any()
    bound = nll_bound(net, x0, schedules.linear(), mask_id=MASK, keep=keep, num_t=2)
    assert bound.tokens.tolist() == [4, 4]  # the kept first position is not counted
    torch.testing.assert_close(bound.bits_per_token, bound.nats / (4 * math.log(2)))


def test_bad_inputs_name_the_problem():
    net, x0 = FACTORISED.denoiser(), FACTORISED.sequences[:3]
    with pytest.raises(ConfigError, match="outside the model's vocabulary of 4 logits"):
        masked_diffusion_loss(lambda x, t: torch.zeros(3, 4, 4), x0, schedules.linear(), mask_id=9)
    with pytest.raises(ShapeError, match=r"must return \(B, L, V\)"):
        masked_diffusion_loss(lambda x, t: x.float(), x0, schedules.linear(), mask_id=MASK)
    with pytest.raises(ConfigError, match="num_t must be a whole number >= 1"):
        nll_bound(net, x0, schedules.linear(), mask_id=MASK, num_t=0)
    with pytest.raises(ConfigError, match="unknown bound method"):
        nll_bound(net, x0, schedules.linear(), mask_id=MASK, method="exact")


def test_training_on_the_loss_brings_the_bound_to_the_data_nll():
    class Net(torch.nn.Module):  # an MLP over the one-hot sequence; it ignores t
        def __init__(self):
            super().__init__()
            self.f = torch.nn.Sequential(
                torch.nn.Linear(16, 128), torch.nn.GELU(), torch.nn.Linear(128, 16)
            )

        def forward(self, x_t, t):
            one_hot = torch.nn.functional.one_hot(x_t, 4).float().flatten(1)  # (B, L * 4)
            return self.f(one_hot).reshape(-1, 4, 4)  # (B, L, V)

    torch.manual_seed(0)
    net, g, s = Net(), torch.Generator().manual_seed(0), schedules.loglinear()
    test = CORRELATED.sample(2000, torch.Generator().manual_seed(1))

    def gap():
        bound = nll_bound(net, test, s, mask_id=MASK, num_t=8, masks_per_t=2)
        return float((bound.nats - CORRELATED.nll(test)).mean())

    before = gap()
    opt = torch.optim.Adam(net.parameters(), 5e-3)
    for _ in range(600):
        loss = masked_diffusion_loss(net, CORRELATED.sample(256, g), s, mask_id=MASK, generator=g)
        opt.zero_grad()
        loss.mean().backward()
        opt.step()
    assert before > 1.0 and gap() < 0.15, (before, gap())


def test_stratified_times_cover_one_stratum_each_and_are_uniform():
    g = torch.Generator().manual_seed(0)
    t = stratified_t(8, g)
    assert ((t > 0) & (t <= 1)).all()
    strata = torch.ceil(t * 8).long().sort().values  # t in ((k - 1) / 8, k / 8]
    assert strata.tolist() == list(range(1, 9))
    many = torch.stack([stratified_t(8, g) for _ in range(4000)])  # (4000, 8)
    assert abs(float(many.mean()) - 0.5) < 0.01
    assert abs(float(many[:, 0].mean()) - 15 / 16) < 0.002  # the first stratum (7/8, 1]
