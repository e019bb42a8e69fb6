"""``report.md`` and ``report.json`` from the header and the case results.

For each case, one table per metric: a row per (sampler, library), a column per NFE budget,
each diffkit sampler followed by its reference; references that call no network (the true
law, a random walk) and the floor follow; then wall time and the figure.
"""

from __future__ import annotations

import math
from pathlib import Path

from diffkit.bench.runner import write_json


def write(header: dict, results: list[dict], out: Path, figures: dict[str, list[str]]) -> Path:
    """Write ``report.json`` and ``report.md`` in ``out``; returns the markdown's path."""
    out = Path(out)
    write_json(out / "report.json", {"header": header, "cases": results, "figures": figures})
    path = out / "report.md"
    path.write_text(markdown(header, results, figures))
    return path


def fmt(value) -> str:
    """A metric cell: four significant digits, "—" for none, "nan" kept visible."""
    if value is None:
        return "—"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def budgets(res: dict) -> list[int]:
    return sorted({r["nfe_budget"] for r in res["rows"] if r.get("nfe_budget") is not None})


def curve_rows(res: dict) -> list[tuple[str, str]]:
    """(method, library) of every row with an NFE, diffkit first within each method."""
    keys = dict.fromkeys((r["method"], r["library"]) for r in res["rows"] if r["nfe"] is not None)
    order = {m: i for i, m in enumerate(dict.fromkeys(m for m, _ in keys))}
    return sorted(keys, key=lambda k: (order[k[0]], k[1] != "diffkit"))


def metric_table(res: dict, metric: str) -> list[str]:
    nfes = budgets(res)
    lines = [
        f"| sampler | library | {' | '.join(f'NFE {n}' for n in nfes)} |",
        "|---|---|" + "---|" * len(nfes),
    ]
    for method, library in curve_rows(res):
        cells = []
        for n in nfes:
            hit = [
                r
                for r in res["rows"]
                if (r["method"], r["library"], r.get("nfe_budget")) == (method, library, n)
            ]
            if not hit:
                cells.append("—")
                continue
            r = hit[0]
            note = f" ({r['nfe']})" if r["nfe"] != n else ""  # true calls when under budget
            cells.append(fmt(r.get(metric)) + note)
        lines.append(f"| {method} | {library} | {' | '.join(cells)} |")
    for r in res["rows"]:
        if r["nfe"] is None:
            cell = fmt(r.get(metric))
            lines.append(f"| {r['method']} | {r['library']} | {' | '.join([cell] * len(nfes))} |")
    if metric in res.get("floor", {}):
        cell = fmt(res["floor"][metric])
        lines.append(f"| floor | {res.get('floor_label', 'exact')} | "
                     f"{' | '.join([cell] * len(nfes))} |")  # fmt: skip
    return lines


def training_lines(train: dict) -> list[str]:
    """One line per trained model: ``train`` is one summary, or summaries by model name."""
    models = {"": train} if "steps" in train else train
    bullet = "- " if len(models) > 1 else ""
    return [
        f"{bullet}Training{f' {name}' if name else ''}: {t['steps']} steps in {t['seconds']:.1f} s "
        f"({t['steps'] / max(t['seconds'], 1e-9):.1f} steps/s, {t['params']} parameters, "
        f"final loss {fmt(t['final_loss'])})."
        for name, t in models.items()
    ]


def wall_table(res: dict) -> list[str]:
    lines = ["| sampler | library | seconds, all NFE |", "|---|---|---|"]
    totals: dict[tuple[str, str], float] = {}
    for r in res["rows"]:
        if r.get("wall_s") is not None:
            key = (r["method"], r["library"])
            totals[key] = totals.get(key, 0.0) + r["wall_s"]
    lines += [f"| {m} | {lib} | {s:.2f} |" for (m, lib), s in totals.items()]
    return lines


def direction_of(res: dict, metric: str) -> str:
    return "higher is better" if metric in res.get("higher_better", ()) else "lower is better"


def references_line(res: dict) -> str:
    refs = res.get("references", {})
    parts = [f"{name} ({refs.get(name, 'not run')})" for name in res["declared_references"]]
    return "References: " + ", ".join(parts) + "."


def section(res: dict, figures: list[str]) -> list[str]:
    lines = [f"## {res['domain']} / {res['name']}: {res['title']}", ""]
    if res.get("skipped"):
        return [*lines, f"Skipped: {res['skipped']}", ""]
    if res.get("setup"):
        lines += [res["setup"], ""]
    lines += [references_line(res), ""]
    for metric in [res["metric"], *res["metrics"]]:
        unit = res.get("labels", {}).get(metric, metric)
        direction = direction_of(res, metric)
        lines += [f"**{unit}** ({direction}; by {res['nfe_label']}; a cell's (n) is the "
                  "true number of calls where the budget was not met exactly)", ""]  # fmt: skip
        lines += [*metric_table(res, metric), ""]
    if res.get("train"):
        lines += [*training_lines(res["train"]), ""]
    for note in res.get("notes", []):  # e.g. a reference's throughput beside diffkit's
        lines += [note, ""]
    lines += ["Wall time:", "", *wall_table(res), ""]
    cached = " (read from the cache)" if res.get("cached") else ""
    cpu = f", {res['cpu_s']:.1f} s of CPU" if res.get("cpu_s") is not None else ""
    lines += [f"Case wall time {res['wall_s']:.1f} s{cpu}{cached}.", ""]
    lines += [f"![{name}]({name})" for name in figures] + [""]
    return lines


def markdown(header: dict, results: list[dict], figures: dict[str, list[str]]) -> str:
    m, v = header["machine"], header["versions"]
    lines = [
        f"# diffkit bench: {header['suite']} suite",
        "",
        f"`{header['command']}`, {header['date']}.",
        "",
        "| machine | versions | seeds |",
        "|---|---|---|",
        f"| {m['platform']}, {m['processor']}, {m['cpu_cores']} cores, "
        f"{m['torch_threads']} torch threads, device {m['device']}, load average "
        f"{m['load_average_1m']} | "
        + ", ".join(f"{k} {val}" for k, val in v.items())
        + " | "
        + ", ".join(f"{k} {val}" for k, val in header["seeds"].items())
        + " |",
        "",
        f"Samplers {', '.join(header['samplers'])}; NFE budgets "
        f"{', '.join(map(str, header['nfes']))}. Wall times include the machine's other load.",
        "",
    ]
    for res in results:
        lines += section(res, figures.get(res["case"], []))
    return "\n".join(lines)
