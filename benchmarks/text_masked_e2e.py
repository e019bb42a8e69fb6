"""E2E mr->ref with a long budget: the masked LM against the AR model when data, not steps, run out.

    OMP_NUM_THREADS=1 python benchmarks/text_masked_e2e.py --train ar &      # one core each
    OMP_NUM_THREADS=1 python benchmarks/text_masked_e2e.py --train masked &
    OMP_NUM_THREADS=1 python benchmarks/text_masked_e2e.py --score ar &      # optional: each
    OMP_NUM_THREADS=1 python benchmarks/text_masked_e2e.py --score masked &  # model's part apart
    OMP_NUM_THREADS=1 python benchmarks/text_masked_e2e.py --validate masked &  # optional helper
    OMP_NUM_THREADS=1 python benchmarks/text_masked_e2e.py                   # choose, score, write
    OMP_NUM_THREADS=1 python benchmarks/text_masked_e2e.py --smoke           # plumbing, < 2 min

E2E's devset (3,835 pairs after the split) is small: the MR-prefixed AR model's validation
NLL stops falling within a couple of thousand steps, while the masked LM (MDLM, p(k | c),
per-masked weighting) keeps improving long after (the short studies, 600 steps, put it 9x
behind in perplexity). So both are trained for the same, longer budget by one plain loop
(``text_masked_gap.train``: AdamW, warm-up, cosine, batch 64, same width and depth, one
thread each), and every choice is made on the validation split that ``load_data`` holds out
by MR, never on the test set:

- the checkpoint: the one, of a check every ``CHECK_EVERY`` steps, with the fewest
  validation bits per text (early stopping, for both models: training stops after
  ``PATIENCE`` checks without a better one, and each best is cached as it comes);
- the decoding: AR ancestral sampling at each temperature of ``AR_DECODING`` (0: greedy),
  the masked model's MaskGIT at 20 and L steps, cached ancestral unmasking, each at the
  temperatures and guidance scales of ``MASKED_DECODING`` (a temperature tempers the
  masked LM's length as well as its tokens), and for both models the consensus of 8 or 16
  drafts (:func:`diffkit.domains.text.rerank.consensus_pick`, minimum Bayes risk under
  BLEU), also among only the drafts that leave out the fewest of the MR's slot values
  (``SLOT_RERANKED``); the best validation BLEU wins;
- the decoding within the issue's time budget (one text for each of the devset's 547 MRs in
  under ``DEVSET_BUDGET_S``): the best validation BLEU among the decodings whose validation
  time, scaled to 547 texts, fits and whose time on those 547 MRs then does (one that runs
  over gives way to the next: :func:`within_budget`); scored on the test set.

Then, once, on ``testset_w_refs.csv`` (the published direction: names, foods and eat types
partly unseen in the devset; ``--delex`` delexicalises ``name`` and ``near``, as the issue
allows and most published E2E systems do: :mod:`diffkit.domains.text.delex`): bits per
token given the MR (the masked model's bound, the AR model's exact NLL), corpus BLEU
against all references, ROUGE-L and slot error of one text per test MR, and each model's
conditional lm-score (the AR model's perplexity of those texts given their MRs, next to its
perplexity on the human references). Writes
``benchmarks/results/text-masked-e2e[-delex].{json,md,png}`` and its section of RESULTS.md
(``--steps N`` other than the preset's 8,000 adds ``-N-steps`` to the name); ``--train``
caches one model's best checkpoint and curve under ``--work``; ``--validate M`` beside
``--score M`` takes on M's validation rows from the last decoding option back (and the
prior ablation's), sharing them through files (:mod:`shared_rows`) so two cores score one
model; ``--cond-length N`` (``-cond-N``
in the name) gives the models room for MRs longer than the devset's longest, as 187 of the
630 delexicalised test MRs are; ``--length-key slots`` (``-key-slots``) keys the masked LM's
length prior by the MR's slot count instead of its token count, the key that held up best on
MRs with a held-out food value (``text_length_key.py``). The masked network is also scored
under the other length priors (:func:`prior_variants`: the token-count key, and the raw
counts of every training pass the prior had before it smoothed per pass), the network
unchanged, to read each prior's effect apart from training. ``--protocol a`` (in
distribution, ``-in-dist`` in the name) holds out ``HELD_FRACTION`` of the devset's MRs
before anything else, trains and chooses on the rest as above and scores on those.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

import torch
from results_md import update_section
from shared_rows import rows_of, wait_for_rows
from text_masked_gap import Variant, scores, stalled, train

from diffkit.domains.text import metrics
from diffkit.domains.text.data import Corpus, encode_corpus, read, split_rows
from diffkit.domains.text.delex import delexicalise, delexicalise_pair, relexicalise
from diffkit.domains.text.domain import TextConfig, build_network, load_data
from diffkit.domains.text.evaluate import conditional_samples, per_unit
from diffkit.domains.text.generate import allowed_of, tokenizer_of
from diffkit.domains.text.length import LENGTH_KEYS, key_weights, recount

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parent.parent / "shared" / "data" / "e2e"
OUT = ROOT / "results"
MODELS = ("ar", "masked")
LR = 4e-3  # the rate the 600-step E2E study chose on validation for both (text-masked-gap-e2e)
CHECK_EVERY = 1000  # steps between validation checkpoints
HELD_FRACTION, HELD_SEED = 0.1, 1  # protocol a: devset MRs held out as its test set
PATIENCE = 4  # checks in a row without a better validation bound before training stops
DELEX_NOTE = (
    "name and near delexicalised: their values are placeholders in MRs and texts, put back "
    "into the outputs before scoring against the original references"
)
SETTINGS = {
    "full": {"steps": 8000, "width": 64, "depth": 2, "batch": 64, "val_texts": 256,
             "val_t": 16, "val_mrs": 10_000, "test_texts": 630, "test_mrs": 10_000},
    "smoke": {"steps": 40, "width": 32, "depth": 1, "batch": 16, "val_texts": 16,
              "val_t": 4, "val_mrs": 6, "test_texts": 16, "test_mrs": 6},
}  # fmt: skip
DRAFTS = tuple({"temperature": t, "drafts": k} for t in (1.0, 0.7) for k in (8, 16))
# the consensus of 16 among the drafts that leave out the fewest MR slot values
SLOT_RERANKED = tuple({"temperature": t, "drafts": 16, "slots": True} for t in (1.0, 0.7))
AR_DECODING = ({"temperature": 1.0}, {"temperature": 0.7}, {"temperature": 0.3},
               {"temperature": 0.0}, *DRAFTS, *SLOT_RERANKED)  # fmt: skip
MASKED_DECODING = (
    *(
        {"sampler": sampler, "steps": steps, "temperature": temp, "guidance": w}
        for sampler, steps in (("maskgit", 20), ("maskgit", None), ("cached", None))
        for temp in (1.0, 0.7, 0.3, 0.0)
        for w in (1.0, 1.5)
        if not (sampler == "cached" and temp == 0.0)  # cached at argmax freezes its first guess
    ),
    *({"sampler": "maskgit", "steps": 20, "guidance": 1.0, **d} for d in DRAFTS),
    *(  # guidance 1.5 lowered every single draft's slot error: its drafts too
        {"sampler": "maskgit", "steps": 20, "guidance": 1.5, **d}
        for d in (*DRAFTS, *SLOT_RERANKED)
        if d["drafts"] == 16
    ),
    {"sampler": "maskgit", "steps": 20, "guidance": 1.0, **SLOT_RERANKED[0]},
)
DEVSET_BUDGET_S = 60.0  # issue 14: one text per devset MR (547) in under a minute
LENGTH_BUFFERS = ("length_counts", "cond_length_counts", "cond_key_weights", "length_texts")


def corpora(protocol: str, delex: bool, work: Path) -> tuple[Path, Corpus]:
    """The file ``load_data`` splits 80/20 into training and validation, and the test pairs
    as published: protocol ``b`` trains on the devset and tests on ``testset_w_refs.csv``;
    ``a`` first holds out ``HELD_FRACTION`` of the devset's MRs as its test set. With
    ``delex`` the training file has ``name`` and ``near`` delexicalised."""
    dev = read(DATA / "devset.csv", "ref", "mr")
    seen = delexicalise(dev) if delex else dev  # what the models read
    if protocol == "b":
        train, test = seen, read(DATA / "testset_w_refs.csv", "ref", "mr")
    else:  # held out by the MR the models read, so no test MR is a training one
        rows, held = split_rows(seen, HELD_FRACTION, seed=HELD_SEED)
        train, test = seen.subset(rows), dev.subset(held)
    if protocol == "b" and not delex:
        return DATA / "devset.csv", test
    work.mkdir(parents=True, exist_ok=True)
    path = work / (
        "devset" + ("-delex" if delex else "") + ("-rest" if protocol == "a" else "") + ".csv"
    )
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # the two --train runs race here
    with tmp.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["mr", "ref"])
        out.writerows(zip(train.conds, train.texts, strict=True))
    tmp.replace(path)  # atomic: a reader sees a whole file, never one being written
    return path, test


def base_config(s: dict) -> TextConfig:
    return TextConfig(text_column="ref", cond_column="mr", val_fraction=0.2, dropout=0.1,
                      width=s["width"], depth=s["depth"], nll_steps=0,
                      cond_length=s.get("cond_length"),
                      mask_length_key=s.get("length_key", "tokens"))  # fmt: skip


def validation(data, s: dict):
    """The validation texts scored at each checkpoint: (ids, pad, cond)."""
    v, n = data.val, s["val_texts"]
    return v.texts.ids[:n], v.texts.pad[:n], {"cond_ids": v.conds.ids[:n],
                                              "cond_pad": v.conds.pad[:n]}  # fmt: skip


def checks(s: dict) -> int:
    """How many validation checkpoints a run of ``s["steps"]`` gets: one per ``CHECK_EVERY``."""
    return max(1, s["steps"] // CHECK_EVERY)


def train_one(model: str, data, s: dict, work: Path) -> None:
    """Train ``model`` for the budget, caching its best validation checkpoint, its curve and
    the state to go on from at every check (an interrupted run keeps its best so far, and
    the same command goes on from its last check); stops after ``PATIENCE`` checks without
    a better one."""
    settings = {**s, "checks": checks(s), "keep_best": True, "patience": PATIENCE}
    lengths = "prior" if model == "masked" else "auto"
    variant = Variant(model, model=model, lengths=lengths, lr=LR, per_masked=model == "masked")
    work.mkdir(parents=True, exist_ok=True)

    def save(obj, name: str) -> None:  # atomic: an interrupted save leaves the last one
        torch.save(obj, work / f"{name}.tmp")
        (work / f"{name}.tmp").replace(work / name)

    def cache(net, curve: list[dict], is_best: bool, snapshot) -> None:
        if is_best:
            save(net.state_dict(), f"{model}.pt")
        save(snapshot(), f"{model}.resume.pt")
        info = {"curve": curve, "params": sum(p.numel() for p in net.parameters()),
                "best_step": min(curve, key=lambda c: c["bits_per_text"])["step"]}  # fmt: skip
        (work / f"{model}.json").write_text(json.dumps(info, indent=1) + "\n")

    resume = work / f"{model}.resume.pt"
    resume = torch.load(resume) if resume.exists() else None
    if resume is not None:
        print(f"{model}: going on from the check at step {resume['curve'][-1]['step']}")
    train(variant, data.config, data, validation(data, s), settings, on_check=cache,
          resume=resume)  # fmt: skip


def load_trained(model: str, data, work: Path):
    config = dataclasses.replace(data.config, model=model, mask_lengths="prior")
    net = build_network(config)
    net.load_state_dict(torch.load(work / f"{model}.pt"))
    if hasattr(net, "length_texts") and not net.length_texts:  # trained before it was kept
        net.length_texts.fill_(len(data.train))  # what prepare records: p(k | c) per pass
    return net.eval(), config, json.loads((work / f"{model}.json").read_text())


def decode(net, config, tok, allowed, mrs: list[str], option: dict, seed: int) -> list[str]:
    """One text per MR under one decoding option (the AR model reads only its temperature)."""
    return conditional_samples(
        net, None, mrs, tok, config, allowed, sampler=option.get("sampler"),
        steps=option.get("steps"), guidance=option.get("guidance", 1.0),
        temperature=option["temperature"], drafts=option.get("drafts", 1),
        slot_rerank=option.get("slots", False), generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip


def scored(hyps: list[str], mrs: list[str], refs) -> dict:
    return {"bleu": metrics.corpus_bleu(hyps, refs), "rouge_l": metrics.rouge_l(hyps, refs),
            "slot_error": metrics.slot_error(mrs, hyps)}  # fmt: skip


def validation_mrs(val: Corpus, s: dict) -> tuple[list[str], list]:
    """The validation MRs scored for every choice, and their references."""
    mrs, refs = metrics.group_references(val.conds, val.texts)
    return list(mrs)[: s["val_mrs"]], list(refs)[: s["val_mrs"]]


def on_validation(net, config, tok, allowed, val, s: dict, option: dict) -> dict:
    """The validation row of one decoding option: its scores and wall time."""
    mrs, refs = validation_mrs(val, s)
    t0 = time.perf_counter()
    hyps = decode(net, config, tok, allowed, mrs, option, seed=1)
    return {"option": option, **scored(hyps, mrs, refs), "wall_s": time.perf_counter() - t0,
            "mrs": len(mrs)}  # fmt: skip


def best_option(rows: list[dict]) -> dict:
    return max(rows, key=lambda r: r["bleu"])["option"]


def choose_decoding(net, config, tok, allowed, val, s: dict, share=None, helper=False):
    """The decoding option with the best BLEU on the validation MRs, and every option's row.
    ``share`` (folder, checkpoint) keeps each row for a ``--validate`` helper beside this
    process (:func:`shared_rows.rows_of`); as the ``helper``, returns (None, its rows)."""
    options = AR_DECODING if config.model == "ar" else MASKED_DECODING

    def compute(key: dict) -> dict:
        row = on_validation(net, config, tok, allowed, val, s, key["option"])
        print(config.model, row, flush=True)
        return row

    folder, since = share or (None, None)
    rows = rows_of(folder, [{"option": o} for o in options], compute, since, helper=helper)
    return (None if helper else best_option(rows)), rows


def shared(model: str, work: Path) -> tuple[Path, Path]:
    """Where ``model``'s validation rows are shared between processes, and what they follow."""
    return work / f"{model}.rows", work / f"{model}.pt"


def prior_variants(key: str) -> list[tuple[str, bool]]:
    """The length priors the ablation scores beside the run's own (``key``, per pass): the
    token-count key and the raw counts of every pass (the prior as it was before
    :func:`diffkit.domains.text.length.passes`), each as (key, raw)."""
    return [(k, raw) for k in dict.fromkeys((key, "tokens")) for raw in (False, True)][1:]


def prior_ablation(
    net, config, tok, allowed, data, s: dict, test_args, chosen, fast, share=None, helper=False
) -> dict:
    """The masked model under each of :func:`prior_variants` (its counts made again from the
    training texts under that key, to the same total, the network unchanged): the chosen
    decoding on the validation MRs and the within-budget one on the test MRs, to read beside
    the run's own prior. ``test_args`` are ``on_test``'s (mrs, refs, delex). With ``share``
    the validation rows are shared with a ``helper``, which scores only those, from the last
    variant back (:func:`shared_rows.rows_of`)."""
    kept = {k: getattr(net, k).clone() for k in LENGTH_BUFFERS}
    pieces = [tok.piece(i) for i in range(tok.vocab_size)]
    train = {"cond_ids": data.train.conds.ids, "cond_pad": data.train.conds.pad}
    folder, since = share or (None, None)
    variants = prior_variants(config.mask_length_key)
    out = {}
    for key, raw in reversed(variants) if helper else variants:
        label = prior_label(key, raw)
        recount(net, data.train.texts.ids, train, key_weights(pieces, key))
        factor = kept["length_counts"].sum() / net.length_counts.sum()
        net.length_counts.mul_(factor)
        net.cond_length_counts.mul_(factor)
        net.length_texts.fill_(0 if raw else len(data.train))
        row = rows_of(
            folder, [{"prior": label, "option": chosen}],
            lambda k: on_validation(net, config, tok, allowed, data.val.corpus, s, k["option"]),
            since, helper=helper,
        )[0]  # fmt: skip
        if helper:
            if row is None:  # the process beside this one has come this far
                break
            continue
        mrs, refs, delex = test_args
        out[label] = {
            "val": row,
            "test_within_budget": on_test(net, config, tok, allowed, mrs, refs, fast, delex)[0],
        }
        print("masked", key, "raw" if raw else "per pass", out[label], flush=True)
    for k, value in kept.items():
        getattr(net, k).copy_(value)
    return out


def validate(model: str, data, s: dict, work: Path) -> None:
    """``--validate``: the helper beside ``--score model``. It scores the validation rows from
    the last decoding option back until it meets the scorer's, then (masked) waits for every
    row, and scores the prior ablation's validation rows from the last variant back."""
    tok = tokenizer_of(data.settings)
    allowed = allowed_of(data.settings, data.config.vocab_size)
    net, config, _ = load_trained(model, data, work)
    share = shared(model, work)
    choose_decoding(net, config, tok, allowed, data.val.corpus, s, share, helper=True)
    if model != "masked":
        return
    rows = wait_for_rows(share[0], [{"option": o} for o in MASKED_DECODING], share[1])
    prior_ablation(net, config, tok, allowed, data, s, None, best_option(rows), None, share,
                   helper=True)  # fmt: skip


def prior_label(key: str, raw: bool) -> str:
    return f"keyed by {key}, " + ("raw counts of every pass" if raw else "counts per pass")


def within_budget(rows: list[dict], n_mrs: int, budget_s: float, time_of) -> tuple[dict, list]:
    """The best validation BLEU among the options whose validation time, scaled to ``n_mrs``
    texts, is within ``budget_s``, timed before it is chosen: ``time_of(option)`` is its
    seconds for the ``n_mrs`` texts, and an option over the budget gives way to the next best
    (the scaled times of the rest stretched by as much as that one's missed: the devset's MRs
    are not the validation ones, and the machine's load varies); the fastest option when
    none fits. Returns the pick's try, {"decoding", "devset_wall_s"}, and every try."""

    def projected(row: dict) -> float:
        return row["wall_s"] * n_mrs / row["mrs"]

    stretch, tries = 1.0, []
    for row in sorted(rows, key=lambda r: -r["bleu"]):
        if projected(row) * stretch > budget_s:
            continue
        tries.append({"decoding": row["option"], "devset_wall_s": time_of(row["option"])})
        if tries[-1]["devset_wall_s"] < budget_s:
            return tries[-1], tries
        stretch = max(stretch, tries[-1]["devset_wall_s"] / projected(row))
    fastest = min(rows, key=projected)["option"]
    if not any(t["decoding"] == fastest for t in tries):
        tries.append({"decoding": fastest, "devset_wall_s": time_of(fastest)})
    return next(t for t in tries if t["decoding"] == fastest), tries


def model_mrs(mrs: list[str], delex: bool) -> list[str]:
    """The MRs as the models read them."""
    return [delexicalise_pair(m, "")[0] for m in mrs] if delex else mrs


def devset_mrs() -> list[str]:
    """The devset's distinct MRs (547)."""
    corpus = read(DATA / "devset.csv", "ref", "mr")
    return list(metrics.group_references(corpus.conds, corpus.texts)[0])


def bits_per_token(net, config, tok, texts, mrs) -> float:
    """Bits per token given the MR (after BOS, EOS included): the bound or the exact NLL."""
    enc = encode_corpus(tok, texts, config.max_length)
    conds = encode_corpus(tok, mrs, config.cond_length)
    cond = {"cond_ids": conds.ids, "cond_pad": conds.pad}
    nats = scores(net, config.model, enc.ids, enc.pad, num_t=16, masks=2, seed=7, cond=cond)
    return per_unit(nats.double(), (enc.pad.sum(1) - 1).tolist())


def on_test(net, config, tok, allowed, mrs, refs, option: dict, delex: bool):
    """Scores of one text per test MR under ``option``, the first three (MR, text), and the
    texts as the model wrote them (delexicalised with ``delex``)."""
    t0 = time.perf_counter()
    written = decode(net, config, tok, allowed, model_mrs(mrs, delex), option, seed=2)
    hyps = relexicalise(written, mrs) if delex else written
    examples = [{"mr": m, "text": h} for m, h in zip(mrs[:3], hyps[:3], strict=True)]
    return {**scored(hyps, mrs, refs), "wall_s": time.perf_counter() - t0}, examples, written


def score(data, s: dict, work: Path, delex: bool, test: Corpus, only: str | None = None):
    """Every model's choices on validation and its scores, once, on the ``test`` pairs, and
    the seconds scoring took;
    with ``delex`` the models see delexicalised MRs and texts and their outputs,
    relexicalised, are scored against the original references. Each model's part is cached
    as ``{model}.scored.json`` and used again while it is newer than the model's checkpoint;
    ``only`` scores that one model, caches its part and stops (the two can run side by side)."""
    tok = tokenizer_of(data.settings)
    mrs, refs = metrics.group_references(test.conds, test.texts)
    mrs, refs = list(mrs)[: s["test_mrs"]], list(refs)[: s["test_mrs"]]
    seen = delexicalise(test) if delex else test  # what the models read
    texts = list(seen.texts[: s["test_texts"]]), list(seen.conds[: s["test_texts"]])
    out, written, spent = {}, {}, 0.0
    for model in [only] if only else MODELS:
        cache = work / f"{model}.scored.json"
        if only or not cache.exists() or is_older(cache, work / f"{model}.pt"):
            t0 = time.perf_counter()
            result, hyps = score_model(model, data, s, work, delex, (mrs, refs), texts)
            part = {"result": result, "written": hyps, "score_s": time.perf_counter() - t0}
            tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(part) + "\n")
            tmp.replace(cache)
        part = json.loads(cache.read_text())
        out[model], written[model] = part["result"], part["written"]
        spent += part["score_s"]
    if only:
        return None
    t0 = time.perf_counter()
    teacher, config, _ = load_trained("ar", data, work)
    for model in MODELS:  # lm-score: the AR model's perplexity of the texts given their MRs
        bits = bits_per_token(teacher, config, tok, written[model], model_mrs(mrs, delex))
        out[model]["test"]["lm_score"] = 2**bits
    return out, len(mrs), len(texts[0]), spent + time.perf_counter() - t0


def is_older(path: Path, than: Path) -> bool:
    return path.stat().st_mtime < than.stat().st_mtime


def score_model(model: str, data, s: dict, work: Path, delex: bool, test, texts):
    """One model's part of :func:`score`: its choices, its test scores and the test texts as
    it wrote them; ``test`` is the (MRs, references) scored, ``texts`` the (texts, MRs) whose
    bits are."""
    tok = tokenizer_of(data.settings)
    allowed = allowed_of(data.settings, data.config.vocab_size)
    (mrs, refs), dev = test, model_mrs(devset_mrs()[: s["test_mrs"]], delex)
    net, config, info = load_trained(model, data, work)
    share = shared(model, work)
    option, tried = choose_decoding(net, config, tok, allowed, data.val.corpus, s, share)
    scores, examples, written = on_test(net, config, tok, allowed, mrs, refs, option, delex)

    def devset_s(fast: dict) -> float:
        t0 = time.perf_counter()
        decode(net, config, tok, allowed, dev, fast, seed=3)
        return time.perf_counter() - t0

    pick, timed = within_budget(tried, len(dev), DEVSET_BUDGET_S, devset_s)
    fast = pick["decoding"]
    fast_test = scores if fast == option else on_test(
        net, config, tok, allowed, mrs, refs, fast, delex)[0]  # fmt: skip
    budget = {**pick, "devset_mrs": len(dev), "test": fast_test, "timed": timed}
    bits = bits_per_token(net, config, tok, *texts)
    out = {**info, "decoding": option, "val_decoding": tried,
           "test": {**scores, "bits_per_token": bits}, "examples": examples,
           "within_budget": budget}  # fmt: skip
    if config.model == "masked":
        out["prior_ablation"] = prior_ablation(
            net, config, tok, allowed, data, s, (mrs, refs, delex), option, fast, share
        )
    print(model, out["test"], out["within_budget"], flush=True)
    return out, written


def targets(r: dict) -> dict:
    """Issue 14's conditional targets on this protocol's test set."""
    ar, m, fast = r["ar"]["test"], r["masked"]["test"], r["masked"]["within_budget"]
    ratio = 2 ** (m["bits_per_token"] - ar["bits_per_token"])
    return {"bleu_ratio_to_ar": m["bleu"] / ar["bleu"],
            "bleu_95pct_of_ar": m["bleu"] >= 0.95 * ar["bleu"],
            "conditional_perplexity_ratio_to_ar": ratio,
            "conditional_perplexity_within_1.3x_ar": ratio <= 1.3,
            "masked_devset_texts_s": fast["devset_wall_s"],
            "masked_devset_texts_under_60s": fast["devset_wall_s"] < DEVSET_BUDGET_S,
            "bleu_ratio_to_ar_within_60s": fast["test"]["bleu"] / ar["bleu"],
            **lm_score_targets(ar, m)}  # fmt: skip


def lm_score_targets(ar: dict, m: dict) -> dict:
    """The masked model's lm-score against the teacher's perplexity on the human texts
    (issue 14: at most 1.5x); nothing for a run scored before lm-score was."""
    if "lm_score" not in m:
        return {}
    ratio = m["lm_score"] / 2 ** ar["bits_per_token"]
    return {"lm_score_ratio_to_human": ratio, "lm_score_within_1.5x_human": ratio <= 1.5}


def label(option: dict) -> str:
    drafts = f", consensus of {option['drafts']}" if option.get("drafts", 1) > 1 else ""
    drafts += ", fewest slots missing first" if option.get("slots") else ""
    if "sampler" not in option:
        t = option["temperature"]
        return ("greedy" if t == 0 else f"ancestral, temperature {t:g}") + drafts
    steps = "L" if option["steps"] is None else option["steps"]
    temp = "argmax" if option["temperature"] == 0 else f"temperature {option['temperature']:g}"
    return f"{option['sampler']} {steps}, {temp}, guidance {option['guidance']:g}{drafts}"


def markdown(payload: dict, stem: str = "text-masked-e2e", figures: str = "") -> str:
    """The run's report; ``figures`` is the PNG's folder relative to where the text lives."""
    r, s = payload["models"], payload["settings"]
    t = targets(r)
    lines = [
        "### E2E mr->ref at a long budget: masked LM against AR (issue 14), "
        + ("in distribution, " if payload.get("protocol") == "a" else "")
        + (
            "name and near delexicalised" if DELEX_NOTE in payload["setup"] else "names as they are"
        ),
        "",
        f"{payload['setup']}",
        "",
        "| model | params | best step (val) | decoding (val BLEU) | test bits/token | "
        "test BLEU | ROUGE-L | slot error | sampling s |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for name, m in r.items():
        best_val = max(row["bleu"] for row in m["val_decoding"])
        x = m["test"]
        lines.append(
            f"| {name} | {m['params']} | {m['best_step']} of {s['steps']} | "
            f"{label(m['decoding'])} ({best_val:.1f}) | {x['bits_per_token']:.3f} | "
            f"{x['bleu']:.1f} | {x['rouge_l']:.1f} | {x['slot_error']:.3f} | {x['wall_s']:.1f} |"
        )
    lines += [
        "",
        f"Masked BLEU is {100 * t['bleu_ratio_to_ar']:.0f}% of AR's (target 95%); its bound "
        f"given the MR is {t['conditional_perplexity_ratio_to_ar']:.2f}x AR's perplexity "
        "(target 1.3x).",
        *lm_score_lines(r),
        *prior_lines(r, s.get("length_key", "tokens")),
        "",
        f"Within {DEVSET_BUDGET_S:.0f} s for the {r['masked']['within_budget']['devset_mrs']} "
        "devset MRs (the best validation BLEU among the decodings whose validation time, "
        "scaled to that many texts, fits" + timed_note(r["masked"]["within_budget"]),
        *overrun_lines(r),
        "",
        "| model | decoding | devset texts, s | test BLEU | % of AR's |",
        "|---|---|---:|---:|---:|",
    ]
    for name, m in r.items():
        b = m["within_budget"]
        lines.append(
            f"| {name} | {label(b['decoding'])} | {b['devset_wall_s']:.1f} | "
            f"{b['test']['bleu']:.1f} | {100 * b['test']['bleu'] / r['ar']['test']['bleu']:.0f}% |"
        )
    steps = sorted({c["step"] for m in r.values() for c in m["curve"]})
    lines += [
        "",
        "Validation bits per text at each checkpoint (CPU seconds of training on one thread):",
        "",
        "| model | " + " | ".join(f"step {step}" for step in steps) + " |",
        "|---|" + "---:|" * len(steps),
    ]
    for name, m in r.items():
        at = {c["step"]: f"{c['bits_per_text']:.2f} ({c['cpu_s']:.0f} s)" for c in m["curve"]}
        lines.append(f"| {name} | " + " | ".join(at.get(step, "-") for step in steps) + " |")
    lines += ["", "Decoding on the validation MRs (BLEU / slot error):", ""]
    lines += ["| model | decoding | BLEU | slot error |", "|---|---|---:|---:|"]
    for name, m in r.items():
        for row in m["val_decoding"]:
            lines.append(
                f"| {name} | {label(row['option'])} | {row['bleu']:.1f} | {row['slot_error']:.3f} |"
            )
    lines += ["", "Test examples (the chosen decoding):", ""]
    for name, m in r.items():
        lines += [f"- {name}: {e['text']!r} <- `{e['mr']}`" for e in m["examples"][:2]]
    lines += [
        "",
        f"Targets: `{json.dumps(t)}`",
        "",
        f"![{stem}.png]({figures}{stem}.png)",
    ]
    return "\n".join(lines) + "\n"


def timed_note(budget: dict) -> str:
    """How the within-budget pick was timed (a run before :func:`within_budget` timed its
    candidates timed only its pick)."""
    return " and whose time on them then does):" if "timed" in budget else "; then timed on them):"


def overrun_lines(r: dict) -> list[str]:
    """The decodings timed over the budget on the devset MRs before each model's pick."""
    over = [f"{name}: {label(t['decoding'])}, {t['devset_wall_s']:.1f} s"
            for name, m in r.items() for t in m["within_budget"].get("timed", [])
            if t["devset_wall_s"] >= DEVSET_BUDGET_S]  # fmt: skip
    return ["", "Timed over the budget, so passed over: " + "; ".join(over) + "."] if over else []


def prior_lines(r: dict, key: str) -> list[str]:
    """The length-prior ablation's table (none for runs scored before it)."""
    m = r["masked"]
    if "prior_ablation" not in m:
        return []
    own_val = next(row for row in m["val_decoding"] if row["option"] == m["decoding"])
    own = {"val": own_val, "test_within_budget": m["within_budget"]["test"]}
    rows = {prior_label(key, False) + " (the run's)": own, **m["prior_ablation"]}
    lines = ["", "The masked network under other length priors (counted again from the training "
             "texts to the same total; the network unchanged):", "",
             "| length prior p(k \\| c) | val BLEU, chosen decoding | test BLEU, within budget |",
             "|---|---:|---:|"]  # fmt: skip
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['val']['bleu']:.1f} | {row['test_within_budget']['bleu']:.1f} |"
        )
    return lines


def lm_score_lines(r: dict) -> list[str]:
    """The conditional lm-score sentence of the report (none for runs scored before it)."""
    if "lm_score" not in r["masked"]["test"]:
        return []
    human = 2 ** r["ar"]["test"]["bits_per_token"]
    return [
        "",
        "Conditional lm-score (the AR model's perplexity per token of each model's test texts "
        f"given their MRs; on the human references it is {human:.2f}): masked "
        f"{r['masked']['test']['lm_score']:.2f}, AR's own {r['ar']['test']['lm_score']:.2f} "
        "(target: masked at most 1.5x the human texts'; a lower temperature or a consensus "
        "of drafts lowers it, so it is read next to BLEU).",
    ]


def plot(payload: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, m in payload["models"].items():
        c = m["curve"]
        ax.plot([p["cpu_s"] for p in c], [p["bits_per_text"] for p in c], "o-", label=name)
    ax.set_xlabel("CPU seconds of training (1 thread)")
    ax.set_ylabel("validation bits per text given the MR")
    ax.set_title("E2E: masked LM bound vs AR exact NLL")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def how_far(curve: list[dict], budget: int) -> str:
    """The last step a model reached, and why it stopped there when short of the budget."""
    last = curve[-1]["step"]
    if last >= budget or stalled(curve, PATIENCE):
        return f"{last}"
    return f"{last} (the run was cut short there)"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", choices=MODELS, help="train and cache one model, then stop")
    ap.add_argument("--score", choices=MODELS, help="score and cache one trained model, then stop")
    ap.add_argument("--validate", choices=MODELS,
                    help="beside --score M: its validation rows from the end")  # fmt: skip
    ap.add_argument("--smoke", action="store_true", help="tiny settings, plumbing only")
    ap.add_argument("--work", type=Path, default=None, help="cache of trained models")
    ap.add_argument("--steps", type=int, default=None, help="training steps (preset's default)")
    ap.add_argument("--delex", action="store_true", help="delexicalise name and near")
    ap.add_argument("--protocol", choices=("a", "b"), default="b",
                    help="a: test on held-out devset MRs; b: on testset_w_refs.csv")  # fmt: skip
    ap.add_argument("--cond-length", type=int, default=None,
                    help="MR tokens the models take (default the longest training MR)")  # fmt: skip
    ap.add_argument("--length-key", choices=LENGTH_KEYS, default="tokens",
                    help="what c counts in the masked LM's p(k | c)")  # fmt: skip
    ap.add_argument("--report-only", action="store_true", help="rewrite the report from JSON")
    args = ap.parse_args(argv)
    preset = "smoke" if args.smoke else "full"
    s = SETTINGS[preset] | ({"steps": args.steps} if args.steps else {})
    s |= {"cond_length": args.cond_length} if args.cond_length else {}
    s |= {"length_key": args.length_key} if args.length_key != "tokens" else {}
    name = "text-masked-e2e" + ("-in-dist" if args.protocol == "a" else "")
    name += ("-delex" if args.delex else "") + ("-smoke" if args.smoke else "")
    if s["steps"] != SETTINGS[preset]["steps"]:
        name += f"-{s['steps']}-steps"
    if args.cond_length:
        name += f"-cond-{args.cond_length}"
    if args.length_key != "tokens":
        name += f"-key-{args.length_key}"
    if args.report_only:
        return write(json.loads((OUT / f"{name}.json").read_text()), name)
    torch.set_num_threads(1)
    work = args.work or ROOT.parent / "runs" / f"{name}"
    if not (DATA / "devset.csv").exists():
        raise SystemExit(f"needs {DATA}/devset.csv and testset_w_refs.csv (see its README)")
    train_file, test = corpora(args.protocol, args.delex, work)
    data = load_data(base_config(s), train_file)
    if args.train:
        return train_one(args.train, data, s, work)
    if args.score:
        return score(data, s, work, args.delex, test, only=args.score)
    if args.validate:
        return validate(args.validate, data, s, work)
    for model in MODELS:
        if not (work / f"{model}.pt").exists():
            train_one(model, data, s, work)
    models, n_mrs, n_texts, spent = score(data, s, work, args.delex, test)
    how = DELEX_NOTE if args.delex else "nothing delexicalised"
    ran = {m: how_far(models[m]["curve"], s["steps"]) for m in MODELS}
    held = (
        f"; {HELD_FRACTION:.0%} of its MRs held out first as the test set"
        if args.protocol == "a"
        else ""
    )
    where = "the held-out devset MRs" if args.protocol == "a" else "testset_w_refs.csv"
    setup = (
        f"E2E devset ({how}{held}) split 80/20 by MR ({len(data.train)} training pairs; validation "
        f"MRs for every choice); width {s['width']}, depth {s['depth']}, batch {s['batch']}, "
        f"dropout 0.1, lr {LR:g}, a budget of {s['steps']} steps per model (a check every "
        f"{CHECK_EVERY}, stopping after {PATIENCE} without a better one: AR ran "
        f"{ran['ar']}, masked {ran['masked']}; the best on validation kept); scored once "
        f"on {where} (one text for each of "
        f"{n_mrs} MRs, bits on {n_texts} pairs). {platform.machine()}, "
        f"{torch.get_num_threads()} thread, torch {torch.__version__}; "
        f"scoring took {spent:.0f} s."
    )
    payload = {"preset": preset, "protocol": args.protocol, "settings": s, "setup": setup,
               "models": models}  # fmt: skip
    (OUT / f"{name}.json").write_text(json.dumps(payload, indent=1) + "\n")
    write(payload, name)


def write(payload: dict, name: str) -> None:
    """The markdown and PNG beside the JSON; the full run's section of RESULTS.md too."""
    (OUT / f"{name}.md").write_text(markdown(payload, name))
    plot(payload, OUT / f"{name}.png")
    if payload["preset"] == "full":
        update_section(name, markdown(payload, name, figures="results/"))
    print(markdown(payload, name))


if __name__ == "__main__":
    main()
