"""Render the time-series benchmark's saved JSON into markdown: its .md files and RESULTS.md.

Used by ``benchmarks/timeseries.py`` after a run and by its ``--report-only`` flag; imports
nothing heavy, so re-rendering never needs torch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from results_md import update_section

NAMES = {"exchange": "Exchange", "etth1": "ETTh1"}
SAMPLER_LABELS = {
    "ddpm": "ancestral",
    "dpmpp_2m": "DPM-Solver++(2M)",
    "dpmpp_2m_sde": "SDE-DPM-Solver++(2M)",
}
ANCESTRAL = "TimeGrad ddpm 100"
FAST = "TimeGrad dpmpp_2m 20"
# Issue 5's targets on Exchange: (what, key in the summary, model, bound).
TARGETS = (
    ("mean CRPS-sum", "crps_sum", ANCESTRAL, 0.0060),
    ("mean CRPS", "crps", ANCESTRAL, 0.0090),
    ("training seconds", "train_s", ANCESTRAL, 175.0),
    ("DPM-Solver++(2M) 20 forecast seconds", "forecast_s", FAST, 5.0),
)


def label(model: str) -> str:
    """``"TimeGrad dpmpp_2m 20"`` -> ``"TimeGrad DPM-Solver++(2M) 20"``."""
    parts = model.split(" ")
    if parts[0] == "TimeGrad" and len(parts) == 3:
        return f"TimeGrad {SAMPLER_LABELS.get(parts[1], parts[1])} {parts[2]}"
    return model


def _value(pair, digits: int, spread: bool) -> str:
    mean, std = pair
    if math.isnan(mean):
        return ""
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if spread else f"{mean:.{digits}f}"


def dataset_markdown(name: str, res: dict, steps: str) -> list[str]:
    rows, summary = res["rows"], res["summary"]
    seeds = sorted({r["seed"] for r in rows})
    many = len(seeds) > 1
    digits = 5 if summary[ANCESTRAL]["crps_sum"][0] < 0.1 else 3
    lines = [
        f"**{NAMES.get(name, name)}** ({len(seeds)} training seed{'s' * many}, {steps} steps"
        + ("; mean ± std over seeds)" if many else ")"),
        "",
        "| model | CRPS-sum | vs ancestral | CRPS | energy | ND | train s | forecast s | params |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ancestral = summary[ANCESTRAL]["crps_sum"][0]
    for model, m in summary.items():
        params = "" if math.isnan(m["params"][0]) else f"{m['params'][0]:,.0f}"
        lines.append(
            f"| {label(model)} | {_value(m['crps_sum'], digits, many)} | "
            f"{m['crps_sum'][0] / ancestral:.3f} | {_value(m['crps'], digits, many)} | "
            f"{_value(m['energy_score'], 4 if digits == 5 else 2, many)} | "
            f"{_value(m['nd'], digits, many)} | {m['train_s'][0]:.0f} | "
            f"{_value(m['forecast_s'], 1, False)} | {params} |"
        )
    if many:

        def per_seed(model, key, fmt):
            values = [r[key] for r in rows if r["model"] == model]
            return " / ".join(format(v, fmt) for v in values)

        lines += [
            "",
            f"Per seed ({', '.join(map(str, seeds))}): training s "
            f"{per_seed(ANCESTRAL, 'train_s', '.0f')}; "
            f"DPM-Solver++(2M) 20 forecast s {per_seed(FAST, 'forecast_s', '.1f')}; "
            f"DeepAR CRPS-sum {per_seed('DeepAR (GluonTS)', 'crps_sum', '.4f')}.",
        ]
    return lines


def targets_markdown(summary: dict) -> list[str]:
    """Issue 5's targets against the Exchange run."""
    lines = ["", "| target (issue 5) | bound | measured | |", "|---|---|---|---|"]
    for what, key, model, bound in TARGETS:
        value = summary[model][key][0]
        lines.append(
            f"| {what} | <= {bound:g} | {value:.4g} | {'met' if value <= bound else 'not met'} |"
        )
    gap = summary[FAST]["crps_sum"][0] / summary[ANCESTRAL]["crps_sum"][0] - 1
    lines.append(
        f"| DPM-Solver++(2M) 20 CRPS-sum vs ancestral 100 | within 5% | {gap:+.1%} | "
        f"{'met' if abs(gap) <= 0.05 else 'not met'} |"
    )
    return lines


def markdown(results: dict, stem: str) -> str:
    """The RESULTS.md section of one run, from its JSON."""
    args = results["args"]
    lines = [
        f"`{args['command']}` ({args.get('machine', '')}; `benchmarks/results/{stem}.json`)",
        "",
    ]
    for name, res in results["datasets"].items():
        lines += dataset_markdown(name, res, args["steps"])
        if name == "exchange" and ANCESTRAL in res["summary"] and FAST in res["summary"]:
            lines += targets_markdown(res["summary"])
        lines.append("")
    return "\n".join(lines)


def report(out: Path) -> list[str]:
    """Re-render every saved result in ``out`` into its .md file and its RESULTS.md section."""
    written = []
    for stem in ("timeseries-quick", "timeseries"):
        path = out / f"{stem}.json"
        if path.exists():
            md = markdown(json.loads(path.read_text()), stem)
            (out / f"{stem}.md").write_text(md + "\n")
            update_section(stem, md)
            written.append(stem)
    return written
