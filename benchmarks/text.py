"""Diffusion-LM, the CDCD / self-conditioning recipe and an AR baseline on E2E, side by side.

    python benchmarks/text.py --quick   # < 5 min on a shared 2-core CPU: protocol (a), 40-s models
    python benchmarks/text.py           # 20 min per model, both protocols: about 3 hours on CPU

Data: E2E from ``../shared/data/e2e`` (``--data``; the run is skipped with a message when it
is absent). Two protocols:

(a) in distribution: ``devset.csv`` split 80/20 by MR (no MR on both sides);
(b) the published direction: train on ``devset.csv``, score on ``testset_w_refs.csv``, whose
    names, foods and eat types are partly unseen in the devset (nothing is delexicalised).

Every model is trained by diffkit's engine (``diffkit.fit``) for the same wall-clock budget
at the same width and depth (parameter counts are printed): the Diffusion-LM recipe (x0 loss
+ anchor + rounding, sqrt schedule, T = 2,000), the CDCD recipe (cross-entropy, score
interpolation, self-conditioning) and the causal transformer (cross-entropy). All three are
conditional on the MR (condition dropout 0.1 for the diffusion models, so the same network
also samples unconditionally); a second, unconditional AR model of the same size is the
teacher of lm-score. Guidance scales are chosen on the validation MRs that ``load_data``
splits off the training data (BLEU with DDIM 50), never on the test MRs.

Per sampler (ancestral 200 and 2,000 steps, DDIM 50, DPM-Solver++(2M) and its SDE variant
at 10 and 20 steps; the stochastic one keeps 96% of ancestral-200's grammar acceptance at 20
steps where the ODE one keeps 80%, measured on the built-in grammar): lm-score
of unconditional samples next to the teacher's perplexity on held-out human texts, mr->ref
BLEU / ROUGE-L / slot error (one output per test MR, all its references), distinct-2 and
self-BLEU, the bits-per-token bound on held-out texts, and wall time. Writes
``benchmarks/results/text[-quick].{json,md}`` and its section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import torch

from diffkit.config import merge
from diffkit.domains.text import metrics
from diffkit.domains.text.data import Corpus, encode_corpus, read, split
from diffkit.domains.text.evaluate import (
    ar_nll,
    conditional_samples,
    diffusion_nll,
    infill_scores,
    per_unit,
    teacher_perplexity,
)
from diffkit.domains.text.generate import (
    allowed_of,
    default_clamp,
    free_template,
    length_template,
    nearest_ids,
    sample_ids,
    tokenizer_of,
)
from diffkit.inference import load_model
from diffkit.registry import get_domain
from diffkit.runner import fit, resolve_config

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: its sibling module
import text_masked  # the masked diffusion LM's row, beside this script
from text_inputs import held_out
from text_report import markdown, targets

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "e2e"
RESULTS = Path(__file__).resolve().parent / "results"
SETTINGS = {
    "quick": {
        "budget": 40, "protocols": ("a",), "width": 64, "depth": 2, "heads": 4, "batch": 32,
        "max_length": 48, "samples": 16, "mrs": 16, "nll_texts": 16, "nll_steps": 20,
        "samplers": (
            ("ddpm", 200), ("ddim", 50), ("dpmpp_2m", 10), ("dpmpp_2m", 20),
            ("dpmpp_2m_sde", 10), ("dpmpp_2m_sde", 20),
        ),
        "guidance": (1.0, 2.0), "val_mrs": 8, "length": 12, "dropout": 0.0,
    },
    "full": {
        "budget": 1200, "protocols": ("a", "b"), "width": 128, "depth": 4, "heads": 4,
        "batch": 64, "max_length": 64, "samples": 200, "mrs": 200, "nll_texts": 200,
        "nll_steps": 200,
        "samplers": (
            ("ddpm", 200), ("ddpm", 2000), ("ddim", 50), ("dpmpp_2m", 10), ("dpmpp_2m", 20),
            ("dpmpp_2m_sde", 10), ("dpmpp_2m_sde", 20),
        ),
        "guidance": (1.0, 1.5, 2.0, 3.0), "val_mrs": 64, "length": 16, "dropout": 0.1,
    },
}  # fmt: skip
RECIPES = {
    "diffusion_lm": {"model": "diffusion_lm", "self_conditioning": False},
    "cdcd": {"model": "cdcd", "self_conditioning": True},
    "ar": {"model": "ar"},
    "masked": {"model": "masked"},  # MDLM, scored by benchmarks/text_masked.py
}


class TimeBudget(pl.Callback):
    """Stops training after ``seconds`` of wall clock (the run then saves its checkpoint)."""

    def __init__(self, seconds: float):
        self.seconds, self.start, self.steps = seconds, None, 0

    def on_train_start(self, trainer, module):
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.steps = module.step
        if time.perf_counter() - self.start > self.seconds:
            trainer.should_stop = True


def corpora(data: Path, protocol: str) -> tuple[Corpus, Corpus]:
    dev = read(data / "devset.csv", "ref", "mr")
    if protocol == "a":
        return split(dev, 0.2, seed=0)
    return dev, read(data / "testset_w_refs.csv", "ref", "mr")


def write_csv(corpus: Corpus, path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["mr", "ref"])
        writer.writerows(zip(corpus.conds, corpus.texts, strict=True))
    return path


def train(recipe: dict, data: Path, out: Path, s: dict, conditional: bool = True) -> dict:
    """Fit one model for the budget; returns its run directory, steps and seconds."""
    vocab = s.get("vocab", 1000)
    model = {
        **recipe,
        "text_column": "ref",
        **({"cond_column": "mr"} if conditional else {}),
        **({"vocab_size": vocab} if vocab is not None else {}),  # None: fit to the corpus
        "max_length": s["max_length"],
        "width": s["width"],
        "depth": s["depth"],
        "heads": s["heads"],
        "dropout": s["dropout"],
    }
    train_cfg = {
        "max_steps": 1_000_000,
        "batch_size": s["batch"],
        "min_lr_ratio": 1.0,  # constant LR after warm-up: the step count is the budget's
        "checkpoint_every": 1_000_000,
        "log_every": 100,
        "accelerator": "auto",
    }
    domain = get_domain("text")
    config = resolve_config(domain, merge({"model": model, "train": train_cfg}), str(data))
    budget = TimeBudget(s["budget"])
    t0 = time.perf_counter()
    fit(domain, config, out=out, quiet=True, callbacks=(budget,))
    return {"run": out, "steps": budget.steps, "train_s": time.perf_counter() - t0}


def count(net) -> int:
    return sum(p.numel() for p in net.parameters())


def loaded(run: Path):
    domain, net, schedule, found = load_model(run)
    config = domain.config(**{**found.config["model"]})
    return net, schedule, config, found.config["settings"]


def rounding_accuracy(net, ids: torch.Tensor, allowed) -> float:
    """Share of tokens that rounding their clean embeddings recovers (target: 1.0)."""
    with torch.no_grad():
        out = nearest_ids(net, net.embed(ids), torch.ones_like(allowed).expand(ids.shape[1], -1))
    return (out == ids).float().mean().item()


def choose_guidance(net, schedule, val: Corpus, tok, config, allowed, s: dict) -> float:
    """The guidance scale with the best BLEU on validation MRs (DDIM 50)."""
    mrs, refs = metrics.group_references(val.conds, val.texts)
    mrs, refs = list(mrs)[: s["val_mrs"]], list(refs)[: s["val_mrs"]]
    scores = {}
    for w in s["guidance"]:
        g = torch.Generator().manual_seed(1)
        hyps = conditional_samples(
            net,
            schedule,
            mrs,
            tok,
            config,
            allowed,
            sampler="ddim",
            steps=50,
            guidance=w,
            generator=g,
        )
        scores[w] = metrics.corpus_bleu(hyps, refs)
    return max(scores, key=scores.get)


def score_model(name, run, test: Corpus, teacher: Path, s: dict) -> dict:
    """Every metric of one trained model on the test corpus, per sampler."""
    net, schedule, config, settings = loaded(run["run"])
    tok = tokenizer_of(settings)
    allowed = allowed_of(settings, config.vocab_size)
    h = held_out(test, tok, config.max_length, s)
    held, enc, tokens, chars, mrs, refs = h.texts, h.encoded, h.tokens, h.chars, h.mrs, h.refs
    g = torch.Generator().manual_seed(0)
    train_corpus = read(run["run"].parent / "train.csv", "ref", "mr")
    row = {"params": count(net), "steps": run["steps"], "train_s": round(run["train_s"], 1)}
    if config.model == "ar":  # unconditional numbers from the teacher (same size), mr->ref own
        t_net, _, t_config, t_settings = loaded(teacher)
        t_tok = tokenizer_of(t_settings)  # trained on the texts alone: not the MR model's
        t_enc = encode_corpus(t_tok, held, t_config.max_length)
        t_tokens = (t_enc.pad.sum(1) - 1).tolist()
        nats = ar_nll(t_net, t_enc.ids, t_enc.pad)
        row["bits_per_token"] = per_unit(nats, t_tokens)
        row["bits_per_char"] = per_unit(nats, chars)
        t0 = time.perf_counter()
        ids = t_net.generate(s["samples"], max_length=t_config.max_length, generator=g)
        hyps = conditional_samples(
            net,
            schedule,
            mrs,
            tok,
            config,
            allowed,
            sampler="",
            steps=0,
            guidance=1.0,
            generator=g,
        )
        texts = t_tok.decode_batch(ids.cpu())
        scores = sample_scores(texts, hyps, mrs, refs, teacher, t0, train_corpus.texts)
        row["samplers"] = {"ancestral (AR)": scores}
        return row
    nats = diffusion_nll(net, schedule, enc.ids, steps=s["nll_steps"], generator=g)
    row |= {"bits_per_token": per_unit(nats, tokens), "bits_per_char": per_unit(nats, chars)}
    row["rounding_accuracy"] = rounding_accuracy(net, enc.ids, allowed)
    val = split(train_corpus, config.val_fraction, config.data_seed)[1]
    row["guidance"] = choose_guidance(net, schedule, val, tok, config, allowed, s)
    row["samplers"] = {}
    free = free_template(tok, config.max_length, allowed)
    for sampler, steps in s["samplers"]:
        t0 = time.perf_counter()
        ids = sample_ids(
            net, schedule, s["samples"], free, sampler=sampler, steps=steps, generator=g
        )
        uncond = tok.decode_batch(ids)
        hyps = conditional_samples(
            net,
            schedule,
            mrs,
            tok,
            config,
            allowed,
            sampler=sampler,
            steps=steps,
            guidance=row["guidance"],
            generator=g,
        )
        label = {
            "ddpm": "ancestral",
            "ddim": "DDIM",
            "dpmpp_2m": "DPM-Solver++(2M)",
            "dpmpp_2m_sde": "SDE-DPM-Solver++(2M)",
        }[sampler]
        row["samplers"][f"{label} {steps}"] = sample_scores(
            uncond, hyps, mrs, refs, teacher, t0, train_corpus.texts
        )
    row["length_hit"] = length_hit(net, schedule, tok, config, allowed, s["length"], g)
    infill = list(test.texts[: s["mrs"]])
    row |= infill_scores(
        net, schedule, infill, tok, config, allowed, sampler="dpmpp_2m", steps=20, generator=g
    )
    return row


def sample_scores(uncond, hyps, mrs, refs, teacher: Path, t0: float, train_texts) -> dict:
    wall = time.perf_counter() - t0
    return {
        "copy_rate": metrics.copy_rate(uncond, train_texts),
        "lm_score": teacher_perplexity(str(teacher), uncond),
        "bleu": metrics.corpus_bleu(hyps, refs),
        "rouge_l": metrics.rouge_l(hyps, refs),
        "slot_error": metrics.slot_error(mrs, hyps),
        "distinct_2": metrics.distinct_n(uncond, 2),
        "self_bleu": metrics.self_bleu(uncond),
        "wall_s": round(wall, 2),
        "example": hyps[0] if hyps else "",
    }


def length_hit(net, schedule, tok, config, allowed, n_tokens: int, g) -> float:
    """Share of ``--length n`` samples whose text re-encodes to exactly n tokens."""
    tpl = length_template(tok, n_tokens, config.max_length, allowed)
    ids = sample_ids(
        net,
        schedule,
        16,
        tpl,
        sampler="dpmpp_2m",
        steps=20,
        clamp=default_clamp(config),
        generator=g,
    )
    texts = tok.decode_batch(ids)
    return sum(len(tok.encode(t)) == n_tokens for t in texts) / len(texts)


def protocol(name: str, data: Path, s: dict, work: Path) -> dict:
    train_corpus, test = corpora(data, name)
    root = work / name
    root.mkdir(parents=True)
    path = write_csv(train_corpus, root / "train.csv")
    print(f"protocol ({name}): {len(train_corpus)} training pairs, {len(test)} test pairs")
    teacher = train(RECIPES["ar"], path, root / "teacher", s, conditional=False)
    tok = tokenizer_of(loaded(teacher["run"])[3])
    held = list(test.texts[: s["nll_texts"]])
    out = {
        "train_pairs": len(train_corpus),
        "test_pairs": len(test),
        "teacher_ppl_human": teacher_perplexity(str(teacher["run"]), held),
        "teacher_steps": teacher["steps"],
        "tokens_per_text": float(
            encode_corpus(tok, held, s["max_length"]).pad.sum(1).float().mean()
        ),
        "models": {},
    }
    for recipe, values in RECIPES.items():
        run = train(values, path, root / recipe, s)
        print(f"  {recipe}: {run['steps']} steps in {run['train_s']:.0f} s; scoring")
        if recipe == "masked":
            row = text_masked.score_masked(run, test, teacher["run"], s, sample_scores)
        else:
            row = score_model(recipe, run, test, teacher["run"], s)
        out["models"][recipe] = row
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="Smoke run under 5 minutes.")
    parser.add_argument("--data", type=Path, default=DATA, help="Folder with the E2E CSVs.")
    parser.add_argument("--budget", type=float, help="Training seconds per model.")
    parser.add_argument("--dropout", type=float, help="Network dropout (the preset's if unset).")
    parser.add_argument("--threads", type=int, default=1, help="torch threads.")
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="Folder for the JSON and markdown."
    )
    args = parser.parse_args(argv)
    if not (args.data / "devset.csv").is_file() or not (args.data / "testset_w_refs.csv").is_file():
        print(
            f"skipped: E2E not found in {args.data} (devset.csv, testset_w_refs.csv); "
            "pass --data FOLDER."
        )
        return
    torch.set_num_threads(args.threads)
    preset = "quick" if args.quick else "full"
    s = dict(SETTINGS[preset])
    if args.budget:
        s["budget"] = args.budget
    if args.dropout is not None:
        s["dropout"] = args.dropout
    t0 = time.perf_counter()
    command = "python benchmarks/text.py" + (" --quick" if args.quick else "")
    command += f" --budget {args.budget:g}" if args.budget else ""
    command += f" --dropout {args.dropout:g}" if args.dropout is not None else ""
    command += f" --results {args.results}" if args.results != RESULTS else ""
    result = {
        "command": command,
        "preset": preset,
        "budget_s": s["budget"],
        "length": s["length"],
        "device": "cuda" if torch.cuda.is_available() else f"CPU, {args.threads} thread(s)",
        "protocols": {},
    }
    with tempfile.TemporaryDirectory() as work:
        for name in s["protocols"]:
            result["protocols"][name] = protocol(name, args.data, s, Path(work))
    result["total_s"] = time.perf_counter() - t0
    result["targets"] = targets(result)
    stem = "text-quick" if args.quick else "text"
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{stem}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    md = markdown(result)
    (args.results / f"{stem}.md").write_text(md + "\n")
    if args.results == RESULTS:  # a run elsewhere (a test) leaves RESULTS.md alone
        from results_md import update_section  # beside this script

        update_section(stem, md)
    print(md)
    print(f"done in {result['total_s']:.0f} s")


if __name__ == "__main__":
    main()
