"""What the key c of p(k | c) counts (tokens, words or MR slots: model.mask_length_key), and
its smoothing per pass over the training texts, however many epochs training counts."""

import pytest
import torch

from diffkit.domains.text import length
from diffkit.domains.text.domain import TextConfig, build_network, load_data, prepare
from diffkit.domains.text.masked import MaskedLM, masked_loss
from diffkit.errors import ConfigError
from tests.tiny import one_thread  # noqa: F401  (autouse)

PAD, BOS, EOS = 0, 2, 3
V, L, LC = 8, 6, 4
W = length.WORD_START
PIECES = ["<pad>", "<unk>", "<s>", "</s>", W + "name[X]", "ood[", W + "Ja", "pan]"]


def test_each_key_weighs_the_pieces_as_documented():
    assert length.key_weights(PIECES, "tokens").tolist() == [1.0] * 8
    assert length.key_weights(PIECES, "words").tolist() == [0, 0, 0, 0, 1, 0, 1, 0]
    assert length.key_weights(PIECES, "slots").tolist() == [0, 0, 0, 0, 1, 1, 0, 0]
    with pytest.raises(ConfigError, match=r"mask_length_key.*tokens"):
        length.key_weights(PIECES, "slot")
    with pytest.raises(ConfigError, match="mask_length_key"):
        TextConfig(model="masked", mask_length_key="nope")


def net_with(key: str) -> MaskedLM:
    net = build_network(
        TextConfig(model="masked", vocab_size=V, max_length=L, cond_column="mr",
                   cond_length=LC, width=16, depth=1, heads=2)
    )  # fmt: skip
    net.cond_key_weights.copy_(length.key_weights(PIECES, key))
    return net


# Two MRs of one slot each, "name[X] food[Japan]" split differently: 2 and 4 tokens.
SHORT = [4, 5, PAD, PAD]  # name[X] ood[
LONG = [4, 6, 7, 5]  # name[X] Ja pan] ood[
TEXTS = [[BOS, 4, EOS, PAD, PAD, PAD], [BOS, 4, 5, 6, EOS, PAD]]  # k = 1 and k = 3


def batch_of(conds: list[list[int]], texts: list[list[int]]) -> dict:
    ids = torch.tensor(conds)
    return {"ids": torch.tensor(texts), "cond_ids": ids, "cond_pad": ids != PAD}


def test_the_key_is_the_weighted_count_of_real_tokens_capped_and_null_rows_are_minus_one():
    batch = batch_of([SHORT, LONG, [5, 5, 5, 5]], [*TEXTS, TEXTS[0]])
    null = torch.tensor([False, False, True])
    for key, expect in (("tokens", [2, 4, -1]), ("words", [1, 2, -1]), ("slots", [2, 2, -1])):
        c = length.condition_sizes(net_with(key), batch["cond_ids"], batch["cond_pad"], null)
        assert c.tolist() == expect, key
    heavy = net_with("tokens")
    heavy.cond_key_weights.fill_(3.0)  # 12 tokens' worth: at most cond_length
    assert length.condition_sizes(heavy, batch["cond_ids"], batch["cond_pad"]).tolist() == [4] * 3


def test_under_the_slot_key_two_tokenisations_of_one_mr_share_their_length_law():
    by_key = {}
    for key in ("tokens", "slots"):
        net = net_with(key).train()
        batch = batch_of([SHORT, LONG], TEXTS)
        masked_loss(net, batch, generator=torch.Generator().manual_seed(0))
        by_key[key] = length.prior_log_probs(net.eval(), 2, batch).exp()
    tokens, slots = by_key["tokens"], by_key["slots"]
    assert tokens[0, 1] > tokens[0, 3] and tokens[1, 3] > tokens[1, 1]  # each its own text
    assert torch.equal(slots[0], slots[1])  # one law for both: 2 slots' worth
    assert torch.isclose(slots[0, 1], slots[0, 3]) and slots[0, 1] > slots[0, 2]


def test_recount_replaces_the_counts_under_new_weights_as_training_under_them_would():
    batch = batch_of([SHORT, LONG, LONG], [*TEXTS, TEXTS[1]])
    trained = net_with("tokens").train()
    masked_loss(trained, batch, generator=torch.Generator().manual_seed(0))
    fresh = net_with("slots").train()
    masked_loss(fresh, batch, generator=torch.Generator().manual_seed(0))
    length.recount(trained, batch["ids"], batch, length.key_weights(PIECES, "slots"))
    assert torch.equal(trained.cond_length_counts, fresh.cond_length_counts)
    assert torch.equal(trained.length_counts, fresh.length_counts)
    assert trained.cond_length_counts.sum() == 3  # replaced, not added to


def test_the_weights_travel_in_the_state_dict_and_older_checkpoints_count_tokens():
    saved = net_with("slots").state_dict()
    net = net_with("tokens")
    net.load_state_dict(saved)
    assert torch.equal(net.cond_key_weights, length.key_weights(PIECES, "slots"))
    del saved["cond_key_weights"], saved["length_texts"]  # from before either was kept
    net.load_state_dict(saved)
    assert torch.equal(net.cond_key_weights, torch.ones(V)) and net.length_texts == 0


def test_prepare_sets_the_weights_from_the_run_tokenizer_and_leaves_other_models_alone():
    config = TextConfig(model="masked", cond_column="mr", mask_length_key="slots", n_train=200,
                        width=16, depth=1, heads=2)  # fmt: skip
    data = load_data(config, None)  # the built-in grammar, MR-conditional
    net = build_network(data.config)
    assert torch.equal(net.cond_key_weights, torch.ones(data.config.vocab_size))
    prepare(net, data, data.config)
    assert net.length_texts == len(data.train)
    from diffkit.domains.text.generate import tokenizer_of

    tok = tokenizer_of(data.settings)
    slots = [i for i in range(tok.vocab_size) if "[" in tok.piece(i)]
    assert slots and net.cond_key_weights.sum() == sum(tok.piece(i).count("[") for i in slots)
    ar = build_network(TextConfig(**{**vars(data.config), "model": "ar"}))
    assert prepare(ar, data, data.config) is data


def test_cli_training_keeps_the_chosen_key_in_the_checkpoint_and_a_bad_key_is_one_line(
    tmp_path, capsys
):
    from diffkit.checkpoint import load_checkpoint
    from tests.domains.text.test_domain import SETS, run_main

    args = ["train", "--domain", "text", "--max-steps", "2", "--quiet", "--set=model=masked",
            "--set=cond_column=mr", *SETS]  # fmt: skip
    code, _, err = run_main(capsys, *args, "--out", tmp_path / "run", "--set=mask_length_key=slots")
    assert code == 0, err
    found = load_checkpoint(tmp_path / "run")
    weights = found.model["cond_key_weights"]
    assert 0 < weights.sum() < len(weights)  # the pieces holding "[", not every piece
    code, _, err = run_main(capsys, *args, "--out", tmp_path / "bad", "--set=mask_length_key=slot")
    assert code != 0 and "mask_length_key" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()


def test_many_epochs_smooth_p_k_given_c_as_one_pass_once_the_training_size_is_known():
    batch = batch_of([SHORT, LONG, LONG], [*TEXTS, TEXTS[1]])
    rows = {k: batch[k][:2] for k in ("cond_ids", "cond_pad")}
    laws = {}
    for epochs, size in ((1, 3), (50, 3), (50, 0)):  # size 0: a network that does not know it
        net = net_with("tokens").train()
        net.length_texts.fill_(size)
        for _ in range(epochs):
            masked_loss(net, batch, generator=torch.Generator().manual_seed(0))
        assert length.passes(net) == (epochs if size else 1)
        laws[epochs, size] = length.prior_log_probs(net.eval(), 2, rows).exp()
    assert torch.allclose(laws[50, 3], laws[1, 3])  # the weight of STRENGTH texts, per pass
    # c = 2 (SHORT) has its one text at k = 1; p(1) = (1 + 1) / (3 + L), add-one over k = 0..5
    one = (1 + length.STRENGTH * 2 / (3 + L)) / (1 + length.STRENGTH)
    assert torch.isclose(laws[1, 3][0, 1], torch.tensor(one, dtype=torch.float64))
    assert laws[50, 0][0, 1] > 0.5 > laws[1, 3][0, 1]  # raw counts: the prior all but ignored
