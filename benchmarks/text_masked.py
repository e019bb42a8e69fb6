"""The masked diffusion LM's row of the text benchmark (``benchmarks/text.py`` calls it).

Same protocol, budget, width and depth as the other rows (``benchmarks/text.py`` trains it
with ``--model masked``); scored with the masked samplers instead of the Gaussian ones:
ancestral and cached unmasking (MDLM) and MaskGIT's confidence-ordered decoding at few steps.
Besides the shared metrics it reports what issue 14 asks of it: its perplexity bound next to
the AR model's perplexity on the same held-out texts, and the wall time of one conditional
text per devset MR (547 on E2E's devset).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from text_inputs import held_out

from diffkit.domains.text import metrics
from diffkit.domains.text.data import encode_corpus, read, split
from diffkit.domains.text.evaluate import ar_nll, conditional_samples, infill_scores, per_unit
from diffkit.domains.text.generate import (
    allowed_of,
    free_template,
    length_template,
    tokenizer_of,
)
from diffkit.domains.text.masked import masked_nll, sample_masked
from diffkit.inference import load_model

SAMPLERS = (("ancestral", 200), ("cached", 200), ("maskgit", 10), ("maskgit", 20))
LABELS = {"ancestral": "ancestral", "cached": "cached", "maskgit": "MaskGIT"}
DEVSET_MRS = 547
TIMED = ("maskgit", 20)  # the 547-MR wall time: few-step decoding, as a user would sample


def choose_guidance(net, val, tok, config, allowed, s: dict) -> float:
    """The guidance scale with the best BLEU on validation MRs (cached sampler, L steps)."""
    mrs, refs = metrics.group_references(val.conds, val.texts)
    mrs, refs = list(mrs)[: s["val_mrs"]], list(refs)[: s["val_mrs"]]
    scores = {}
    for w in s["guidance"]:
        hyps = conditional_samples(
            net, None, mrs, tok, config, allowed, sampler="cached", steps=config.max_length,
            guidance=w, generator=torch.Generator().manual_seed(1),
        )  # fmt: skip
        scores[w] = metrics.corpus_bleu(hyps, refs)
    return max(scores, key=scores.get)


def conditional_wall_time(net, mrs, tok, config, allowed, guidance, g) -> float:
    """Seconds for one conditional text per MR (the TIMED sampler, one batch, guided)."""
    t0 = time.perf_counter()
    conditional_samples(
        net, None, mrs, tok, config, allowed, sampler=TIMED[0], steps=TIMED[1],
        guidance=guidance, generator=g,
    )  # fmt: skip
    return time.perf_counter() - t0


def conditional_likelihood(net, run: Path, test, tok, config, s: dict, g) -> dict:
    """Bits per token given the MR: the masked model's bound beside the MR-prefixed AR model's
    exact NLL (the ``ar`` run next to ``run``), on the same held-out pairs and tokens.

    Both were trained on the same pairs with the same tokenizer and budget, and both are
    scored as they were trained (conditionally), unlike the unconditional comparison with
    the teacher, which saw only texts.
    """
    _, ar, _, found = load_model(run.parent / "ar")
    if tokenizer_of(found.config["settings"]) != tok:
        return {}
    texts, mrs = list(test.texts[: s["nll_texts"]]), list(test.conds[: s["nll_texts"]])
    enc, conds = (
        encode_corpus(tok, texts, config.max_length),
        encode_corpus(tok, mrs, config.cond_length),
    )
    cond = {"cond_ids": conds.ids, "cond_pad": conds.pad}
    tokens = (enc.pad.sum(1) - 1).tolist()
    masked = per_unit(masked_nll(net, enc.ids, cond=cond, generator=g), tokens)
    exact = per_unit(ar_nll(ar, enc.ids, enc.pad, cond=cond), tokens)
    return {
        "conditional_bits_per_token": masked,
        "ar_conditional_bits_per_token": exact,
        "conditional_perplexity_ratio": 2 ** (masked - exact),
    }


def score_masked(run: dict, test, teacher: Path, s: dict, sample_scores) -> dict:
    """Every metric of the trained masked model on the test corpus, per masked sampler.

    ``sample_scores`` is ``benchmarks/text.py``'s scorer of one sampler's outputs, so the
    columns are the other rows' columns.
    """
    domain, net, _, found = load_model(run["run"])
    config, settings = domain.config(**found.config["model"]), found.config["settings"]
    tok = tokenizer_of(settings)
    allowed = allowed_of(settings, config.vocab_size)
    h = held_out(test, tok, config.max_length, s)
    enc, tokens, chars, mrs, refs = h.encoded, h.tokens, h.chars, h.mrs, h.refs
    g = torch.Generator().manual_seed(0)
    train_corpus = read(run["run"].parent / "train.csv", "ref", "mr")
    row = {
        "params": sum(p.numel() for p in net.parameters()),
        "steps": run["steps"],
        "train_s": round(run["train_s"], 1),
    }
    nats = masked_nll(net, enc.ids, generator=g)  # unconditional (null MR), as the others
    row |= {"bits_per_token": per_unit(nats, tokens), "bits_per_char": per_unit(nats, chars)}
    row["perplexity_bound"] = math.exp(nats.sum().item() / sum(tokens))
    row["chars_per_token"] = sum(chars) / sum(tokens)
    row |= conditional_likelihood(net, run["run"], test, tok, config, s, g)
    val = split(train_corpus, config.val_fraction, config.data_seed)[1]
    row["guidance"] = choose_guidance(net, val, tok, config, allowed, s)
    free = free_template(tok, config.max_length, allowed)
    row["samplers"] = {}
    for sampler, steps in s.get("masked_samplers", SAMPLERS):
        t0 = time.perf_counter()
        ids = sample_masked(net, s["samples"], free, sampler=sampler, steps=steps, generator=g)
        uncond = tok.decode_batch(ids.cpu())
        hyps = conditional_samples(
            net, None, mrs, tok, config, allowed, sampler=sampler, steps=steps,
            guidance=row["guidance"], generator=g,
        )  # fmt: skip
        row["samplers"][f"{LABELS[sampler]} {steps}"] = sample_scores(
            uncond, hyps, mrs, refs, teacher, t0, train_corpus.texts
        )
    every_mr = list(dict.fromkeys([*train_corpus.conds, *test.conds]))[:DEVSET_MRS]
    row["conditional_mrs"] = len(every_mr)
    row["conditional_s"] = conditional_wall_time(
        net, every_mr, tok, config, allowed, row["guidance"], g
    )
    tpl = length_template(tok, s["length"], config.max_length, allowed)
    texts = tok.decode_batch(sample_masked(net, 16, tpl, steps=config.max_length, generator=g))
    row["length_hit"] = sum(len(tok.encode(t)) == s["length"] for t in texts) / len(texts)
    row |= infill_scores(
        net, None, list(test.texts[: s["mrs"]]), tok, config, allowed, sampler="cached",
        steps=config.max_length, generator=g,
    )  # fmt: skip
    return row


def targets(p: dict) -> dict:
    """Issue 14's targets for the masked row of one protocol's results ``p``."""
    m, ar = p["models"]["masked"], p["models"]["ar"]
    ar_scores = next(iter(ar["samplers"].values()))
    ancestral = next(v for k, v in m["samplers"].items() if k.startswith("ancestral"))
    # the AR row's likelihood is the teacher's, on its own tokenizer: compare per character,
    # then express the ratio per token of the masked model's tokenizer
    ratio = 2 ** ((m["bits_per_char"] - ar["bits_per_char"]) * m["chars_per_token"])
    given_mr = m.get("conditional_perplexity_ratio", math.inf)
    return {
        "perplexity_ratio_to_ar": ratio,
        "perplexity_within_1.3x_ar": ratio <= 1.3,
        "conditional_perplexity_ratio_to_ar": given_mr,
        "conditional_perplexity_within_1.3x_ar": given_mr <= 1.3,
        "lm_score_within_1.5x_teacher": ancestral["lm_score"] <= 1.5 * p["teacher_ppl_human"],
        "bleu_95pct_of_ar": ancestral["bleu"] >= 0.95 * ar_scores["bleu"],
        "conditional_mrs_under_60_s": m["conditional_s"] < 60,
    }


def markdown(p: dict) -> str:
    """One line under the protocol's table: the masked row's own figures."""
    m = p["models"]["masked"]
    t = targets(p)
    return (
        f"\nmasked: perplexity bound {m['perplexity_bound']:.2f} per token (MDLM's bound, 16 "
        "Gauss-Legendre times x 2 masks, pad positions paid for, unconditional), "
        f"{t['perplexity_ratio_to_ar']:.2f}x the AR teacher's (compared per character); given "
        f"the MR {m.get('conditional_bits_per_token', math.nan):.2f} bits/token against the "
        f"MR-prefixed AR model's {m.get('ar_conditional_bits_per_token', math.nan):.2f} on the "
        f"same tokens ({t['conditional_perplexity_ratio_to_ar']:.2f}x in perplexity); "
        f"guidance {m['guidance']} (chosen on validation MRs); {m['conditional_mrs']} "
        f"conditional texts in {m['conditional_s']:.1f} s (MaskGIT {TIMED[1]}, that guidance); "
        f"`--length` hit {100 * m['length_hit']:.0f}%; infilling a middle span: exact match "
        f"{m['infill_exact_match']:.2f}, BLEU {m['infill_bleu']:.1f}."
    )
