"""The masked diffusion LM (``--model masked``): loss, bound, sampling controls, CLI."""

import dataclasses
import itertools
import json
import math

import pytest
import torch

from diffkit import discrete
from diffkit.checkpoint import load_checkpoint
from diffkit.cli import main
from diffkit.domains.text import masked
from diffkit.domains.text.domain import TextConfig, build_network, load_data
from diffkit.domains.text.generate import (
    Template,
    allowed_of,
    free_template,
    infill_template,
    length_template,
    tensor_to_texts,
    tokenizer_of,
)
from diffkit.domains.text.masked import MaskedLM, masked_loss, masked_nll, sample_masked
from diffkit.domains.text.rerank import consensus_of
from diffkit.errors import ConfigError
from diffkit.inference import sample_checkpoint
from tests.domains.text.test_domain import SETS, run_main
from tests.tiny import one_thread  # noqa: F401  (autouse)

# A tiny language: ids PAD 0, UNK 1, BOS 2, EOS 3, "a" 4, "b" 5; rows BOS x1 x2 x3.
V, L = 6, 4
LAW = {(2, 4, 3, 0): 0.5, (2, 4, 5, 3): 0.3, (2, 5, 3, 0): 0.2}


class ExactDenoiser(torch.nn.Module):
    """Returns log q(x_0^i | the unmasked tokens of x_t) of LAW at every position."""

    masked, conditional = True, False

    def __init__(self, schedule):
        super().__init__()
        self.schedule, self.mask_id, self.dummy = schedule, V, torch.nn.Parameter(torch.zeros(1))

    def forward(self, x_t, t=None, **cond):
        rows, inverse = x_t.unique(dim=0, return_inverse=True)
        out = torch.zeros(len(rows), L, V + 1, dtype=torch.float64)
        for b, row in enumerate(rows.tolist()):
            fits = {
                s: p
                for s, p in LAW.items()
                if all(r in (V, c) for r, c in zip(row, s, strict=True))
            }
            for s, p in fits.items():
                out[b, torch.arange(L), torch.tensor(s)] += p / sum(fits.values())
        return out.clamp(min=1e-300).log()[inverse]  # (B, L, V + 1)


def closed_form_nats(x0: tuple, t: float, schedule) -> float:
    """E over masks at time t of MDLM's weighted cross-entropy, by summing all 2^(L-1) masks."""
    keep = schedule.alpha(torch.tensor([t], dtype=torch.float64)).item()
    weight = schedule.weight(torch.tensor([t], dtype=torch.float64)).item()
    total = 0.0
    for masked_at in itertools.product([False, True], repeat=L - 1):
        hidden = (False, *masked_at)  # BOS is never masked
        chance = math.prod((1 - keep) if h else keep for h in masked_at)
        visible = [c if not h else None for c, h in zip(x0, hidden, strict=True)]
        fits = {
            s: p
            for s, p in LAW.items()
            if all(v in (None, c) for v, c in zip(visible, s, strict=True))
        }
        for i in (i for i, h in enumerate(hidden) if h):
            right = sum(p for s, p in fits.items() if s[i] == x0[i])
            total += chance * -math.log(right / sum(fits.values()))
    return weight * total


@pytest.mark.parametrize("x0", list(LAW))
def test_the_loss_of_the_exact_denoiser_is_its_closed_form(x0, monkeypatch):
    schedule, t, n = discrete.get_schedule("loglinear"), 0.6, 4000
    monkeypatch.setattr(
        discrete, "stratified_t", lambda b, g, d: torch.full((b,), t, dtype=torch.float64)
    )
    ids = torch.tensor([x0] * n)
    out = masked_loss(
        ExactDenoiser(schedule), {"ids": ids}, generator=torch.Generator(), per_masked=False
    )
    expected = closed_form_nats(x0, t, schedule)
    nats = out["nats"].double()
    assert abs(nats.mean().item() - expected) < 4 * nats.std().item() / math.sqrt(n) + 1e-9
    assert torch.allclose(out["loss"], out["nats"] / (L - 1))


def test_the_bound_of_the_exact_denoiser_is_the_true_nll():
    """Tight for the exact denoiser: E_t E_mask of the bound is -log p(x0) for every x0."""
    schedule = discrete.get_schedule("loglinear")
    net = ExactDenoiser(schedule)
    for x0, p in LAW.items():
        g, n = torch.Generator().manual_seed(1), 384
        nats = masked_nll(net, torch.tensor([x0] * n), num_t=16, masks_per_t=4, generator=g)
        error = 4 * nats.std().item() / math.sqrt(n) + 0.002  # eps = 1e-3 of the schedule
        assert abs(nats.mean().item() + math.log(p)) < error, (x0, nats.mean(), -math.log(p))


@pytest.fixture(scope="module")
def data():
    return load_data(TextConfig(model="masked", n_train=300, cond_column="mr"), None)


def small_net(config, seed=0):
    torch.manual_seed(seed)
    net = build_network(config.__class__(**{**vars(config), "width": 32, "depth": 1, "heads": 2}))
    with torch.no_grad():  # livelier logits than GPT-2's init, so draws differ between models
        net.embed.weight.normal_()
    return net.eval()


def test_masked_and_ar_models_have_the_same_parameter_count(data):
    from diffkit.domains.text.blocks import count_parameters

    config = data.config
    counts = {m: count_parameters(build_network(TextConfig(**{**vars(config), "model": m})))
              for m in ("masked", "ar")}  # fmt: skip
    assert 0 <= counts["masked"] - counts["ar"] <= 2 * config.width  # the mask row, the null


def test_guidance_0_and_1_are_the_unconditional_and_conditional_samplers(data):
    net, tok = small_net(data.config), tokenizer_of(data.settings)
    tpl = free_template(tok, data.config.max_length, allowed_of(data.settings, tok.vocab_size))
    batch = torch.utils.data.default_collate([data.train[i] for i in range(6)])
    cond = {"cond_ids": batch["cond_ids"], "cond_pad": batch["cond_pad"]}

    def draw(**kw):
        g = torch.Generator().manual_seed(3)
        return sample_masked(net, 6, tpl, sampler="ancestral", steps=8, generator=g, **kw)

    unconditional, conditional = draw(), draw(cond=cond)
    assert not torch.equal(unconditional, conditional)  # the condition matters
    assert torch.equal(draw(cond=cond, guidance=0.0), unconditional)
    assert torch.equal(draw(cond=cond, guidance=1.0), conditional)
    assert not torch.equal(draw(cond=cond, guidance=3.0), conditional)


@pytest.mark.parametrize("sampler", ["ancestral", "cached", "maskgit"])
def test_infilling_keeps_the_known_tokens_and_length_hits_the_length(data, sampler):
    net, tok = small_net(data.config), tokenizer_of(data.settings)
    allowed, length = allowed_of(data.settings, tok.vocab_size), data.config.max_length
    tpl = infill_template(tok, "The ___ is a pub near ___.", length, allowed, span=2)
    g = torch.Generator().manual_seed(0)
    ids = sample_masked(net, 8, tpl, sampler=sampler, steps=6, generator=g)
    assert torch.equal(ids[:, tpl.known], tpl.ids[tpl.known].expand(8, -1))
    for text in tok.decode_batch(ids):
        assert text.startswith("The ") and " is a pub near " in text and text.endswith(".")
    tpl = length_template(tok, 7, length, allowed)
    ids = sample_masked(net, 8, tpl, sampler=sampler, steps=6, generator=g)
    body = ids[:, 1:8]  # BOS, 7 text tokens, EOS, PAD...
    specials = torch.tensor([tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id])
    assert not torch.isin(body, specials).any() and (ids[:, 8] == tok.eos_id).all()
    assert all(len(tok.decode(row)) > 0 for row in ids)


def test_each_position_draws_only_what_its_template_allows(data):
    tok, length = tokenizer_of(data.settings), data.config.max_length
    only = torch.zeros(length, tok.vocab_size, dtype=torch.bool)
    only[:, tok.eos_id] = True
    only[1:4, 300] = True  # positions 1..3: piece 300 or EOS; the rest: EOS only
    known = torch.zeros(length, dtype=torch.bool)
    known[0] = True
    tpl = Template(torch.full((length,), tok.bos_id), known, only)
    for lengths in ("pads", "prior"):  # the prior draws only the lengths 1..3 that fit
        net = small_net(dataclasses.replace(data.config, mask_lengths=lengths))
        ids = sample_masked(net, 16, tpl, steps=5, generator=torch.Generator().manual_seed(1))
        assert (ids[:, 0] == tok.bos_id).all()
        first = (ids == tok.eos_id).int().argmax(1)  # (16,) the first EOS, by position 4
        assert (ids[torch.arange(16), first] == tok.eos_id).all() and (first <= 4).all()
        position = torch.arange(length)[None]
        assert (ids[(position > 0) & (position < first[:, None])] == 300).all()
        after = position > first[:, None]
        tail = tok.eos_id if lengths == "pads" else tok.pad_id  # the prior's frame: PADs
        assert (ids[after] == tail).all()


def test_the_cached_sampler_draws_what_ancestral_draws_with_fewer_calls(data):
    net, tok = small_net(data.config), tokenizer_of(data.settings)
    tpl = free_template(tok, data.config.max_length, allowed_of(data.settings, tok.vocab_size))
    calls = []
    net.register_forward_hook(lambda *a: calls.append(1))
    out = {}
    for name in ("ancestral", "cached"):
        calls.clear()
        g = torch.Generator().manual_seed(5)
        out[name] = (sample_masked(net, 2, tpl, sampler=name, steps=200, generator=g), len(calls))
    assert torch.equal(out["ancestral"][0], out["cached"][0])
    assert out["ancestral"][1] == 200 and out["cached"][1] <= 2 * data.config.max_length + 1


def test_bad_masked_inputs_are_config_errors(data):
    net, tok = small_net(data.config), tokenizer_of(data.settings)
    tpl = free_template(tok, data.config.max_length, allowed_of(data.settings, tok.vocab_size))
    with pytest.raises(ConfigError, match="unknown sampler 'dpmpp_2m' for --model masked"):
        sample_masked(net, 1, tpl, sampler="dpmpp_2m")
    with pytest.raises(ConfigError, match="guidance needs a condition"):
        sample_masked(net, 1, tpl, guidance=2.0)
    with pytest.raises(ConfigError, match="mask_schedule"):
        MaskedLM(10, width=8, depth=1, heads=2, schedule="cosinus")
    assert masked.masked_sampler("ddim") == masked.masked_sampler("ddpm") == "cached"


# --- the command line -------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("masked") / "run"
    args = ["train", "--domain", "text", "--out", out, "--max-steps", "6", "--quiet"]
    try:
        main([str(a) for a in [*args, "--set=model=masked", *SETS]])
    except SystemExit as e:
        assert not e.code
    return out


def test_cli_trains_samples_and_evaluates_the_masked_model(run_dir, tmp_path, capsys):
    found = load_checkpoint(run_dir)
    assert found.step == 6 and found.config["model"]["model"] == "masked"
    out = tmp_path / "s.txt"
    code, _, err = run_main(
        capsys, "sample", "--checkpoint", run_dir, "--n", "4", "--sampler", "maskgit",
        "--steps", "5", "--out", out, "--cond", "name[The Mill], eatType[pub]", "--guidance", "2",
    )  # fmt: skip
    assert code == 0, err
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4 and not any("<pad>" in s or "</s>" in s for s in lines)
    code, _, err = run_main(capsys, "evaluate", "--checkpoint", run_dir, "--out", tmp_path / "m")
    assert code == 0, err
    m = json.loads((tmp_path / "m").read_text())
    for key in ("grammar_acceptance", "bleu", "slot_error", "infill_exact_match", "distinct_2"):
        assert key in m, key
    assert m["bits_per_token"] > m["grammar_bits_per_token"] > 0  # the floor is below
    assert m["bits_per_char"] < m["bits_per_token"]


def test_cli_sampling_options_reach_the_masked_sampler(run_dir):
    tok = tokenizer_of(load_checkpoint(run_dir).config["settings"])

    def draw(**options):
        return tensor_to_texts(sample_checkpoint(run_dir, 4, steps=4, options=options))

    for text in draw(infill="The ___ is a pub near ___.", infill_span=2):
        assert text.startswith("The ") and " is a pub near " in text and text.endswith(".")
    for text in draw(length=5):
        assert 1 <= len(tok.encode(text)) <= 5  # 5 pieces; decoding may merge a piece or two


def test_cli_drafts_keep_the_consensus_of_the_drafts_one_seed_draws(run_dir):
    def draw(n, **options):
        return tensor_to_texts(sample_checkpoint(run_dir, n, steps=4, seed=5, options=options))

    flat = draw(6, cond="name[The Eagle], food[French]")
    assert len(set(flat)) > 1  # the drafts differ, so the choice is a real one
    picked = draw(2, cond="name[The Eagle], food[French]", drafts=3)
    assert picked == consensus_of(flat, 3)
    mr = "name[The Eagle], food[French]"
    reranked = draw(2, cond=mr, drafts=3, slot_rerank=True)
    assert reranked == consensus_of(flat, 3, [mr, mr])


def test_temperature_zero_is_the_argmax_and_reaches_the_masked_sampler(run_dir):
    def draw(seed, **options):
        torch.manual_seed(seed)
        x = sample_checkpoint(run_dir, 6, steps=4, sampler="maskgit", seed=seed, options=options)
        return tensor_to_texts(x)

    assert draw(0, temperature=0.0) == draw(1, temperature=0.0)  # the length's draw too
    argmax = draw(0, temperature=0.0, length=6)  # a fixed length: the tokens' draws alone
    assert argmax == draw(1, temperature=0.0, length=6)  # no draw left to the seed
    assert draw(0, length=6) != draw(1, length=6)  # temperature 1 (the default) does draw
    assert draw(0, temperature=1.0, length=6) == draw(0, length=6) != argmax


@pytest.mark.parametrize(
    "command, args, message",
    [
        ("sample", ["--sampler", "dpmpp_2m"], "unknown sampler 'dpmpp_2m' for --model masked"),
        ("sample", ["--temperature", "-1"], "--temperature"),
        ("sample", ["--sampler", "nope"], "choose one of: ancestral, cached, maskgit"),
        ("evaluate", ["--sampler", "heun"], "unknown sampler 'heun' for --model masked"),
        ("sample", ["--guidance", "2"], "--guidance needs --cond"),
        ("sample", ["--drafts", "0"], "--drafts"),
        ("sample", ["--slot-rerank", "--cond", "name[x]"], "--slot-rerank chooses among"),
        ("sample", ["--slot-rerank", "--drafts", "3"], "give --drafts 2 or more and --cond"),
    ],
)
def test_bad_masked_cli_inputs_are_one_line_errors(
    run_dir, tmp_path, capsys, command, args, message
):
    extra = ["--n", "2", "--out", tmp_path / "s.txt"] if command == "sample" else []
    code, _, err = run_main(capsys, command, "--checkpoint", run_dir, *extra, *args)
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1


def test_an_unknown_mask_schedule_is_a_one_line_train_error(tmp_path, capsys):
    code, _, err = run_main(
        capsys, "train", "--domain", "text", "--out", tmp_path / "r", "--max-steps", "1",
        "--quiet", "--set=n_train=100", "--set=model=masked", "--set=mask_schedule=cosinus",
    )  # fmt: skip
    assert code == 2 and "model.mask_schedule" in err and "loglinear" in err, err
    assert len(err.strip().splitlines()) == 1


def test_evaluate_takes_the_masked_sampler_names(run_dir, tmp_path, capsys):
    out = tmp_path / "m.json"
    args = ["evaluate", "--checkpoint", run_dir, "--out", out, "--sampler", "maskgit"]
    code, _, err = run_main(capsys, *args, "--steps", "4", "--num-samples", "3")
    assert code == 0, err
    assert json.loads(out.read_text())["samples"] == 3


def test_evaluate_drafts_reach_the_mr_to_ref_samples(run_dir, tmp_path, capsys, monkeypatch):
    from diffkit.domains.text import evaluate

    calls = []
    real = evaluate.consensus_of

    def spy(texts, k, conds=None):
        calls.append((k, conds))
        return real(texts, k, conds)

    monkeypatch.setattr(evaluate, "consensus_of", spy)
    out = tmp_path / "m.json"
    args = ["evaluate", "--checkpoint", run_dir, "--out", out, "--sampler", "maskgit"]
    code, _, err = run_main(capsys, *args, "--steps", "4", "--num-samples", "3", "--drafts", "3")
    assert code == 0, err
    assert calls == [(3, None)] and "bleu" in json.loads(out.read_text())
    code, _, err = run_main(
        capsys, *args, "--steps", "4", "--num-samples", "3", "--drafts", "3", "--slot-rerank"
    )
    assert code == 0, err
    k, conds = calls[-1]
    assert k == 3 and conds and all("[" in mr for mr in conds)  # the MRs themselves
    code, _, err = run_main(capsys, *args, "--drafts", "0")
    assert code == 2 and "--drafts" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_few_hundred_steps_on_the_grammar_lower_the_bound_and_raise_acceptance(tmp_path):
    """About 40-80 s on a loaded 2-core CPU (600 steps of a 64-wide, 2-deep model)."""
    from diffkit.config import merge
    from diffkit.domains.text.grammar import Grammar
    from diffkit.inference import load_model
    from diffkit.registry import get_domain
    from diffkit.runner import fit, resolve_config

    domain = get_domain("text")
    sections = {
        "model": {"model": "masked", "width": 64, "depth": 2},
        "train": {"max_steps": 600, "checkpoint_every": 600, "accelerator": "cpu"},
    }
    config = resolve_config(domain, merge(sections))
    data = load_data(config.model, None)
    tok = tokenizer_of(data.settings)
    allowed = allowed_of(data.settings, tok.vocab_size)
    held = torch.stack([data.val[i]["ids"] for i in range(64)])

    def scores(net):
        g = torch.Generator().manual_seed(0)
        nats = masked_nll(net.eval(), held, generator=g)
        tpl = free_template(tok, data.config.max_length, allowed)
        texts = tok.decode_batch(sample_masked(net, 64, tpl, sampler="cached", generator=g))
        return nats.mean().item(), sum(map(Grammar().accepts, texts)) / len(texts)

    torch.manual_seed(config.train.seed)
    before = scores(build_network(data.config))
    after = scores(load_model(fit(domain, config, out=tmp_path / "run", quiet=True))[1])
    floor = sum(-Grammar().log_prob(t) for t in data.val.corpus.texts[:64]) / 64
    assert floor < after[0] < 0.25 * before[0], (floor, before, after)
    assert before[1] == 0 and after[1] >= 0.05, (before, after)
