"""Sampling text: clamping, guidance, infilling, --length, self-conditioning, any sampler."""

import pytest
import torch

from diffkit import guidance
from diffkit.domains.text.data import encode_corpus
from diffkit.domains.text.generate import (
    clamp_to_embeddings,
    condition_ids,
    encode_fragment,
    free_template,
    infill_template,
    length_template,
    nearest_ids,
    sample_ids,
    self_conditioned,
    tensor_to_texts,
    texts_to_tensor,
)
from diffkit.domains.text.grammar import restaurants
from diffkit.domains.text.network import TextDenoiser
from diffkit.domains.text.tokenizer import train_tokenizer
from diffkit.errors import ConfigError
from diffkit.schedules import sqrt

L = 48
SCHEDULE = sqrt(2000)


@pytest.fixture(scope="module")
def tok():
    corpus = restaurants(300)
    return train_tokenizer([*corpus.texts, *corpus.conds], None)


@pytest.fixture(scope="module")
def allowed(tok):
    return tok.rounding_mask(encode_corpus(tok, restaurants(300).texts, L))


def make(tok, **kw):
    torch.manual_seed(0)
    args = dict(embed_dim=16, width=32, depth=2, heads=4, max_length=L, dropout=0.0)
    args |= dict(cond_vocab_size=tok.vocab_size, cond_length=L)
    return TextDenoiser(tok.vocab_size, **{**args, **kw}).eval()


def test_clamping_snaps_to_allowed_embeddings(tok, allowed):
    net = make(tok)
    x0 = torch.randn(2, L, 16)
    snapped = clamp_to_embeddings(net, allowed.expand(L, -1))(x0)
    ids = nearest_ids(net, snapped, allowed.expand(L, -1))
    torch.testing.assert_close(snapped, net.embed(ids))
    assert allowed[ids].all()


def test_guidance_scale_zero_and_one_are_the_unconditional_and_conditional_models(tok):
    net = make(tok)
    cond_ids, cond_pad = condition_ids(tok, "name[The Eagle], eatType[pub]", L)
    x, t = torch.randn(3, L, 16), torch.full((3,), 700.0)
    cond = {"cond_ids": cond_ids.expand(3, -1), "cond_pad": cond_pad.expand(3, -1)}
    null = {"cond_ids": net.null_cond_id}
    torch.testing.assert_close(guidance.cfg(net, 0.0, null)(x, t, **cond), net(x, t))
    torch.testing.assert_close(guidance.cfg(net, 1.0, null)(x, t, **cond), net(x, t, **cond))


def test_guided_sampling_at_scale_zero_equals_unconditional_sampling(tok, allowed):
    net, tpl = make(tok), free_template(tok, L, allowed)
    ids, pad = condition_ids(tok, "name[The Mill]", L)
    cond = {"cond_ids": ids, "cond_pad": pad}

    def draw(**kw):
        g = torch.Generator().manual_seed(4)
        return sample_ids(net, SCHEDULE, 2, tpl, sampler="ddim", steps=8, generator=g, **kw)

    assert torch.equal(draw(cond=cond, guidance=0.0), draw())
    assert torch.equal(draw(cond=cond, guidance=1.0), draw(cond=cond))
    assert not torch.equal(draw(cond=cond, guidance=3.0), draw())


@pytest.mark.parametrize("sampler, steps", [("ddpm", 10), ("ddim", 8), ("dpmpp_2m", 6)])
def test_infilling_keeps_the_known_tokens_exactly(tok, allowed, sampler, steps):
    net = make(tok, self_conditioning=True)
    tpl = infill_template(tok, "The ___ is a coffee shop near ___.", L, allowed, span=2)
    g = torch.Generator().manual_seed(0)
    ids = sample_ids(net, SCHEDULE, 4, tpl, sampler=sampler, steps=steps, generator=g)
    assert torch.equal(ids[:, tpl.known], tpl.ids[tpl.known].expand(4, -1))
    specials = torch.tensor([tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id])
    assert not torch.isin(ids[:, ~tpl.known], specials).any()
    for text in tok.decode_batch(ids):
        assert text.startswith("The ") and " is a coffee shop near " in text and text[-1] == "."


@pytest.mark.parametrize("n_tokens", [1, 7, L - 2])
def test_length_gives_exactly_the_requested_number_of_tokens(tok, allowed, n_tokens):
    net = make(tok)
    tpl = length_template(tok, n_tokens, L, allowed)
    ids = sample_ids(net, SCHEDULE, 3, tpl, steps=5, generator=torch.Generator().manual_seed(0))
    for row in ids.tolist():
        body = row[1 : row.index(tok.eos_id)]
        assert row[0] == tok.bos_id and len(body) == n_tokens
        assert all(i == tok.pad_id for i in row[n_tokens + 2 :])
    with pytest.raises(ConfigError, match="at most 48"):
        length_template(tok, L - 1, L, allowed)


def test_template_errors_are_one_line(tok, allowed):
    with pytest.raises(ConfigError, match="needs at least one blank"):
        infill_template(tok, "no blanks here", L, allowed)
    with pytest.raises(ConfigError, match="at least 1 token"):
        length_template(tok, 0, L, allowed)
    with pytest.raises(ConfigError, match="shorten it"):
        condition_ids(tok, "name[The Eagle] " * 20, 8)


def test_fragments_glued_to_a_blank_lose_the_dummy_word_start(tok):
    assert encode_fragment(tok, " is a", first=False) == tok.encode("is a")
    for fragment in (".", ". It is", "s pub near"):
        glued = encode_fragment(tok, fragment, first=False)
        assert tok.decode(tok.encode("The Mill") + glued) == "The Mill" + fragment


def test_self_conditioned_wrapper_feeds_back_the_previous_estimate(tok):
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, x, t, self_cond=None):
            seen.append(self_cond)
            return x * 2

    model = self_conditioned(Spy())
    x = torch.randn(2, 3, 4)
    model(x, torch.zeros(2))
    model(x, torch.zeros(2))
    assert seen[0] is None and torch.equal(seen[1], x * 2)


def test_sample_texts_round_trip_through_a_byte_tensor():
    texts = ["The Eagle is a pub.", "", "Café Sicilia ☕"]
    x = texts_to_tensor(texts)
    assert x.dtype == torch.uint8 and tensor_to_texts(x) == texts
