"""Conditional masked LM on E2E mr->ref: PADs against the length prior p(k | c), beside AR.

    OMP_NUM_THREADS=1 python benchmarks/text_masked_cond.py [--steps 300 --width 64 --depth 2]

Trains on 80% of ``e2e/devset.csv``'s MRs (the bench's short loop: AdamW, warm-up, cosine,
batch 64), picks each model's learning rate on the other 20% (bits per text), and reports,
once, on ``testset_w_refs.csv`` (the published direction: partly unseen names and foods):
bits per text given the MR (the masked models' bound, the AR model's exact NLL) and mr->ref
corpus BLEU of one text per held-out MR (masked: the cached sampler at L steps, the model's
own law; AR: ancestral). Writes benchmarks/results/text-masked-cond.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import time
from pathlib import Path

import torch

from diffkit.bench.train import train
from diffkit.config import DiffusionConfig
from diffkit.domains.text import metrics
from diffkit.domains.text.data import encode_corpus, read
from diffkit.domains.text.domain import TextConfig, domain
from diffkit.domains.text.evaluate import ar_nll, conditional_samples
from diffkit.domains.text.generate import allowed_of, tokenizer_of
from diffkit.domains.text.masked import masked_nll

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parent.parent / "shared" / "data" / "e2e"
MODELS = {"AR (MR prefix)": ("ar", "auto"), "masked, PADs": ("masked", "pads"),
          "masked, p(k | c)": ("masked", "prior")}  # fmt: skip
RATES = (2e-3, 4e-3)
STRENGTHS = (0.5, 2.0, 8.0, 32.0, 128.0)


def length_priors(data) -> dict:
    """Held-out bits of k (validation MRs) under the length laws: global p(k), and p(k | key)
    smoothed toward it with weight a, for the key the condition's size (what the model uses)
    or its set of MR slots."""
    from diffkit.domains.text import length

    eos = tokenizer_of(data.settings).eos_id

    def parts(ds):
        k = length.token_counts(ds.texts.ids, eos)
        slots = [tuple(sorted(re.findall(r"([\w ]+)\[", m))) for m in ds.corpus.conds]
        return k, ds.conds.pad.sum(1).tolist(), slots

    (k_tr, c_tr, s_tr), (k_va, c_va, s_va) = parts(data.train), parts(data.val)
    size = data.config.max_length
    prior = length.length_log_probs(torch.bincount(k_tr, minlength=size).double()).exp()
    out = {"global p(k)": float(-prior[k_va].log().mean()) / math.log(2)}
    for name, key_tr, key_va in (("condition size", c_tr, c_va), ("MR slot set", s_tr, s_va)):
        groups: dict = {}
        for key, k in zip(key_tr, k_tr.tolist(), strict=True):
            groups.setdefault(key, torch.zeros(size, dtype=torch.float64))[k] += 1
        for a in STRENGTHS:
            nats = [
                -math.log((n[k] + a * prior[k]) / (n.sum() + a))
                for key, k in zip(key_va, k_va.tolist(), strict=True)
                for n in [groups.get(key, torch.zeros(size, dtype=torch.float64))]
            ]
            out[f"p(k | {name}), a={a:g}"] = sum(nats) / len(nats) / math.log(2)
    return out


def bits_per_text(net, config, tok, texts, mrs, g) -> tuple[float, float]:
    """Mean -log2 p(text | MR) (the masked bound or the AR model's exact NLL) and the mean
    tokens a text (after BOS, EOS included)."""
    enc = encode_corpus(tok, texts, config.max_length)
    conds = encode_corpus(tok, mrs, config.cond_length)
    cond = {"cond_ids": conds.ids, "cond_pad": conds.pad}
    if config.model == "ar":
        nats = ar_nll(net, enc.ids, enc.pad, cond=cond)
    else:
        nats = masked_nll(net, enc.ids, cond=cond, generator=g)
    return float(nats.double().mean()) / math.log(2), float((enc.pad.sum(1) - 1).double().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--texts", type=int, default=200, help="texts scored for bits, val and test")
    ap.add_argument("--mrs", type=int, default=100, help="test MRs scored for BLEU")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "text-masked-cond")
    ap.add_argument("--priors", action="store_true", help="only the length-law comparison")
    ap.add_argument("--rates", type=float, nargs="+", default=RATES, help="learning rates tried")
    args = ap.parse_args()
    torch.set_num_threads(1)
    base = TextConfig(text_column="ref", cond_column="mr", val_fraction=0.2, dropout=0.1,
                      width=args.width, depth=args.depth, nll_steps=0)  # fmt: skip
    data = domain.load_data(base, DATA / "devset.csv")
    if args.priors:
        return write_priors(args.out, length_priors(data))
    tok = tokenizer_of(data.settings)
    allowed = allowed_of(data.settings, data.config.vocab_size)
    val = data.val.corpus
    test = read(DATA / "testset_w_refs.csv", "ref", "mr")
    mrs, refs = metrics.group_references(test.conds, test.texts)
    mrs, refs = list(mrs)[: args.mrs], list(refs)[: args.mrs]
    diffusion = DiffusionConfig(**domain.defaults["diffusion"])
    rows = []
    for label, (model, lengths) in MODELS.items():
        config = dataclasses.replace(data.config, model=model, mask_lengths=lengths)
        tried, best = {}, None
        for lr in args.rates:
            c0 = time.process_time()
            trained = train(domain, config, data, diffusion, steps=args.steps, lr=lr, seed=0)
            g = torch.Generator().manual_seed(0)
            v, _ = bits_per_text(trained.net, config, tok, val.texts[: args.texts],
                              val.conds[: args.texts], g)  # fmt: skip
            tried[lr] = {"val_bits_per_text": v, "cpu_s": time.process_time() - c0}
            print(label, lr, tried[lr], flush=True)
            if best is None or v < tried[best[0]]["val_bits_per_text"]:
                best = (lr, trained.net)
        lr, net = best
        c0 = time.process_time()
        g = torch.Generator().manual_seed(1)
        test_bits, tokens = bits_per_text(net, config, tok, test.texts[: args.texts],
                                  test.conds[: args.texts], g)  # fmt: skip
        hyps = conditional_samples(
            net, None, mrs, tok, config, allowed, sampler="cached", steps=config.max_length,
            guidance=1.0, generator=torch.Generator().manual_seed(2),
        )  # fmt: skip
        rows.append({
            "model": label, "lr": lr, "rates": tried, "test_bits_per_text": test_bits,
            "tokens_per_text": tokens,
            "bleu": metrics.corpus_bleu(hyps, refs), "slot_error": metrics.slot_error(mrs, hyps),
            "score_cpu_s": time.process_time() - c0, "example": hyps[0],
        })  # fmt: skip
        print(rows[-1], flush=True)
    write(args, rows, len(data.train))


def write(args, rows: list[dict], n_train: int) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    setup = (
        f"E2E devset, 80/20 by MR ({n_train} training pairs); width {args.width}, depth "
        f"{args.depth}, {args.steps} steps of batch 64 per model and rate, 1 thread on a shared "
        f"2-core CPU; rate chosen on {args.texts} validation texts; scored once on the first "
        f"{args.texts} texts and {args.mrs} MRs of testset_w_refs.csv."
    )
    payload = {"setup": setup, "rows": rows}
    args.out.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    ar = rows[0]["test_bits_per_text"]
    lines = [f"# Conditional masked LM: PADs against p(k | c)\n\n{setup}\n",
             "| model | lr (val) | bits/text given MR | ppl/token vs AR | BLEU | slot error |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['lr']:g} | {r['test_bits_per_text']:.2f} | "
            f"{2 ** ((r['test_bits_per_text'] - ar) / r['tokens_per_text']):.3g}x | "
            f"{r['bleu']:.1f} | {r['slot_error']:.3f} |"
        )
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def write_priors(out: Path, bits: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    name = out.with_name(out.name + "-priors")
    name.with_suffix(".json").write_text(json.dumps(bits, indent=2) + "\n")
    lines = [
        "# Length laws of E2E texts given the MR (validation MRs, bits per text)",
        "",
        "| law | bits of k |",
        "|---|---|",
    ] + [f"| {k} | {v:.3f} |" for k, v in bits.items()]
    name.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
