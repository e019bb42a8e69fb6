"""Masked-diffusion samplers: the shared contract, exactness with the exact denoiser, MDLM's
cache, MaskGIT's confidence order, and bad inputs."""

import pytest
import torch

from diffkit import ConfigError, DataError, ShapeError
from diffkit import schedules as gaussian_schedules
from diffkit.discrete import SAMPLERS, base, sample, schedules, toy

FACTORISED = toy.factorised(
    torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2], [0.1, 0.1, 0.8], [0.3, 0.45, 0.25]])
)
CORRELATED = toy.random(vocab=3, length=3, seed=1)  # 27 sequences
MASK = 3


def draw(net, shape, name, steps, seed=0, schedule=None, **kw):
    g = torch.Generator().manual_seed(seed)
    schedule = schedule or schedules.linear()
    return sample(net, shape, schedule, mask_id=MASK, sampler=name, steps=steps, generator=g, **kw)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize(
    "schedule", [schedules.linear(), schedules.loglinear(), schedules.cosine()]
)
def test_contract_tokens_out_no_masks_left_same_seed_same_result(name, schedule):
    net = FACTORISED.denoiser()
    a, b, c = (draw(net, (64, 4), name, 5, seed, schedule) for seed in (0, 0, 1))
    assert a.shape == (64, 4) and a.dtype == torch.long
    assert ((a >= 0) & (a < MASK)).all()
    assert torch.equal(a, b) and not torch.equal(a, c)
    x_T = torch.full((64, 4), MASK)
    x_T[:, 1] = 2  # a token that is already unmasked stays, even where it is unlikely
    assert (draw(net, x_T, name, 5, 0, schedule)[:, 1] == 2).all()


@pytest.mark.parametrize("name", ["ancestral", "cached"])
def test_the_exact_denoiser_reproduces_a_factorised_distribution_at_any_step_count(name):
    x = draw(FACTORISED.denoiser(), (40_000, 4), name, 2)
    # 81 outcomes: the sampling noise of 40k draws alone is about 0.02 of total variation
    assert FACTORISED.total_variation(x) < 0.03
    assert FACTORISED.total_variation(FACTORISED.sample(40_000)) < 0.03


def test_ancestral_reproduces_a_correlated_distribution_with_enough_steps():
    net = CORRELATED.denoiser()
    x = draw(net, (40_000, 3), "ancestral", 64, schedule=schedules.cosine())
    assert CORRELATED.total_variation(x) < 0.02  # sampling noise alone about 0.01
    # one step unmasks all tokens at once from their marginals: correlations are lost
    assert CORRELATED.total_variation(draw(net, (40_000, 3), "ancestral", 1)) > 0.1


def test_the_cached_sampler_equals_ancestral_with_fewer_calls():
    net_a, net_c = CORRELATED.denoiser(), CORRELATED.denoiser()
    a = draw(net_a, (8, 3), "ancestral", 200)
    c = draw(net_c, (8, 3), "cached", 200)
    assert torch.equal(a, c)
    assert net_a.calls == 200 and net_c.calls <= 8 * 3 + 1  # a call only after a change
    seen = []
    draw(net_c, (8, 3), "cached", 200, callback=lambda s: seen.append(s["logits"]))
    assert len(seen) == 200  # the callback still runs every step, with the cached logits


def test_maskgit_at_L_steps_and_temperature_0_is_greedy_in_confidence_order():
    net, order = FACTORISED.denoiser(), []

    def record(state):
        unmasked = (state["x"][0] != MASK).nonzero().flatten().tolist()
        order.append(unmasked)

    runs = [draw(net, (5, 4), "maskgit", 4, seed, temperature=t, callback=record)
            for seed, t in ((0, 0.0), (1, 0.0), (2, 1e-6))]  # fmt: skip
    for x in runs[1:]:
        assert torch.equal(x, runs[0])
    modes = torch.tensor([2, 0, 2, 1])  # each marginal's argmax
    assert (runs[0] == modes).all()
    # one token a step, most confident first: marginal maxima 0.5, 0.6, 0.8, 0.45
    assert [len(u) for u in order[:4]] == [1, 2, 3, 4]
    assert order[0] == [2] and order[1] == [1, 2] and order[2] == [0, 1, 2]


def test_maskgit_unmasks_the_schedules_share_each_step():
    counts = []
    x_T = torch.full((2, 10), MASK)
    x_T[:, :2] = 0  # known tokens do not count
    draw(
        lambda x, t: torch.zeros(*x.shape, 4),
        x_T,
        "maskgit",
        4,
        callback=lambda s: counts.append(int((s["x"][0] == MASK).sum())),
        confidence_noise=4.5,
    )
    assert counts == [6, 4, 2, 0]  # linear: floor(8 * (1 - alpha_s))


def test_bad_inputs_give_one_sentence():
    net = FACTORISED.denoiser()
    with pytest.raises(ConfigError, match="outside the model's vocabulary of 4 logits"):
        sample(lambda x, t: torch.zeros(*x.shape, 4), (2, 4), schedules.linear(), mask_id=4)
    with pytest.raises(ConfigError, match="mask_id must be a token id"):
        sample(net, (2, 4), schedules.linear(), mask_id=-1)
    with pytest.raises(ConfigError, match="steps must be a whole number >= 1"):
        draw(net, (2, 4), "ancestral", 0)
    with pytest.raises(ShapeError, match=r"must be \(B, L\)"):
        draw(net, (2, 4, 1), "ancestral", 2)
    with pytest.raises(ShapeError, match=r"shape \(B, L\)"):
        draw(net, torch.zeros(2, 4), "ancestral", 2)
    with pytest.raises(ShapeError, match=r"must return logits \(B, L, V\)"):
        draw(lambda x, t: torch.zeros(2, 4), (2, 4), "cached", 2)
    with pytest.raises(ConfigError, match="unknown masked-diffusion sampler 'ddim'"):
        draw(net, (2, 4), "ddim", 2)
    with pytest.raises(ConfigError, match="has no option 'eta'; its options: temperature"):
        draw(net, (2, 4), "ancestral", 2, eta=0.5)
    with pytest.raises(ConfigError, match="needs a masking schedule, got Schedule"):
        sample(net, (2, 4), gaussian_schedules.linear(), mask_id=MASK)
    with pytest.raises(ConfigError, match="temperature must be >= 0"):
        draw(net, (2, 4), "maskgit", 2, temperature=-1.0)


def test_draw_follows_the_tempered_softmax_without_the_mask():
    logits = torch.tensor([[0.0, 1.0, -1.0, 5.0], [2.0, 2.0, 0.0, 9.0]])  # the mask's logit largest
    u = torch.rand(2, 200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for temperature in (1.0, 0.5):
        many = logits[:, None].expand(-1, u.shape[1], -1)  # (2, n, V)
        tokens, log_prob = base.draw(many, MASK, temperature, u)  # (2, n)
        freq = torch.nn.functional.one_hot(tokens, 4).double().mean(1)  # (2, 4)
        expect = torch.softmax(logits[:, :MASK].double() / temperature, -1)
        torch.testing.assert_close(freq[:, :MASK], expect, atol=5e-3, rtol=0)
        assert (tokens != MASK).all()
        lp = torch.log_softmax(logits[:, :MASK].double(), -1)  # untempered, the mask removed
        torch.testing.assert_close(log_prob, lp.gather(-1, tokens), atol=1e-6, rtol=0)
    tokens, log_prob = base.draw(logits, MASK, 0.0, u[:, 0])
    assert tokens.tolist() == [1, 0]  # the argmax; ties: the first
    torch.testing.assert_close(log_prob, lp.max(-1).values, atol=1e-6, rtol=0)


@pytest.mark.parametrize("v", [3, 64, 100, 1000])
def test_the_two_level_cdf_search_equals_a_plain_cumulative_sum(v):
    g = torch.Generator().manual_seed(v)
    weights = torch.rand(500, v, generator=g) ** 4
    weights[weights < 0.3] = 0  # many zero weights, whole blocks of them for large v
    weights[:, 0] = 0
    weights[:, -1] = 1e-3
    u = torch.rand(500, generator=g, dtype=torch.float64)
    u[:3] = torch.tensor([0.0, 1 - 2**-53, 0.5])
    idx, total = base.search_cdf(weights, u)
    cdf = weights.double().cumsum(-1)
    expect = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True)[:, 0]
    torch.testing.assert_close(total, cdf[:, -1], rtol=1e-6, atol=0)
    assert (weights.gather(-1, idx[:, None]) > 0).all()  # never a zero weight
    assert (idx != expect).float().mean() < 0.01  # float32 block sums: rare ties at edges


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_nan_logits_are_one_clear_error_at_the_end_and_minus_inf_is_allowed(name):
    s = schedules.loglinear()

    def logits(value, after=0.5):
        def net(x, t):  # (B, L, V) zeros but token 2's logit, from time `after` on
            out = torch.zeros(*x.shape, 5)
            out[..., 2] = value if float(t[0]) < after else 0.0
            return out

        return net

    for bad in (float("nan"), float("inf")):
        with pytest.raises(DataError, match=f"sampler '{name}' got NaN or inf predictions"):
            sample(logits(bad), (2, 6), s, mask_id=0, sampler=name, steps=6)
    x = sample(logits(-float("inf"), after=2.0), (2, 6), s, mask_id=0, sampler=name, steps=6)
    assert not (x == 2).any() and not (x == 0).any()  # -inf forbids token 2 where it is given
    for wrong, kind in [(lambda x, t: (x,), "tuple"), (lambda x, t: x, "torch.int64 tensor")]:
        with pytest.raises(ShapeError, match=f"returned a {kind}; it must return one float"):
            sample(wrong, (2, 6), s, mask_id=0, sampler=name)
