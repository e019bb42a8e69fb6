"""The masked LM's length prior: counts, its bound (tight when exact, a valid bound always)."""

import itertools
import math
from dataclasses import replace

import pytest
import torch

from diffkit import discrete
from diffkit.domains.text import length
from diffkit.domains.text.domain import TextConfig, build_network, load_data
from diffkit.domains.text.generate import allowed_of, free_template, tokenizer_of
from diffkit.domains.text.masked import MaskedLM, masked_loss, masked_nll, sample_masked
from diffkit.errors import ConfigError
from tests.domains.text.test_masked import LAW, ExactDenoiser
from tests.tiny import one_thread  # noqa: F401  (autouse)

PAD, BOS, EOS = 0, 2, 3
V, L = 6, 4


def test_token_counts_and_the_given_positions():
    ids = torch.tensor([[BOS, EOS, PAD, PAD], [BOS, 4, EOS, PAD], [BOS, 4, 5, EOS], [BOS, 4, 5, 4]])
    assert length.token_counts(ids, EOS).tolist() == [0, 1, 2, 3]  # no EOS: L - 1, all paid
    keep = length.paid_keep(ids, EOS)
    assert keep.tolist() == [
        [True, True, True, True],
        [True, False, True, True],
        [True, False, False, True],
        [True, False, False, False],
    ]


def test_the_prior_is_the_add_one_histogram_and_sums_to_one():
    counts = length.count_lengths(torch.zeros(L), torch.tensor([[BOS, 4, EOS, PAD]] * 3), EOS)
    assert counts.tolist() == [0, 3, 0, 0]
    log_p = length.length_log_probs(counts)
    assert torch.allclose(log_p.exp(), torch.tensor([1, 4, 1, 1], dtype=torch.float64) / 7)
    draws = length.sample_counts(log_p, 2000, 1, 2, torch.Generator().manual_seed(0))
    assert set(draws.tolist()) <= {1, 2} and 0.7 < (draws == 1).float().mean() < 0.9  # 4/5


def test_the_length_is_tempered_as_the_tokens_are():
    log_p = torch.tensor([1, 4, 1, 1], dtype=torch.float64).div(7).log()
    g = torch.Generator().manual_seed(0)
    assert length.sample_counts(log_p, 50, 1, 2, g, temperature=0.0).tolist() == [1] * 50
    assert length.sample_counts(log_p, 5, 2, 3, g, temperature=0.0).tolist() == [2] * 5  # ties
    sharp = length.sample_counts(log_p, 4000, 1, 2, g, temperature=0.5)  # p ~ 4^2 : 1^2
    assert 0.93 < (sharp == 1).float().mean() < 0.955  # 16/17 = 0.941
    with pytest.raises(ConfigError, match="temperature must be >= 0"):
        length.sample_counts(log_p, 5, 1, 2, g, temperature=-1.0)


class ExactWithPrior(ExactDenoiser):
    lengths, pad_id, eos_id = "prior", PAD, EOS

    def __init__(self, schedule, counts):
        super().__init__(schedule)
        self.length_counts = counts


def test_with_the_exact_denoiser_and_the_true_length_law_the_bound_is_the_true_nll():
    counts = torch.zeros(L, dtype=torch.float64)  # LAW's k: 1 with .5 + .2, 2 with .3
    counts[1], counts[2] = 0.7e12, 0.3e12
    net = ExactWithPrior(discrete.get_schedule("loglinear"), counts)
    for x0, p in LAW.items():
        g, n = torch.Generator().manual_seed(1), 256
        nats = masked_nll(net, torch.tensor([x0] * n), num_t=16, masks_per_t=2, generator=g)
        error = 4 * nats.std().item() / math.sqrt(n) + 0.002
        assert abs(nats.mean().item() + math.log(p)) < error, (x0, nats.mean(), -math.log(p))


def texts() -> torch.Tensor:
    """Every text of L = 4 positions: BOS, k tokens of any id but EOS, then EOS and PADs."""
    rows = []
    for k in range(L):
        for body in itertools.product([PAD, 1, BOS, 4, 5], repeat=k):
            tail = [EOS] + [PAD] * (L - 2 - k) if k < L - 1 else []
            rows.append([BOS, *body, *tail])
    return torch.tensor(rows)


def exact_bound(net, ids: torch.Tensor) -> torch.Tensor:
    """The linear schedule's bound by enumeration: every mask M of the paid positions, weighed
    by int_0^1 t^(|M|-1) (1-t)^(k-|M|) dt = (|M|-1)! (k-|M|)! / k! (nats, float64)."""
    out = torch.zeros(len(ids), dtype=torch.float64)
    k_all = length.token_counts(ids, EOS)
    for i, (row, k) in enumerate(zip(ids, k_all.tolist(), strict=True)):
        for m in range(1, k + 1):
            for hidden in itertools.combinations(range(1, k + 1), m):
                x_t = row.clone()
                x_t[list(hidden)] = net.mask_id
                with torch.no_grad():
                    logits = net(x_t[None])[0].double()
                logits[:, net.mask_id] = -math.inf
                log_p = logits.log_softmax(-1)
                ce = -sum(log_p[j, row[j]] for j in hidden)
                w = math.factorial(m - 1) * math.factorial(k - m) / math.factorial(k)
                out[i] += w * ce
    log_prior = length.length_log_probs(net.length_counts)
    return out - log_prior[k_all]


def test_the_bound_of_any_network_is_a_valid_one_and_nll_bound_estimates_it():
    """exp(-bound) over every text sums to at most 1: the bound is -log of a sub-probability,
    so it can never beat the entropy; the core's estimator agrees with the enumeration."""
    torch.manual_seed(0)
    net = MaskedLM(V, width=16, depth=1, heads=2, max_length=L, schedule="linear").eval()
    with torch.no_grad():
        net.embed.weight.normal_()  # a far from uniform network
        net.length_counts.copy_(torch.tensor([3.0, 1.0, 0.0, 5.0]))
    ids = texts()
    exact = exact_bound(net, ids)
    total = exact.neg().exp().sum().item()
    assert 0.5 < total <= 1.0 + 1e-9, total  # mass on EOS / BOS / mask-free ids leaks away
    g = torch.Generator().manual_seed(0)
    estimate = masked_nll(net, ids, num_t=4, masks_per_t=64, generator=g)
    error = estimate - exact  # per text: mask noise only (4 Gauss-Legendre times are exact)
    assert abs(error.mean().item()) < 4 * error.std().item() / math.sqrt(len(ids))


@pytest.fixture(scope="module")
def data():
    return load_data(TextConfig(model="masked", n_train=300, width=16, depth=1, heads=2), None)


def test_training_counts_lengths_and_sampling_draws_them(data):
    net = build_network(data.config).train()
    assert net.lengths == "prior"  # the default for an unconditional model
    batch = {"ids": data.train.texts.ids[:64]}
    masked_loss(net, batch, generator=torch.Generator().manual_seed(0))
    k = length.token_counts(batch["ids"], net.eos_id)
    assert net.length_counts.sum().item() == 64
    assert torch.equal(net.length_counts, torch.bincount(k, minlength=net.max_length).double())
    net.eval()
    tok = tokenizer_of(data.settings)
    tpl = free_template(
        tok, data.config.max_length, allowed_of(data.settings, data.config.vocab_size)
    )
    g = torch.Generator().manual_seed(0)
    out = sample_masked(net, 200, tpl, sampler="cached", generator=g)
    drawn = length.token_counts(out, net.eos_id)
    common = k.mode().values.item()
    share = length.length_log_probs(net.length_counts)[common].exp().item()
    assert abs((drawn == common).float().mean().item() - share) < 4 * math.sqrt(share / 200)
    tail = torch.arange(out.shape[1])[None] > drawn[:, None] + 1
    assert (out[tail] == tok.pad_id).all() and (out[torch.arange(200), drawn + 1] == EOS).all()


def test_a_conditional_model_gets_the_conditional_prior_and_the_choice_is_checked():
    config = TextConfig(model="masked", vocab_size=8, max_length=6, cond_column="mr", cond_length=4)
    assert build_network(config).cond_length_counts.shape == (5, 6)  # p(k | c), c = 0..4
    assert build_network(replace(config, mask_lengths="pads")).lengths == "pads"
    with pytest.raises(Exception, match="mask_lengths"):
        TextConfig(model="masked", mask_lengths="nope")


def test_the_per_masked_weighting_is_the_same_bound_with_less_variance():
    """(k + 1) / |masked| is E[1 / t | mask] for uniform t under the linear schedule."""
    torch.manual_seed(0)
    net = MaskedLM(V, width=16, depth=1, heads=2, max_length=L, schedule="linear").eval()
    with torch.no_grad():
        net.embed.weight.normal_()
    ids = torch.tensor([[BOS, 4, 5, 4], [BOS, 5, EOS, PAD]]).repeat_interleave(3000, 0)
    exact = exact_bound(net, ids[[0, -1]]) + length.length_log_probs(net.length_counts)[[3, 1]]
    g = torch.Generator().manual_seed(0)
    for row, truth in zip((ids[:3000], ids[3000:]), exact.tolist(), strict=True):
        elbo, rb = (
            masked_loss(net, {"ids": row}, generator=g, per_masked=per)["loss"].detach() * (L - 1)
            for per in (False, True)
        )
        assert abs(rb.mean().item() - truth) < 4 * rb.std().item() / math.sqrt(len(row))
        assert abs(elbo.mean().item() - truth) < 4 * elbo.std().item() / math.sqrt(len(row))
        assert rb.std() < 0.8 * elbo.std()
