"""The text benchmark's report: the issue's targets checked on a run, and its markdown.

``benchmarks/text.py`` writes the JSON of a run; :func:`markdown` renders it for
``benchmarks/results/text[-quick].md`` and its ``RESULTS.md`` section.
"""

from __future__ import annotations

import json

import text_masked  # the masked diffusion LM's rows, beside this script


def first_ancestral(model: dict) -> dict:
    """The scores of the model's first ancestral sampler (200 steps in both presets)."""
    return next(v for k, v in model["samplers"].items() if k.startswith("ancestral"))


def targets(r: dict) -> dict:
    """The issue's targets, checked on protocol (a) (or the first protocol run)."""
    p = r["protocols"].get("a") or next(iter(r["protocols"].values()))
    ar = next(iter(p["models"]["ar"]["samplers"].values()))
    out = {"quick_under_5_min": r["total_s"] < 300 if r["preset"] == "quick" else None}
    for name in ("diffusion_lm", "cdcd"):
        m = p["models"][name]
        ancestral = first_ancestral(m)
        fast = [v for k, v in m["samplers"].items() if "DPM" in k and int(k.split()[-1]) <= 25]
        best = max(fast, key=lambda v: v["bleu"])
        out[name] = {
            "rounding_100pct": m["rounding_accuracy"] == 1.0,
            "lm_score_within_2x_teacher": ancestral["lm_score"] <= 2 * p["teacher_ppl_human"],
            "bleu_90pct_of_ar": ancestral["bleu"] >= 0.9 * ar["bleu"],
            "slot_error_within_5_points": ancestral["slot_error"] <= ar["slot_error"] + 0.05,
            "dpm_25_calls_keeps_95pct_bleu": best["bleu"] >= 0.95 * ancestral["bleu"],
            "length_hit_95pct": m["length_hit"] >= 0.95,
        }
    out["masked"] = text_masked.targets(p)
    return out


def markdown(r: dict) -> str:
    lines = [
        f"### Text (E2E): `{r['command']}`",
        "",
        f"{r['preset']} preset, {r['budget_s']} s of training per model on {r['device']} "
        f"(shared and loaded: timings are noisy); total {r['total_s']:.0f} s.",
    ]
    for name, p in r["protocols"].items():
        lines += [
            "",
            f"**Protocol ({name})**: {p['train_pairs']} training pairs, {p['test_pairs']} test "
            f"pairs; the teacher's perplexity on held-out human texts is "
            f"{p['teacher_ppl_human']:.1f} ({p['tokens_per_text']:.1f} tokens per text).",
            "",
            "| model | params | steps | bits/token | sampler | lm-score | BLEU | ROUGE-L "
            "| slot err | distinct-2 | self-BLEU | copies | wall s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for model, m in p["models"].items():
            for sampler, v in m["samplers"].items():
                lines.append(
                    f"| {model} | {m['params'] / 1e6:.2f}M | {m['steps']} | "
                    f"{m['bits_per_token']:.2f} | {sampler} | {v['lm_score']:.1f} | "
                    f"{v['bleu']:.1f} | {v['rouge_l']:.1f} | {v['slot_error']:.3f} | "
                    f"{v['distinct_2']:.3f} | {v['self_bleu']:.1f} | {v['copy_rate']:.2f} | "
                    f"{v['wall_s']:.1f} |"
                )
        for model in ("diffusion_lm", "cdcd"):
            m = p["models"][model]
            lines.append(
                f"\n{model}: rounding clean embeddings recovers "
                f"{100 * m['rounding_accuracy']:.1f}% of tokens; guidance {m['guidance']} "
                "(chosen on validation MRs); "
                f"`--length {r['length']}` hit {100 * m['length_hit']:.0f}%; infilling a middle "
                f"span: exact match {m['infill_exact_match']:.2f}, BLEU {m['infill_bleu']:.1f}; "
                "e.g. "
                f'"{first_ancestral(m)["example"]}"'
            )
        lines.append(text_masked.markdown(p))
    lines += [
        "",
        "How to read it: bits/token are per token of held-out texts with EOS (BOS excluded);",
        "for the diffusion models an upper bound (all T = 2,000 steps, estimated from sampled",
        "steps, rounding decoder, pad positions included), for the AR row the exact NLL of",
        "the unconditional teacher of the same size, whose samples also give that row's",
        "lm-score, distinct-2 and self-BLEU; its mr->ref columns are the MR-prefixed AR model.",
        "`--length` hits count texts whose decoded string re-encodes to exactly the requested",
        "tokens (the sampled ids always have it). The quick preset is a smoke run: 40-second",
        "models are far from the issue's targets, which are stated for the full preset.",
        "",
        "Targets: `" + json.dumps(r["targets"]) + "`",
    ]
    return "\n".join(lines)
