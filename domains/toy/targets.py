"""The toy accuracy targets, judged from a mixture case's own rows.

At 10 calls diffkit's best sampler (over samplers and spacings run) reaches at most 0.8x the
sliced W1 of diffusers' best; at 20 calls no more than diffusers' best; at 50 calls within
1.2x of the noise floor (fresh exact samples). The fitted steps (``"<sampler> fitted"``
rows), at 5 and at 10 calls: at most 0.5x diffusers' best scheduler with its best spacing
option, and at most 0.7x diffkit's best fixed spacing (every diffkit row but the fitted
ones). A budget the run did not include is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

# (NFE budget, diffkit rows judged, what their best is divided by, largest ratio, the target);
# rows: "best" every diffkit row, "fitted" the fitted ones; against: "diffusers" its best
# row, "fixed" diffkit's best row that is not fitted, "floor" the noise floor
TARGETS = (
    (10, "best", "diffusers", 0.8, "10 NFE: diffkit best <= 0.8x diffusers best"),
    (20, "best", "diffusers", 1.0, "20 NFE: no worse than diffusers best"),
    (50, "best", "floor", 1.2, "50 NFE: within 1.2x of the noise floor"),
    (5, "fitted", "diffusers", 0.5, "5 NFE: fitted steps <= 0.5x diffusers best"),
    (5, "fitted", "fixed", 0.7, "5 NFE: fitted steps <= 0.7x diffkit best fixed spacing"),
    (10, "fitted", "diffusers", 0.5, "10 NFE: fitted steps <= 0.5x diffusers best"),
    (10, "fitted", "fixed", 0.7, "10 NFE: fitted steps <= 0.7x diffkit best fixed spacing"),
)
SELECT = {
    "best": ("diffkit", lambda m: True),
    "fitted": ("diffkit", lambda m: m.endswith(" fitted")),
    "fixed": ("diffkit", lambda m: not m.endswith(" fitted")),
    "diffusers": ("diffusers", lambda m: True),
}
SUFFIX = {"diffusers": " (diffusers)", "fixed": " (fixed)"}


def best(
    rows: list[dict], library: str, nfe: int, metric: str = "sw1", methods=lambda m: True
) -> dict | None:
    """The row of ``library`` at budget ``nfe`` whose method ``methods`` accepts, with the
    lowest ``metric``, or None."""
    scored = [
        r
        for r in rows
        if r["library"] == library
        and r.get("nfe_budget") == nfe
        and r.get(metric) is not None
        and methods(r["method"])
    ]
    return min(scored, key=lambda r: r[metric], default=None)


def markdown(rows: list[dict], floor: float, metric: str = "sw1") -> str:
    """A table of the targets: the ratio, the diffkit method behind it, met or missed."""
    lines = [
        f"Targets ({metric}; 'best' is the lowest over the methods run at that budget):",
        "",
        "| target | diffkit best | against | ratio | verdict |",
        "|---|---|---|---|---|",
    ]
    for nfe, mine, judge, limit, text in TARGETS:
        ours = best(rows, SELECT[mine][0], nfe, metric, SELECT[mine][1])
        other = (
            best(rows, SELECT[judge][0], nfe, metric, SELECT[judge][1])
            if judge != "floor"
            else None
        )
        if ours is None or (judge != "floor" and other is None):
            lines.append(f"| {text} | — | not run | — | — |")
            continue
        against = other[metric] if other else floor
        name = f"{other['method']}{SUFFIX[judge]}" if other else "noise floor"
        ratio = ours[metric] / against
        verdict = "met" if ratio <= limit else "**missed**"
        lines.append(
            f"| {text} | {ours['method']}: {ours[metric]:.4g} | {name}: {against:.4g} | "
            f"{ratio:.2f} | {verdict} |"
        )
    return "\n".join(lines)


def noted(run: Callable[..., dict]) -> Callable[..., dict]:
    """``run`` (a mixture case's) with the targets table added to its result's notes."""

    @wraps(run)
    def with_targets(context) -> dict:
        res = run(context)
        res["notes"] = [*res.get("notes", []), markdown(res["rows"], res["floor"]["sw1"])]
        return res

    return with_targets
