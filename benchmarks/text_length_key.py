"""Which key of the masked LM's length prior p(k | c) holds up on MRs with unseen values.

    python benchmarks/text_length_key.py            # ~1 CPU min
    python benchmarks/text_length_key.py --smoke    # plumbing, a few seconds

The masked LM draws a text's token count k from ``p(k | c)`` before its tokens
(:mod:`diffkit.domains.text.length`), ``c`` a key of the condition: its token count (the
default), its word count, or its MR slot count (``model.mask_length_key``). On a split by
MR the keys hardly differ; E2E's published direction, though, tests on MRs whose foods and
eat types the devset lacks, and an unseen value splits into more pieces than a seen one,
so a key that counts tokens reads "longer MR" where there is only a rarer word. This study
mimics that shift inside the devset, never touching the test set: it holds out every MR of
one food value (the devset has two, English and Chinese; the tokenizer is trained without
them too) and scores each key's law, counted on the rest, on the held-out MRs, next to the
usual 80/20 split by MR. Per key: bits of k per text (``-log2 p(k | c)``, what the bound
pays) and the mean drawn count E[k | c] against the held-out texts' mean k, with the counts
of one pass over the training texts (the smoothing toward p(k) weighs 32 texts, as chosen)
and with the raw counts of an 8,000-step run (133 passes, the weight of a quarter of a text:
what the models had before the training set's size was kept, :func:`.length.passes`). The texts and
MRs are delexicalised (``name``, ``near``) as the E2E benchmark's models read them.
Writes ``benchmarks/results/text-length-key.{json,md,png}`` and its RESULTS.md section.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import tempfile
from pathlib import Path

import torch
from results_md import publish

from diffkit.domains.text.data import encode_corpus, read
from diffkit.domains.text.delex import delexicalise
from diffkit.domains.text.domain import TextConfig, build_network, load_data, prepare
from diffkit.domains.text.generate import tokenizer_of
from diffkit.domains.text.length import (
    LENGTH_KEYS,
    length_nats,
    prior_log_probs,
    recount,
    token_counts,
)

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parent.parent / "shared" / "data" / "e2e"
OUT = ROOT / "results"
HELD = ("food[English]", "food[Chinese]")  # the devset's two food values, each held out in turn
STEPS, BATCH = 8000, 64  # text_masked_e2e.py's budget: the counts a trained model had
COUNTS = ("one pass", f"{STEPS} steps' raw counts")


def rows_of(path: Path) -> list[tuple[str, str]]:
    """The delexicalised devset as (mr, ref) rows."""
    corpus = delexicalise(read(path, "ref", "mr"))
    return list(zip(corpus.conds, corpus.texts, strict=True))


def write_rows(rows: list[tuple[str, str]], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["mr", "ref"])
        out.writerows(rows)
    return path


def encoded(tok, config, mrs, texts) -> tuple[torch.Tensor, dict]:
    ids = encode_corpus(tok, texts, config.max_length).ids
    conds = encode_corpus(tok, mrs, config.cond_length)
    return ids, {"cond_ids": conds.ids, "cond_pad": conds.pad}


def laws(data, key: str | None, passes: float = 1.0):
    """A masked LM's length law counted on ``data.train`` under ``key`` (None: p(k)); with
    ``passes`` > 1 the counts of that many passes taken as they are, as every model trained
    before the training set's size was kept had them."""
    config = dataclasses.replace(data.config, model="masked", mask_lengths="prior",
                                 mask_length_key=key or "tokens")  # fmt: skip
    net = build_network(config)
    prepare(net, data, config)
    recount(net, data.train.texts.ids, {"cond_ids": data.train.conds.ids,
                                        "cond_pad": data.train.conds.pad})  # fmt: skip
    if passes > 1:
        net.length_counts.mul_(passes)
        net.cond_length_counts.mul_(passes)
        net.length_texts.zero_()
    return net.eval()


def scored(net, ids: torch.Tensor, cond: dict | None, eos: int) -> dict:
    """Bits of k per text and the mean of E[k | c] against the texts' mean k."""
    bits = length_nats(net, ids, cond).mean().item() / math.log(2)
    log_p = prior_log_probs(net, ids.shape[0], cond)
    mean_k = (log_p.exp() * torch.arange(log_p.shape[-1])).sum(-1).mean().item()
    true_k = token_counts(ids, eos).double().mean().item()
    return {"bits_of_k": bits, "mean_drawn_k": mean_k, "mean_k": true_k}


def study(rows: list[tuple[str, str]], held: str | None, base: TextConfig, work: Path) -> dict:
    """Each key's scores on the split's in-distribution validation MRs and, when ``held``,
    on the MRs holding that value (left out of the tokenizer and the counts)."""
    train = [r for r in rows if held is None or held not in r[0]]
    data = load_data(base, write_rows(train, work / "train.csv"))
    tok = tokenizer_of(data.settings)
    sets = {"by MR": (list(data.val.corpus.conds), list(data.val.corpus.texts))}
    if held is not None:
        out = [r for r in rows if held in r[0]]
        sets[f"{held} held out"] = ([m for m, _ in out], [t for _, t in out])
    result = {}
    raw = STEPS * BATCH / len(data.train)  # the passes of a trained model's counts
    for key, counts in [(None, "one pass"), *((k, c) for c in COUNTS for k in LENGTH_KEYS)]:
        net = laws(data, key, raw if counts != "one pass" else 1.0)
        for name, (mrs, texts) in sets.items():
            ids, cond = encoded(tok, data.config, mrs, texts)
            row = scored(net, ids, cond if key else None, tok.eos_id)
            label = key or "none: p(k)"
            result.setdefault(name, {})[f"{label}, {counts}"] = {**row, "texts": len(texts)}
    return result


def markdown(payload: dict) -> str:
    lines = ["## Masked LM: the length prior's key on MRs with unseen values",
             "", payload["setup"], "",
             "| split | validation MRs | texts | key of p(k \\| c) | bits of k | E[k \\| c] "
             "| mean k |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for split, sets in payload["splits"].items():
        for name, keys in sets.items():
            for key, r in keys.items():
                lines.append(
                    f"| {split} | {name} | {r['texts']} | {key} | {r['bits_of_k']:.3f} | "
                    f"{r['mean_drawn_k']:.1f} | {r['mean_k']:.1f} |"
                )
    return "\n".join(lines) + "\n"


def tick(split: str, name: str) -> str:
    """A bar group's label: the validation set, and for a split by MR which devset it split."""
    if name != "by MR":
        return name.replace(" held out", "\nheld out")
    return "by MR\n(" + split.replace("devset without ", "without ") + ")"


def plot(payload: dict, path: Path) -> None:
    """Bits of k per validation set, a bar per key, for each way of counting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = [(split, name) for split, v in payload["splits"].items() for name in v]
    laws = list(next(iter(payload["splits"].values()))["by MR"])
    top = max(r["bits_of_k"] for v in payload["splits"].values() for rows in v.values()
              for r in rows.values()) + 0.3  # fmt: skip
    fig, axes = plt.subplots(1, len(COUNTS), figsize=(11, 4), sharey=True)
    for ax, counts in zip(axes, COUNTS, strict=True):
        shown = [law for law in laws if law.endswith(counts) or law.startswith("none")]
        width = 0.8 / len(shown)
        for i, law in enumerate(shown):
            bits = [payload["splits"][split][name][law]["bits_of_k"] for split, name in sets]
            ax.bar([j + i * width for j in range(len(sets))], bits, width, label=law)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(sets))])
        ax.set_xticklabels([tick(split, name) for split, name in sets], fontsize=7)
        ax.set_title(f"counts: {counts}", fontsize=9)
        ax.set_ylim(4, top)
        ax.legend(fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("bits of k per text (validation)")
    fig.suptitle("E2E: the masked LM's length prior p(k | c) by key", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="the first 400 rows, plumbing only")
    args = ap.parse_args(argv)
    if not (DATA / "devset.csv").exists():
        raise SystemExit(f"needs {DATA}/devset.csv (see its README)")
    torch.set_num_threads(1)
    rows = rows_of(DATA / "devset.csv")[: 400 if args.smoke else None]
    base = TextConfig(text_column="ref", cond_column="mr", val_fraction=0.2, width=16, depth=1,
                      heads=2, nll_steps=0)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        splits = {"devset": study(rows, None, base, Path(tmp))}
        for held in HELD:
            splits[f"devset without {held}"] = study(rows, held, base, Path(tmp))
    setup = (
        f"E2E devset, delexicalised ({len(rows)} pairs); each split trains the tokenizer and "
        "counts the laws on its training rows (80% of its MRs), p(k | c) smoothed toward p(k) "
        "with the weight of 32 texts; 'by MR' is the split's own 20% of MRs, 'held out' every "
        "devset MR with that food value."
    )
    payload = {"preset": "smoke" if args.smoke else "full", "setup": setup, "splits": splits}
    name = "text-length-key" + ("-smoke" if args.smoke else "")
    md = markdown(payload) + f"\n![{name}.png](results/{name}.png)\n"
    plot(payload, OUT / f"{name}.png")
    print(publish(OUT, name, payload, md) if not args.smoke else md)


if __name__ == "__main__":
    main()
