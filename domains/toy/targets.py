"""The toy accuracy targets, judged from a mixture case's own rows.

At 10 calls diffkit's best sampler (over samplers and spacings run) reaches at most 0.8x the
sliced W1 of diffusers' best; at 20 calls no more than diffusers' best; at 50 calls within
1.2x of the noise floor (fresh exact samples). A budget the run did not include is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

# (NFE budget, what the best diffkit row is divided by, the largest ratio allowed, the target)
TARGETS = (
    (10, "diffusers", 0.8, "10 NFE: diffkit best <= 0.8x diffusers best"),
    (20, "diffusers", 1.0, "20 NFE: no worse than diffusers best"),
    (50, "floor", 1.2, "50 NFE: within 1.2x of the noise floor"),
)


def best(rows: list[dict], library: str, nfe: int, metric: str = "sw1") -> dict | None:
    """The row of ``library`` at budget ``nfe`` with the lowest ``metric``, or None."""
    scored = [
        r
        for r in rows
        if r["library"] == library and r.get("nfe_budget") == nfe and r.get(metric) is not None
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
    for nfe, judge, limit, text in TARGETS:
        ours = best(rows, "diffkit", nfe, metric)
        other = best(rows, "diffusers", nfe, metric) if judge == "diffusers" else None
        if ours is None or (judge == "diffusers" and other is None):
            lines.append(f"| {text} | — | not run | — | — |")
            continue
        against = other[metric] if other else floor
        name = f"{other['method']} (diffusers)" if other else "noise floor"
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
