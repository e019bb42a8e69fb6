"""Render the time-series benchmark's saved JSON into markdown: its .md files and RESULTS.md.

Used by ``benchmarks/timeseries.py`` after a run and by its ``--report-only`` flag; imports
nothing heavy, so re-rendering never needs torch.
"""

from __future__ import annotations

import ast
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
DEFAULT = "TimeGrad"  # the default's label in runs that did not save one (res["default"])
DEEPAR = "DeepAR (GluonTS)"
REFERENCE = "TimeGrad reference ddpm 100"
# Issue 19's targets on the default model, mean over seeds: data set -> (CRPS-sum, CRPS).
TARGETS = {"exchange": (0.0040, 0.0065), "etth1": (0.145, 0.18)}
STEMS = (
    "timeseries-diagnose",
    "timeseries-tune",
    "timeseries-quick",
    "timeseries",
    "timeseries-auto",
)


def ancestral_row(prefix: str) -> str:
    """The default's ancestral row (``prefix``: its label, "TimeGrad" or "horizon")."""
    return f"{prefix} ddpm 100"


def fast_rows(prefix: str) -> tuple[str, str]:
    """The default's two 20-call rows; the targets take one of them."""
    return f"{prefix} dpmpp_2m 20", f"{prefix} dpmpp_2m_sde 20"


def label(model: str) -> str:
    """``"TimeGrad dpmpp_2m 20"`` -> ``"TimeGrad DPM-Solver++(2M) 20"``."""
    parts = model.split(" ")
    if len(parts) >= 3 and parts[-2] in SAMPLER_LABELS:
        name = " ".join(parts[:-2])
        return f"{name} {SAMPLER_LABELS.get(parts[-2], parts[-2])} {parts[-1]}"
    return model


def carried(summary: dict) -> str:
    """ " (earlier part)" for a model's summary whose rows an earlier run measured
    (``--merge --keep-models``), else ""."""
    return " (earlier part)" if summary.get("earlier", (0,))[0] else ""


def _value(pair, digits: int, spread: bool) -> str:
    mean, std = pair
    if math.isnan(mean):
        return ""
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if spread else f"{mean:.{digits}f}"


def _header(args: dict, stem: str, parts: list | None = None) -> list[str]:
    earlier = [
        f"Part of this run: `{a['command']}` ({a.get('machine', '')}; load average "
        f"{a.get('load', '?')}; {a.get('wall_s', '?')} s)."
        for a in parts or []
    ]
    return [
        *earlier,
        f"`{args['command']}` ({args.get('machine', '')}; load average "
        f"{args.get('load', '?')} at the start; {args.get('wall_s', '?')} s in all; "
        f"`benchmarks/results/{stem}.json`). The CPU was shared with other jobs, so seconds "
        "are noisy; compare them within one run only.",
        "",
        f"Domain defaults: `{args.get('defaults', '')}`{following(args)}; seeds {args['seeds']}, "
        f"{args['draws']} sampling draw(s) per sampler. {args.get('default_label', DEFAULT)} "
        "= those defaults "
        "(what `diffkit train --domain timeseries --data F` trains, given the data set's "
        "horizon, frequency and windows), its checkpoint chosen by the validation loss; "
        "TimeGrad reference = TimeGrad's own formulation (`--architecture timegrad --target "
        "level`), first seed only. "
        f"Validation windows, just before the test windows: {windows_of(args)}.",
        "",
    ]


def following(args: dict) -> str:
    """The defaults that follow from the default's [model] values (``Domain.defaults_for``:
    the horizon network's own diffusion), where the run saved them."""
    extra = args.get("architecture_defaults")
    return f", and from its [model] values `{extra}`" if extra and extra != "{}" else ""


def windows_of(args: dict) -> str:
    """How many validation windows each data set had (runs before the count was saved had
    as many as test windows)."""
    counts = args.get("validation_windows")
    if not counts:
        return "as many as test windows"
    counts = ast.literal_eval(counts) if isinstance(counts, str) else counts
    return ", ".join(f"{NAMES.get(k, k)} {v}" for k, v in counts.items())


def tune_markdown(results: dict) -> list[str]:
    """Every candidate measured on the validation windows, and the choice, per data set."""
    args = results["args"]
    lines = [
        "Rows accumulate over runs of `python benchmarks/timeseries.py --tune --candidates "
        f"...`; the latest: `{args['command']}` ({args.get('machine', '')}). Every row is one "
        "training (seed 0, the data set's settings plus the candidate's, the rest the domain "
        "defaults) scored on the validation windows only (100 paths, DPM-Solver++(2M) 20, one "
        "draw), never on the test windows. CPU s is the training process's CPU time; the "
        "wall time was 3-4x longer on the shared machine, whose load average at each row's "
        "start is given.",
        "",
    ]
    for name, res in results["datasets"].items():
        lines += [
            f"**{NAMES.get(name, name)}**: lowest validation CRPS-sum at the latest run's "
            f"budget: **{res['chosen']}**.",
            "",
            "| candidate | steps | val windows | val CRPS-sum | val CRPS | val loss "
            "| best / last step | train CPU s | load |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in res["rows"]:
            cpu = f"{r['train_cpu_s']:.0f}" if "train_cpu_s" in r else ""
            label = r["candidate"] + (f" -> {r['target']}" if r["candidate"] == "auto" else "")
            then = r.get("defaults_then", {})  # defaults that have changed since the row ran
            label += "".join(f" ({k} {v}, the default then)" for k, v in then.items())
            lines.append(
                f"| {label} | {r.get('steps', '')} | {r.get('val_windows', 'as test')} | "
                f"{r['val_crps_sum']:.4g} | "
                f"{r['val_crps']:.4g} | {r['val_loss']:.4f} | {r['best_step']} / "
                f"{r['last_step']} | {cpu} | {r.get('load', '')} |"
            )
        lines.append("")
    return lines


def dataset_markdown(name: str, res: dict) -> list[str]:
    rows, summary, prefix = res["rows"], res["summary"], res.get("default", DEFAULT)
    base = ancestral_row(prefix)
    seeds = sorted({r["seed"] for r in rows})
    many = len(seeds) > 1
    digits = 5 if summary[base]["crps_sum"][0] < 0.1 else 3
    lines = [
        f"**{NAMES.get(name, name)}** ({len(seeds)} training seed{'s' * many}; test windows, "
        + ("mean ± std over seeds)" if many else "one seed)"),
        "",
        "| model | CRPS-sum | vs ancestral | CRPS | energy | ND | val CRPS-sum | best step "
        "| train s | forecast s | params |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    ancestral = summary[base]["crps_sum"][0]
    for model, m in summary.items():
        params = "" if math.isnan(m["params"][0]) else f"{m['params'][0]:,.0f}"
        spread = many and len([r for r in rows if r["model"] == model]) > 1
        val = _value(m["val_crps_sum"], digits, spread) if "val_crps_sum" in m else ""
        best = f"{m['best_step'][0]:.0f}" if "best_step" in m else ""
        lines.append(
            f"| {label(model)}{carried(m)} | {_value(m['crps_sum'], digits, spread)} | "
            f"{m['crps_sum'][0] / ancestral:.3f} | {_value(m['crps'], digits, spread)} | "
            f"{_value(m['energy_score'], 4 if digits == 5 else 2, spread)} | "
            f"{_value(m['nd'], digits, spread)} | {val} | {best} | {m['train_s'][0]:.0f} | "
            f"{_value(m['forecast_s'], 1, False)} | {params} |"
        )
    if many:

        def per_seed(model, key, fmt):
            values = [r[key] for r in rows if r["model"] == model]
            return " / ".join(format(v, fmt) for v in values)

        steps = [f"{r['best_step']} of {r['last_step']}" for r in rows if r["model"] == base]
        lines += [
            "",
            f"Per seed ({', '.join(map(str, seeds))}): CRPS-sum "
            f"{per_seed(base, 'crps_sum', '.4g')}; best checkpoint (validation loss) at "
            f"step {' / '.join(steps)} trained; training s "
            f"{per_seed(base, 'train_s', '.0f')}"
            + (
                f"; DeepAR CRPS-sum {per_seed(DEEPAR, 'crps_sum', '.4g')}."
                if DEEPAR in summary
                else "."
            ),
        ]
    lines += validation_choice(rows, base) or default_is_reference(rows, base)
    return lines + targets_markdown(name, summary, prefix)


def default_is_reference(rows: list[dict], base: str) -> list[str]:
    """A line where the default chose TimeGrad's level target, so no reference was trained."""
    if any(r["model"] == REFERENCE for r in rows):
        return []
    timegrad_level = ("timegrad", "level")
    if not any(
        r["model"] == base
        and (r.get("architecture", "timegrad"), r.get("target")) == timegrad_level
        for r in rows
    ):
        return []
    return [
        "",
        "The default's `auto` target chose TimeGrad's own scaled level here, so the default "
        "rows are the TimeGrad reference; no second model was trained for it.",
    ]


def validation_choice(rows: list[dict], base: str) -> list[str]:
    """The default against TimeGrad's own formulation on the validation windows, same seeds."""
    val = {(r["model"], r["seed"]): r.get("val_crps_sum") for r in rows}
    seeds = [s for (m, s) in val if m == REFERENCE and (base, s) in val]
    if not seeds:
        return []
    mine = [val[(base, s)] for s in seeds]
    ref = [val[(REFERENCE, s)] for s in seeds]
    pairs = "; ".join(
        f"seed {s}: {a:.4g} vs {b:.4g}" for s, a, b in zip(seeds, mine, ref, strict=True)
    )
    better = "the default" if sum(mine) <= sum(ref) else "the reference"
    return [
        "",
        f"Validation CRPS-sum, default vs TimeGrad reference (target=level), same seeds: "
        f"{pairs}: the validation windows prefer {better}.",
    ]


def fastest_choice(summary: dict, prefix: str = DEFAULT) -> str | None:
    """The 20-call DPM-Solver++ row the targets judge: the one with the lower validation
    CRPS-sum of its own where the run measured it, else the ODE's (older runs)."""
    rows = [m for m in fast_rows(prefix) if m in summary]
    scored = [m for m in rows if "val_sampler_crps_sum" in summary[m]]
    if scored:
        return min(scored, key=lambda m: summary[m]["val_sampler_crps_sum"][0])
    return rows[0] if rows else None


def targets_markdown(name: str, summary: dict, prefix: str = DEFAULT) -> list[str]:
    """Issue 19's targets against one data set's default rows."""
    fast, base = fastest_choice(summary, prefix), ancestral_row(prefix)
    if name not in TARGETS or base not in summary or fast is None:
        return []
    crps_sum, crps = (summary[base][k][0] for k in ("crps_sum", "crps"))
    checks = [
        (
            "mean CRPS-sum (ancestral 100)",
            f"<= {TARGETS[name][0]:g}",
            crps_sum,
            crps_sum <= TARGETS[name][0],
        ),
        ("mean CRPS (ancestral 100)", f"<= {TARGETS[name][1]:g}", crps, crps <= TARGETS[name][1]),
    ]
    if DEEPAR in summary:
        d_sum, d_crps = (summary[DEEPAR][k][0] for k in ("crps_sum", "crps"))
        checks.append(
            (
                "ahead of DeepAR (CRPS-sum, CRPS)",
                f"< {d_sum:.4g}, < {d_crps:.4g}",
                f"{crps_sum:.4g}, {crps:.4g}",
                crps_sum < d_sum and crps < d_crps,
            )
        )
    gap = summary[fast]["crps_sum"][0] / crps_sum - 1
    speed = summary[base]["forecast_s"][0] / summary[fast]["forecast_s"][0]
    named = label(fast).removeprefix(f"{prefix} ")
    how = " (chosen on validation)" if "val_sampler_crps_sum" in summary[fast] else ""
    checks += [
        (
            f"{named}{how} CRPS-sum vs ancestral 100",
            "within 5%",
            f"{gap:+.1%}",
            abs(gap) <= 0.05,
        ),
        (f"{named} speed-up over ancestral 100", ">= 5x", f"{speed:.2f}x", speed >= 5),
    ]
    lines = ["", "| target (issue 19) | bound | measured | |", "|---|---|---|---|"]
    for what, bound, value, ok in checks:
        shown = f"{value:.4g}" if isinstance(value, float) else value
        lines.append(f"| {what} | {bound} | {shown} | {'met' if ok else 'not met'} |")
    return lines


def diagnose_markdown(results: dict) -> list[str]:
    """Untrained forecasts on the validation and the test windows, per data set."""
    lines = [f"`{results['args']['command']}` (no training; `timeseries-diagnose.json`)", ""]
    for name, parts in results["datasets"].items():
        counts = parts.get("windows")
        windows = (
            f" ({counts['validation']} validation and {counts['test']} test windows)"
            if counts
            else ""
        )
        lines += [
            f"**{NAMES.get(name, name)}**: forecasts that need no training{windows}",
            "",
            "| forecast | val CRPS-sum | val CRPS | test CRPS-sum | test CRPS |",
            "|---|---|---|---|---|",
        ]
        for label_, val in parts["validation"].items():
            test = parts["test"][label_]
            lines.append(
                f"| {label_} | {val['crps_sum']:.4g} | {val['crps']:.4g} | "
                f"{test['crps_sum']:.4g} | {test['crps']:.4g} |"
            )
        lines.append("")
    return lines


def markdown(results: dict, stem: str) -> str:
    """The RESULTS.md section of one run, from its JSON."""
    if stem == "timeseries-diagnose":
        return "\n".join(diagnose_markdown(results))
    if stem == "timeseries-tune":
        return "\n".join(tune_markdown(results))
    lines = _header(results["args"], stem, results.get("parts"))
    for name, res in results["datasets"].items():
        lines += dataset_markdown(name, res)
        lines.append("")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> Path | None:
    """Test CRPS-sum per model (mean and std over seeds), one panel per data set, as PNG.

    The issue's target and DeepAR's value are drawn as vertical lines.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = {n: r for n, r in results["datasets"].items() if "summary" in r}
    if not sets:
        return None
    fig, axes = plt.subplots(1, len(sets), figsize=(7.5 * len(sets), 3.4), squeeze=False)
    for ax, (name, res) in zip(axes[0], sets.items(), strict=True):
        models = list(res["summary"])
        mean = [res["summary"][m]["crps_sum"][0] for m in models]
        std = [res["summary"][m]["crps_sum"][1] for m in models]
        ax.barh(range(len(models)), mean, xerr=std, color="tab:blue", alpha=0.7)
        runs = {m: sum(r["model"] == m for r in res["rows"]) for m in models}
        names = [
            f"{label(m)} ({runs[m]} seed{'s' * (runs[m] > 1)}){carried(res['summary'][m])}"
            for m in models
        ]
        ax.set_yticks(range(len(models)), names, fontsize=8)
        ax.invert_yaxis()
        if name in TARGETS:
            ax.axvline(TARGETS[name][0], color="tab:green", ls="--", label="target (issue 19)")
        if DEEPAR in res["summary"]:
            deepar = res["summary"][DEEPAR]["crps_sum"][0]
            ax.axvline(deepar, color="tab:red", ls=":", label="DeepAR")
        ax.set_title(f"{NAMES.get(name, name)}: test CRPS-sum, mean ± std over seeds", fontsize=10)
        lines = [m - e for m, e in zip(mean, std, strict=True)] + [TARGETS.get(name, (1e9,))[0]]
        ax.set_xlim(
            left=0.8 * min(lines), right=1.05 * max(m + e for m, e in zip(mean, std, strict=True))
        )
        ax.set_xlabel("CRPS-sum (lower is better; axis starts above 0)")
        ax.legend(fontsize=7, loc="upper right", framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(out: Path) -> list[str]:
    """Re-render every saved result in ``out`` into its .md, .png and RESULTS.md section."""
    written = []
    for stem in STEMS:
        path = out / f"{stem}.json"
        if path.exists():
            results = json.loads(path.read_text())
            md = markdown(results, stem)
            (out / f"{stem}.md").write_text(md + "\n")
            if stem in ("timeseries-quick", "timeseries"):
                plot(results, out / f"{stem}.png")
            update_section(stem, md)
            written.append(stem)
    return written
