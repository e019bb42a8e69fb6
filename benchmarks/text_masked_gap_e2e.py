"""The masked-LM gap study's conditional check on E2E (``text_masked_gap.py --e2e``).

    python benchmarks/text_masked_gap.py --e2e ../shared/data/e2e/devset.csv --steps 600

Same loop, variants and checkpoints as the grammar study in ``text_masked_gap.py``, on E2E's
devset split 80/20 by MR, with conditional models; writes
``benchmarks/results/text-masked-gap-e2e[-prior].{json,md}``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from text_masked_gap import OUT, Variant, train

from diffkit.domains.text.domain import TextConfig, load_data


def e2e(path: Path, s: dict, lengths: str = "pads") -> None:
    """E2E's devset split 80/20 by MR, conditional models: AR, and the masked LM (PADs
    modelled, as conditional models do) trained with MDLM's weighting and the per-masked one,
    at the learning rate the grammar chose for the masked LM; bits per text on the held-out
    MRs' texts at each checkpoint (no choice is made on them). ``lengths="prior"`` trains only
    the masked LM with the length prior (now p(k | c)) and the per-masked weighting, against
    the AR run of an earlier ``pads`` run (same split and seed) read from its JSON."""
    base = TextConfig(
        model="masked",
        text_column="ref",
        cond_column="mr",
        width=s["width"],
        depth=s["depth"],
        dropout=0.1,
        val_fraction=0.2,
    )
    data = load_data(base, path)
    v = data.val
    n = s["val_texts"]
    val = (
        v.texts.ids[:n],
        v.texts.pad[:n],
        {"cond_ids": v.conds.ids[:n], "cond_pad": v.conds.pad[:n]},
    )
    runs, todo = (
        [],
        [
            Variant("ar lr=0.004", model="ar", lr=4e-3),
            Variant("pads lr=0.004", lengths="pads", lr=4e-3),
            Variant("pads-permasked lr=0.004", lengths="pads", lr=4e-3, per_masked=True),
        ],
    )
    if lengths == "prior":
        runs = json.loads((OUT / "text-masked-gap-e2e.json").read_text())["runs"][:1]
        todo = [Variant("prior-permasked lr=0.004", lengths="prior", lr=4e-3, per_masked=True)]
    for variant in todo:
        net, curve = train(variant, data.config, data, val, s)
        runs.append(
            {
                **dataclasses.asdict(variant),
                "params": sum(p.numel() for p in net.parameters()),
                "curve": curve,
            }
        )
    tokens = (val[1].sum(1) - 1).double().mean().item()
    lines = [
        "# E2E, conditional: masked LM weightings against the AR model",
        "",
        f"devset split 80/20 by MR; {n} held-out texts ({tokens:.2f} tokens each with EOS); "
        f"width {s['width']}, depth {s['depth']}, batch {s['batch']}, dropout 0.1; CPU seconds on "
        "one "
        "shared thread (2 cores, about 7 agents' jobs). Bits per text given the MR (bound for "
        "the masked LM, exact for AR), and the perplexity ratio to AR at the last step.",
        "",
        "| variant | "
        + " | ".join(f"step {c['step']}" for c in runs[0]["curve"])
        + " | CPU s | ppl ratio |",
        "|---|" + "---:|" * (len(runs[0]["curve"]) + 2),
    ]
    ar_last = runs[0]["curve"][-1]["bits_per_text"]
    for r in runs:
        c = r["curve"]
        ratio = 2 ** ((c[-1]["bits_per_text"] - ar_last) / tokens)
        lines.append(
            f"| {r['name']} | "
            + " | ".join(f"{p['bits_per_text']:.2f}" for p in c)
            + f" | {c[-1]['cpu_s']:.0f} | {ratio:.3f} |"
        )
    out = {"settings": s, "tokens_per_text": tokens, "runs": runs}
    name = "text-masked-gap-e2e" + ("-prior" if lengths == "prior" else "")
    (OUT / f"{name}.json").write_text(json.dumps(out, indent=1) + "\n")
    (OUT / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
