"""The figures: each case's metric against NFE, and its training curve (matplotlib, Agg).

diffkit's curves are solid with round markers, a reference's dashed with squares in the
same colour as the diffkit sampler it stands beside; references that call no network and
the floor are horizontal lines. NFE is on a log axis, the metric on one where the case says.
"""

from __future__ import annotations

import math
from pathlib import Path

from diffkit.bench.report import curve_rows, direction_of


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plain(only: str = "0123456789"):
    """Tick labels as plain numbers (0.05, not 5e-2), only for leading digits in ``only``."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in only else "")


def _finite(values) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in values)


def metric_figure(res: dict, path: Path, metric: str | None = None) -> Path:
    """``metric`` (default the case's own) vs true NFE for every (sampler, library)."""
    plt = _pyplot()
    from matplotlib.ticker import NullFormatter, NullLocator

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    methods = list(dict.fromkeys(m for m, _ in curve_rows(res)))
    metric, values = metric or res["metric"], []
    unit = res.get("labels", {}).get(metric, res["unit"] if metric == res["metric"] else metric)
    for method, library in curve_rows(res):
        pts = sorted(
            (r["nfe"], r[metric])
            for r in res["rows"]
            if (r["method"], r["library"]) == (method, library) and r.get(metric) is not None
        )
        if not pts:
            continue
        ours = library == "diffkit"
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            linestyle="-" if ours else "--",
            marker="o" if ours else "s",
            markersize=5 if ours else 8,
            fillstyle="full" if ours else "none",  # hollow, so a coinciding curve shows
            color=colours[methods.index(method) % len(colours)],
            alpha=1.0 if ours else 0.8,
            label=f"{method} ({library})",
        )
        values += [p[1] for p in pts]
    flat = [(r["method"], r[metric]) for r in res["rows"] if r["nfe"] is None and metric in r]
    greys, styles = ("dimgray", "darkgray", "gray"), ("-.", ":", (0, (5, 2, 1, 2)))
    for k, (label, value) in enumerate(flat):  # references that call no network
        ax.axhline(value, color=greys[k % 3], linestyle=styles[k % 3], linewidth=1.4, label=label)
        values.append(value)
    if metric in res.get("floor", {}):
        value = res["floor"][metric]
        label = f"floor ({res.get('floor_label', 'exact')})"
        ax.axhline(value, color="black", linestyle="--", linewidth=1.2, label=label)
        values.append(value)
    ax.set_xscale("log")
    wide = _finite(values) and max(values) > 5 * min(values)  # else a log axis has no ticks
    if res["log_y"] and wide and metric not in res.get("higher_better", ()):
        ax.set_yscale("log")
    nfes = sorted({r["nfe_budget"] for r in res["rows"] if r.get("nfe_budget") is not None})
    if nfes:
        ax.set_xticks(nfes, [str(n) for n in nfes])
        ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(_plain())
    ax.yaxis.set_minor_formatter(_plain(only="25") if ax.get_yscale() == "log" else NullFormatter())
    ax.set_xlabel(res["nfe_label"])
    ax.set_ylabel(unit)
    better = direction_of(res, metric)
    ax.set_title(f"{res['domain']} / {res['name']}: {unit} ({better})", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return _save(fig, path, plt)


def curve_figure(res: dict, path: Path) -> Path:
    """Training loss against optimiser step."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    steps, loss = zip(*res["curve"], strict=True)
    ax.plot(steps, loss, color="tab:blue", label="diffkit training loss")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("training loss (per example, batch mean)")
    if _finite(loss):
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(_plain())
        ax.yaxis.set_minor_formatter(_plain(only="25"))
    ax.set_title(f"{res['domain']} / {res['name']}: training curve", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path, plt)


def _save(fig, path: Path, plt) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def figures(results: list[dict], out: Path) -> dict[str, list[str]]:
    """Write every case's figures into ``out``; their file names by case id."""
    names: dict[str, list[str]] = {}
    for res in results:
        if res.get("skipped") or not res["rows"]:
            continue
        made = [metric_figure(res, Path(out) / f"{res['case']}.png").name]
        for metric in res.get("metrics", []):
            made.append(metric_figure(res, Path(out) / f"{res['case']}-{metric}.png", metric).name)
        if res.get("curve"):
            made.append(curve_figure(res, Path(out) / f"{res['case']}-training.png").name)
        names[res["case"]] = made
    return names
