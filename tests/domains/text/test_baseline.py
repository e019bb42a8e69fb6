"""The AR baseline: exact NLL bookkeeping, causality, learning on the grammar, generation."""

import math

import pytest
import torch

from diffkit.domains.text.baseline import ARConfig, ARModel, ar_loss, real_tokens
from diffkit.domains.text.data import TextDataset
from diffkit.domains.text.grammar import restaurants
from diffkit.domains.text.tokenizer import train_tokenizer
from diffkit.errors import ConfigError, ShapeError

V = 11
IDS = torch.tensor([[2, 5, 6, 7, 3, 0, 0], [2, 8, 3, 4, 4, 0, 0]])  # BOS .. EOS PAD; junk after EOS
PAD = IDS != 0


def _model(**kw):
    torch.manual_seed(0)
    settings = dict(vocab_size=V, width=16, depth=2, heads=2, max_length=8, dropout=0.0)
    return ARModel(ARConfig(**(settings | kw))).eval()


def test_real_tokens_stop_at_the_first_eos():
    assert real_tokens(IDS, 3).tolist() == [
        [True] * 5 + [False] * 2,
        [True] * 3 + [False] * 4,
    ]


def test_nll_of_a_model_with_zero_weights_is_log_v_per_token():
    net = _model()
    for p in net.parameters():
        torch.nn.init.zeros_(p)  # logits all 0: uniform next-token law
    # Targets: 4 tokens after BOS in row 0 (5 6 7 EOS), 2 in row 1 (8 EOS).
    assert torch.allclose(net.nll(IDS, PAD), torch.tensor([4.0, 2.0]) * math.log(V))


def test_nll_equals_the_closed_form_of_set_logits(monkeypatch):
    net = _model()
    logits = torch.randn(2, 7, V, generator=torch.Generator().manual_seed(1))
    monkeypatch.setattr(net, "forward", lambda *a, **k: logits)
    logp = logits.log_softmax(-1)
    expected = [
        -sum(logp[0, i, IDS[0, i + 1]] for i in range(4)),  # predicts 5 6 7 EOS
        -sum(logp[1, i, IDS[1, i + 1]] for i in range(2)),  # predicts 8 EOS; 4 4 excluded
    ]
    assert torch.allclose(net.nll(IDS, PAD), torch.stack(expected))
    assert torch.allclose(net.nll(IDS), torch.stack(expected))  # EOS alone ends a text
    per_token = ar_loss(net, {"ids": IDS, "pad": PAD})
    assert torch.allclose(per_token, torch.stack(expected) / torch.tensor([4.0, 2.0]))


def test_logits_are_causal_and_the_condition_is_seen():
    net = _model(cond_length=4)
    other = IDS.clone()
    other[:, 3:] = 9
    a, b = net(IDS), net(other)
    assert torch.allclose(a[:, :3], b[:, :3], atol=1e-6) and not torch.allclose(a, b)
    cond = torch.tensor([[2, 4, 3, 0], [2, 5, 6, 3]])
    cond_pad = cond != 0
    with_cond = net(IDS, PAD, cond, cond_pad)
    assert with_cond.shape == (2, 7, V) and not torch.allclose(with_cond, a)
    # A padded condition key is ignored: changing it changes nothing.
    cond2 = cond.clone()
    cond2[0, 3] = 9
    assert torch.allclose(net(IDS, PAD, cond2, cond_pad), with_cond, atol=1e-6)


def test_generate_respects_the_prefix_and_stops_at_eos():
    net = _model()
    prefix = torch.tensor([2, 5, 6])
    out = net.generate(50, prefix_ids=prefix, generator=torch.Generator().manual_seed(0))
    assert out.shape == (50, 8) and (out[:, :3] == prefix).all()
    ended = [row for row in out.tolist() if 3 in row]
    assert 0 < len(ended) < 50  # an untrained model ends some texts (P(EOS) ~ 1/11 a step)
    assert all(set(row[row.index(3) + 1 :]) <= {0} for row in ended)  # only PAD after EOS
    again = net.generate(50, prefix_ids=prefix[1:], generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # BOS is prepended to a prefix without it; seeded
    with torch.no_grad():  # make EOS overwhelmingly likely: every text ends right away
        net.embed.weight[3] = 5 * net.embed.weight[3] / net.embed.weight[3].norm()
    out = net.generate(4, prefix_ids=prefix, temperature=0.3)
    assert out.tolist() == [[2, 5, 6, 3, 0, 0, 0, 0]] * 4
    nucleus = net.generate(3, prefix_ids=prefix[:1], top_p=1e-6)
    assert (nucleus == nucleus[0]).all()  # top_p -> 0 is the argmax, the same for all


def test_temperature_zero_is_greedy_decoding():
    net = _model()
    out = net.generate(2, temperature=0.0, generator=torch.Generator().manual_seed(0))
    ids = out[:1, :1]  # BOS; then the argmax of each step's logits, until EOS
    with torch.no_grad():
        while ids.shape[1] < 8 and ids[0, -1] != 3:
            ids = torch.cat([ids, net(ids)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert out[0, : ids.shape[1]].tolist() == ids[0].tolist()
    assert torch.equal(out[0], out[1])


def test_a_few_hundred_steps_on_the_grammar_lower_the_nll():
    torch.manual_seed(0)
    corpus = restaurants(2000, seed=0)
    tokenizer = train_tokenizer(corpus.texts, vocab_size=None)
    data = TextDataset.from_corpus(corpus, tokenizer, max_length=32, cond_max_length=48)
    net = ARModel(
        ARConfig(
            tokenizer.vocab_size,
            width=32,
            depth=1,
            heads=2,
            max_length=32,
            cond_length=48,
            dropout=0.0,
        )
    )
    probe = TextDataset.from_corpus(restaurants(200, seed=1), tokenizer, 32, 48)
    held = next(iter(torch.utils.data.DataLoader(probe, batch_size=200)))
    before = net.nll(held["ids"], held["pad"], held["cond_ids"], held["cond_pad"]).mean()
    optimiser = torch.optim.AdamW(net.parameters(), lr=3e-3)
    loader = torch.utils.data.DataLoader(data, batch_size=32, shuffle=True)
    steps = 0
    while steps < 200:
        for batch in loader:
            loss = ar_loss(net, batch).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            steps += 1
            if steps == 200:
                break
    after = net.nll(held["ids"], held["pad"], held["cond_ids"], held["cond_pad"]).mean()
    assert after < 0.5 * before, (before, after)
    out = net.generate(
        cond_ids=held["cond_ids"][:4],
        cond_pad=held["cond_pad"][:4],
        generator=torch.Generator().manual_seed(0),
    )
    assert out.shape == (4, 32) and (out[:, 0] == tokenizer.bos_id).all()


def test_bad_settings():
    with pytest.raises(ConfigError, match="dropout"):
        ARConfig(vocab_size=5, dropout=1.0)
    with pytest.raises(ConfigError, match="positive"):
        ARConfig(vocab_size=0)
    net = _model()
    with pytest.raises(ShapeError, match="max_length 8"):
        net(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ShapeError, match="cond_length"):
        net(IDS, cond_ids=torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ConfigError, match="exceeds"):
        net.generate(1, max_length=20)
    with pytest.raises(ConfigError, match="top_p"):
        net.generate(1, top_p=0.0)
    with pytest.raises(ConfigError, match="temperature >= 0"):
        net.generate(1, temperature=-0.5)
