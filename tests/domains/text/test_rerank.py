"""Consensus (minimum-Bayes-risk) choice among drafts: sacrebleu's per-text scores, the
majority draft kept, the slot reranker's choice among the drafts missing the fewest slot
values, and conditional sampling with drafts keeping one of its own drafts."""

import pytest
import sacrebleu
import torch

from diffkit.domains.text.domain import TextConfig, build_network, load_data
from diffkit.domains.text.evaluate import conditional_samples
from diffkit.domains.text.generate import allowed_of, tokenizer_of
from diffkit.domains.text.grammar import restaurants
from diffkit.domains.text.metrics import (
    consensus_bleu,
    group_references,
    missing_slots,
    slot_error,
)
from diffkit.domains.text.rerank import consensus_pick
from diffkit.errors import ShapeError


def test_consensus_bleu_is_each_texts_sentence_bleu_against_the_rest():
    texts = list(restaurants(12, seed=4).texts)
    expected = [sacrebleu.sentence_bleu(t, texts[:i] + texts[i + 1 :]).score
                for i, t in enumerate(texts)]  # fmt: skip
    assert consensus_bleu(texts) == pytest.approx(expected, abs=1e-9)
    with pytest.raises(ShapeError, match="at least two"):
        consensus_bleu(["alone"])


def test_the_draft_the_others_agree_with_is_kept_per_input():
    drafts = [
        ["the pub is cheap and near the river", "a b c d e"],
        ["the pub is cheap near the river", "v w x y z"],
        ["a cafe with a high rating", "a b c d f"],
    ]
    assert consensus_pick(drafts) == ["the pub is cheap near the river", "a b c d e"]
    assert consensus_pick(drafts[:1]) == drafts[0]
    with pytest.raises(ShapeError, match="same length"):
        consensus_pick([["x", "y"], ["x"]])
    with pytest.raises(ShapeError):
        consensus_pick([])


def test_missing_slots_counts_the_values_slot_error_counts():
    mrs = ["name[The Eagle], food[French], familyFriendly[yes]", "area[city centre], near[Bar]"]
    texts = ["The Eagle serves Italian food.", "It is by the river near Bar."]
    assert [missing_slots(m, t) for m, t in zip(mrs, texts, strict=True)] == [
        1,
        1,
    ]  # yes/no is unchecked
    assert slot_error(mrs, texts) == pytest.approx(2 / 4)
    assert missing_slots("name[X]", "the x is here") == 0  # lowercase, word boundary


def test_the_slot_reranker_keeps_the_consensus_of_the_drafts_missing_fewest_slots():
    mr = "name[The Eagle], food[French]"
    drafts = [  # the majority leaves out the food; the one complete draft wins
        ["The Eagle is a pub near the river.", "b"],
        ["The Eagle is a pub near the river .", "a b c"],
        ["The Eagle serves French food.", "a b c"],
        ["The Eagle is a pub.", "a b"],
    ]
    assert consensus_pick(drafts)[0] == "The Eagle is a pub near the river."
    picked = consensus_pick(drafts, [mr, "name[a b c]"])
    assert picked == ["The Eagle serves French food.", "a b c"]
    tied = [["The Eagle serves French food here.", "x"], ["The Eagle has French food.", "x"],
            ["The Eagle serves French food.", "x"]]  # fmt: skip
    assert consensus_pick(tied, [mr, "x[y]"]) == consensus_pick(tied)  # all complete: MBR
    with pytest.raises(ShapeError, match="1 conditions for 2 inputs"):
        consensus_pick(drafts, [mr])


@pytest.mark.parametrize("model", ["masked", "ar"])
def test_conditional_drafts_keep_one_of_the_drafts_drawn_in_one_batch(model):
    data = load_data(TextConfig(model=model, n_train=60, cond_column="mr"), None)
    torch.manual_seed(0)
    config = TextConfig(**{**vars(data.config), "width": 32, "depth": 1, "heads": 2})
    net = build_network(config).eval()
    if model == "masked":  # livelier logits, so the masked drafts differ (the AR ones do)
        with torch.no_grad():
            net.embed.weight.normal_()
    tok, allowed = tokenizer_of(data.settings), allowed_of(data.settings, config.vocab_size)
    mrs = list(group_references(data.val.corpus.conds, data.val.corpus.texts)[0])[:5]

    def draw(batch, drafts):
        return conditional_samples(
            net, None, batch, tok, config, allowed, sampler="maskgit", steps=6, guidance=1.0,
            temperature=1.0, drafts=drafts, generator=torch.Generator().manual_seed(9),
        )  # fmt: skip

    flat = draw(mrs * 3, 1)
    columns = [flat[k * 5 : (k + 1) * 5] for k in range(3)]
    assert len({tuple(c) for c in columns}) == 3  # the drafts differ
    assert draw(mrs, 3) == consensus_pick(columns)
    reranked = conditional_samples(
        net, None, mrs, tok, config, allowed, sampler="maskgit", steps=6, guidance=1.0,
        temperature=1.0, drafts=3, slot_rerank=True, generator=torch.Generator().manual_seed(9),
    )  # fmt: skip
    assert reranked == consensus_pick(columns, mrs)


def test_conditions_longer_than_the_models_are_cut_with_a_note(capsys):
    data = load_data(TextConfig(model="ar", n_train=60, cond_column="mr"), None)
    config = TextConfig(**{**vars(data.config), "width": 32, "depth": 1, "heads": 2})
    net, tok = build_network(config).eval(), tokenizer_of(data.settings)
    allowed = allowed_of(data.settings, config.vocab_size)
    mrs = ["name[x]", ", ".join(f"name[value {i}]" for i in range(40))]
    capsys.readouterr()
    texts = conditional_samples(
        net, None, mrs, tok, config, allowed, sampler=None, steps=None, guidance=1.0,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert len(texts) == 2
    out = capsys.readouterr().out
    assert f"1 of 2 conditions are longer than cond_length {config.cond_length}" in out
    assert "--set cond_length=N" in out
