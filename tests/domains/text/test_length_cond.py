"""The conditional length prior p(k | c): counts, its bound with a known law, sampling."""

import math

import torch

from diffkit import discrete
from diffkit.domains.text import length
from diffkit.domains.text.domain import TextConfig, build_network
from diffkit.domains.text.generate import Template
from diffkit.domains.text.masked import MaskedLM, masked_loss, masked_nll, sample_masked
from tests.domains.text.test_masked import ExactDenoiser
from tests.tiny import one_thread  # noqa: F401  (autouse)

PAD, BOS, EOS = 0, 2, 3
V, L, LC = 6, 4, 3
# Two conditions of different sizes (c = 1 and c = 2 tokens) and a law of texts under each.
CONDS = {1: [4, PAD, PAD], 2: [4, 5, PAD]}
LAWS = {
    1: {(BOS, 4, EOS, PAD): 0.6, (BOS, 5, EOS, PAD): 0.3, (BOS, 4, 5, EOS): 0.1},
    2: {(BOS, 4, 5, EOS): 0.5, (BOS, 5, 5, EOS): 0.3, (BOS, 5, EOS, PAD): 0.2},
}


def cond_of(c: int, n: int) -> dict:
    ids = torch.tensor([CONDS[c]] * n)
    return {"cond_ids": ids, "cond_pad": torch.arange(LC)[None].expand(n, -1) < c}


class ExactConditional(torch.nn.Module):
    """The exact denoiser of one condition's law at a time, with the true p(k | c)."""

    masked, conditional, lengths, pad_id, eos_id = True, True, "prior", PAD, EOS
    null_cond_id = V + 1

    def __init__(self):
        super().__init__()
        schedule = discrete.get_schedule("loglinear")
        self.schedule, self.mask_id = schedule, V
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.exact = ExactDenoiser(schedule)  # of test_masked's LAW: the test sets it per c
        counts = torch.zeros(LC + 1, L, dtype=torch.float64)
        for c, law in LAWS.items():  # the true law of k, so large that smoothing vanishes
            for x0, p in law.items():
                counts[c, length.token_counts(torch.tensor([x0]), EOS)] += p * 1e12
        self.register_buffer("cond_length_counts", counts)
        self.register_buffer("length_counts", counts.sum(0))

    def forward(self, x_t, t=None, *, cond_ids=None, cond_pad=None):
        return self.exact(x_t)


def test_with_the_exact_denoiser_and_the_true_law_per_condition_the_bound_is_the_true_nll(
    monkeypatch,
):
    import tests.domains.text.test_masked as tm

    net = ExactConditional()
    for c, law in LAWS.items():
        monkeypatch.setattr(tm, "LAW", law)  # ExactDenoiser reads the module's LAW
        for x0, p in law.items():
            g, n = torch.Generator().manual_seed(1), 256
            ids = torch.tensor([x0] * n)
            nats = masked_nll(net, ids, cond=cond_of(c, n), num_t=16, masks_per_t=2, generator=g)
            error = 4 * nats.std().item() / math.sqrt(n) + 0.002
            assert abs(nats.mean().item() + math.log(p)) < error, (c, x0, nats.mean())


def test_the_table_is_smoothed_toward_the_global_law_and_sums_to_one():
    counts = torch.zeros(LC + 1, L, dtype=torch.float64)
    ids = torch.tensor([[BOS, 4, EOS, PAD]] * 3 + [[BOS, 4, 5, EOS]])
    length.count_cond_lengths(counts, ids, torch.tensor([1, 1, 1, 2]), EOS)
    assert counts[1].tolist() == [0, 3, 0, 0] and counts[2].tolist() == [0, 0, 1, 0]
    log_p = length.cond_length_log_probs(counts, torch.tensor([1, 2, 0, -1]), strength=2.0)
    assert torch.allclose(log_p.exp().sum(-1), torch.ones(4, dtype=torch.float64))
    prior = length.length_log_probs(counts.sum(0)).exp()  # [1, 4, 2, 1] / 8
    assert torch.allclose(log_p[1].exp(), (counts[2] + 2 * prior) / 3)
    assert torch.allclose(log_p[2].exp(), prior) and torch.allclose(log_p[3].exp(), prior)


def test_training_counts_per_condition_and_sampling_draws_k_given_the_condition():
    net = build_network(
        TextConfig(model="masked", vocab_size=V, max_length=L + 2, cond_column="mr",
                   cond_length=LC, width=16, depth=1, heads=2)
    ).train()  # fmt: skip
    assert net.lengths == "prior"  # the default now for conditional models too
    rows = [[BOS, 4, EOS, PAD, PAD, PAD]] * 40 + [[BOS, 4, 5, 4, EOS, PAD]] * 40
    conds = cond_of(1, 40), cond_of(2, 40)
    batch = {"ids": torch.tensor(rows), **{k: torch.cat([a[k], b[k]]) for a, b in [conds]
                                           for k in a}}  # fmt: skip
    masked_loss(net, batch, generator=torch.Generator().manual_seed(0))
    assert net.cond_length_counts[1, 1] == 40 and net.cond_length_counts[2, 3] == 40
    assert net.cond_length_counts.sum() == 80
    net.eval()
    allowed = torch.ones(L + 2, V, dtype=torch.bool)
    ids, known = torch.full((L + 2,), PAD), torch.arange(L + 2) == 0
    ids[0] = BOS
    for c, k in ((1, 1), (2, 3)):
        out = sample_masked(
            net, 400, Template(ids, known, allowed), sampler="cached", steps=8,
            cond=cond_of(c, 1), generator=torch.Generator().manual_seed(c),
        )  # fmt: skip
        share = (length.token_counts(out, EOS) == k).float().mean().item()
        expect = (40 + length.STRENGTH * (41 / 86)) / (40 + length.STRENGTH)  # 0.78
        assert abs(share - expect) < 4 * math.sqrt(expect * (1 - expect) / 400), (c, share)


def test_a_conditional_checkpoint_from_before_the_prior_loads_as_pads():
    kw = {"width": 16, "depth": 1, "heads": 2, "max_length": L, "cond_length": LC}
    old = MaskedLM(V, lengths="pads", **kw).state_dict()
    net = MaskedLM(V, **kw)
    net.load_state_dict(old)
    assert net.lengths == "pads" and not hasattr(net, "cond_length_counts")
