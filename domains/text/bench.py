"""The text domain's benchmark: lm-score and grammaticality against NFE, per sampler.

On the built-in restaurant grammar (:mod:`.grammar`, whose law is exact) three models of one
size are trained for the same number of steps: the continuous CDCD model (the default
recipe), sampled by every Gaussian sampler of the run, the masked diffusion LM, sampled by
its ancestral and MaskGIT samplers, and the autoregressive baseline, the reference, which
also scores every sample as the lm-score teacher (Li et al. 2022): its perplexity on the
samples, next to its perplexity on held-out grammar texts (the floor). ``invalid`` is the
share of samples that are not sentences of the grammar (0 for exact samples). The AR
baseline is drawn as a line (its ``calls``, one per generated position, are in its row).

In the full suite, with ``--data-dir`` holding ``e2e/devset.csv``, a second case trains the
conditional masked LM and the conditional AR baseline on 80% of the devset's MRs and scores
mr->ref BLEU on the other 20% against NFE.
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial
from pathlib import Path

import torch

from diffkit.bench import Case, Context, Skip, counting, result, row, steps_for
from diffkit.config import DiffusionConfig

from . import metrics
from .evaluate import ar_perplexity
from .grammar import Grammar
from .options import TextSampleOptions

# suite -> training steps per model, network size, samples per point, grammar texts
BUDGETS = {
    "smoke": {"steps": 100, "width": 64, "depth": 2, "samples": 64, "n_train": 2000},
    "quick": {"steps": 150, "width": 128, "depth": 4, "samples": 96, "n_train": 5000},
    "full": {"steps": 3000, "width": 128, "depth": 4, "samples": 512, "n_train": 5000},
}
MASKED_SAMPLERS = ("ancestral", "maskgit")
UNIT = "lm-score (AR teacher perplexity per token)"


def fit(domain, config, data, context: Context, steps: int):
    """One model of ``config.model`` trained for ``steps`` (the bench's short loop)."""
    from diffkit.bench.train import train

    diffusion = DiffusionConfig(**domain.defaults["diffusion"])
    trained = train(
        domain,
        config,
        data,
        diffusion,
        steps=steps,
        batch_size=64,
        lr=2e-3,
        seed=context.seed,
        device=context.device,
    )
    return trained, diffusion


def draw(trained, config, data, n: int, *, sampler, steps, prediction, seed):
    """``n`` unconditional texts of a trained model and the network calls they took."""
    from .generate import generate_texts

    net = trained.net
    with counting(net) as calls:
        texts = generate_texts(
            net,
            trained.schedule,
            n,
            config=config,
            settings=data.settings,
            sampler=sampler,
            steps=steps,
            prediction=prediction,
            generator=torch.Generator().manual_seed(seed),
            options=TextSampleOptions(),
        )
    return texts, calls()


def draw_for(trained, config, data, mrs: list[str], *, sampler, steps, seed):
    """One text per MR (a batch) and the network calls they took."""
    from .evaluate import conditional_samples
    from .generate import allowed_of, tokenizer_of

    tok, net = tokenizer_of(data.settings), trained.net
    with counting(net) as calls:
        texts = conditional_samples(
            net, trained.schedule, mrs, tok, config, allowed_of(data.settings, config.vocab_size),
            sampler=sampler, steps=steps, guidance=1.0,
            generator=torch.Generator().manual_seed(seed),
        )  # fmt: skip
    return texts, calls()


def grammar_scores(texts: list[str], teacher, tok, length: int) -> dict[str, float]:
    """lm-score, the share of non-sentences, and distinct bigrams of ``texts``."""
    grammar = Grammar()
    return {
        "lm_score": ar_perplexity(teacher, tok, length, texts),
        "invalid": 1 - sum(map(grammar.accepts, texts)) / len(texts),
        "distinct_2": metrics.distinct_n(texts, 2),
    }


def run_grammar(suite: str, context: Context) -> dict:
    """Train CDCD, masked and AR on the grammar; score every (model, sampler, NFE)."""
    from .domain import TextConfig, domain  # it imports this module
    from .generate import tokenizer_of

    b = BUDGETS[suite]
    base = TextConfig(n_train=b["n_train"], width=b["width"], depth=b["depth"], nll_steps=0)
    data = domain.load_data(base, None)
    tok, length, n = tokenizer_of(data.settings), data.config.max_length, b["samples"]
    models = {}
    for name in ("ar", "cdcd", "masked"):
        config = dataclasses.replace(data.config, model=name)
        models[name] = (config, *fit(domain, config, data, context, b["steps"]))
    teacher = models["ar"][1].net
    score = partial(grammar_scores, teacher=teacher, tok=tok, length=length)
    rows = []

    def add(library, method, model, sampler, steps, nfe_budget, seed):
        config, trained, diffusion = models[model]
        t0 = time.perf_counter()
        texts, calls = draw(
            trained, config, data, n, sampler=sampler, steps=steps,
            prediction=diffusion.prediction, seed=seed,
        )  # fmt: skip
        nfe = calls if nfe_budget is not None else None  # the AR line: its calls beside it
        rows.append(
            row(library, method, nfe, nfe_budget=nfe_budget, steps=steps, calls=calls,
                wall_s=time.perf_counter() - t0, **score(texts))
        )  # fmt: skip

    T = models["cdcd"][1].schedule.T
    for sampler in context.samplers:
        for nfe in context.nfes:
            add("diffkit", f"cdcd {sampler}", "cdcd", sampler, steps_for(sampler, nfe, T), nfe, 1)
            context.advance()
    for sampler in MASKED_SAMPLERS:
        for nfe in context.nfes:
            add("diffkit", f"masked {sampler}", "masked", sampler, nfe, nfe, 1)
    add("AR baseline", "AR (ancestral)", "ar", "ddpm", None, None, 1)
    held = list(data.val.corpus.texts[:n])
    floor = score(held)
    summary = {k: v[1].summary() for k, v in models.items()}
    sizes = ", ".join(f"{k} {v['params']} parameters" for k, v in summary.items())
    setup = (
        f"Built-in grammar ({b['n_train']} training texts, {tok.vocab_size} BPE pieces, "
        f"length {length}); CDCD, masked LM and AR baseline, each width {b['width']}, depth "
        f"{b['depth']}, trained {b['steps']} steps of batch 64 "
        f"({sizes}); "
        f"{n} samples per point. Floor: the AR teacher on {len(held)} held-out grammar texts."
    )
    references = {"AR baseline": "ok", "grammar texts": "ok"}
    return result(
        rows,
        references,
        floor=floor,
        curve=models["cdcd"][1].curve,
        setup=setup,
        floor_label="held-out grammar texts",
        train=summary,
    )


def e2e_path(context: Context) -> Path:
    """``e2e/devset.csv`` under ``--data-dir``; Skip when it is absent."""
    path = Path(context.data_dir or "") / "e2e" / "devset.csv"
    if context.data_dir is None or not path.is_file():
        raise Skip(f"needs {path if context.data_dir else '--data-dir'} with e2e/devset.csv")
    return path


def run_e2e(suite: str, context: Context) -> dict:
    """Conditional masked LM and AR on E2E's devset (80/20 by MR): mr->ref BLEU vs NFE."""
    from .domain import TextConfig, domain

    b = BUDGETS[suite]
    path = e2e_path(context)
    base = TextConfig(
        text_column="ref", cond_column="mr", val_fraction=0.2, dropout=0.1,
        width=b["width"], depth=b["depth"], nll_steps=0,
    )  # fmt: skip
    data = domain.load_data(base, path)
    mrs, refs = metrics.group_references(data.val.corpus.conds, data.val.corpus.texts)
    mrs, refs = list(mrs)[: b["samples"] // 2], list(refs)[: b["samples"] // 2]
    models, rows = {}, []
    for name in ("ar", "masked"):
        config = dataclasses.replace(data.config, model=name)
        models[name] = (config, *fit(domain, config, data, context, b["steps"]))

    def add(library, method, model, sampler, steps, nfe_budget):
        config, trained, _ = models[model]
        t0 = time.perf_counter()
        hyps, calls = draw_for(
            trained, config, data, mrs, sampler=sampler, steps=steps, seed=context.seed + 1
        )
        nfe = calls if nfe_budget is not None else None
        rows.append(
            row(library, method, nfe, nfe_budget=nfe_budget, steps=steps, calls=calls,
                wall_s=time.perf_counter() - t0, bleu=metrics.corpus_bleu(hyps, refs),
                slot_error=metrics.slot_error(mrs, hyps))
        )  # fmt: skip

    for sampler in MASKED_SAMPLERS:
        for nfe in context.nfes:
            add("diffkit", f"masked {sampler}", "masked", sampler, nfe, nfe)
            context.advance()
    add("AR baseline", "AR (ancestral)", "ar", "ddpm", None, None)
    setup = (
        f"E2E devset, 80/20 split by MR ({len(data.train)} training pairs, {len(mrs)} "
        f"held-out MRs scored with all their references); conditional masked LM and AR "
        f"baseline, width {b['width']}, depth {b['depth']}, dropout 0.1, {b['steps']} steps."
    )
    return result(
        rows,
        {"AR baseline": "ok"},
        curve=models["masked"][1].curve,
        setup=setup,
        train={k: v[1].summary() for k, v in models.items()},
    )


def cases(suite: str) -> list[Case]:
    """The grammar case always; E2E mr->ref in the full suite (skipped without the data).

    E2E is full-only: its two conditional models cost 874 s of CPU at the quick budget.
    """
    out = [
        Case(
            domain="text",
            name="grammar",
            title="Restaurant grammar: CDCD and masked diffusion LMs against the AR baseline",
            metric="lm_score",
            unit=UNIT,
            references=("AR baseline", "grammar texts"),
            run=partial(run_grammar, suite),
            metrics=("invalid",),  # distinct-2 is in the rows: the grammar's own is low
            labels={"invalid": "share of samples outside the grammar"},
        )
    ]
    if suite == "full":
        out.append(
            Case(
                domain="text",
                name="e2e",
                title="E2E mr->ref: conditional masked LM against the AR baseline",
                metric="bleu",
                unit="corpus BLEU against all references (0-100)",
                references=("AR baseline",),
                run=partial(run_e2e, suite),
                metrics=("slot_error",),
                higher_better=("bleu",),
                log_y=False,
                labels={"slot_error": "slot error rate (share of MR values missing)"},
            )
        )
    return out
