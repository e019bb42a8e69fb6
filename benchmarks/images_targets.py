"""Issue 18's image targets, judged from a run's saved JSON (``benchmarks/images.py``).

Class accuracy of the class-conditional samples at least 0.95 for both judges (the CNN behind
FD and the independently trained MLP) at the best guidance scale, for the pixel and the
latent model; FD-classifier at most 3x the floor (pixel) and 2x (latent); DPM-Solver++(2M)
at 20 calls within 10% of the ancestral sampler's FD; diffkit's training throughput at least
diffusers' and its held-out noise-prediction error after equal steps no worse. Imports
nothing heavy, like :mod:`images_report`.
"""

from __future__ import annotations

ACCURACY = 0.95  # the least class accuracy, for each judge
FD_LIMITS = {"pixel": 3.0, "latent": 2.0}  # the largest FD / floor
SOLVER_LIMIT = 1.1  # DPM-Solver++(2M) 20's FD over the ancestral sampler's
JUDGES = {"class_accuracy": "CNN", "class_accuracy_mlp": "MLP"}  # key -> judge


def best_guidance(by_guidance: dict) -> str:
    """The guidance scale whose lower accuracy of the two judges is highest (the smaller
    scale on a tie): where both judges are judged, and the sample grid is drawn."""
    return max(by_guidance, key=lambda k: (min(by_guidance[k][j] for j in JUDGES), -float(k)))


def lowest_fd(by_guidance: dict) -> str:
    """The guidance scale with the lowest FD-classifier."""
    return min(by_guidance, key=lambda k: by_guidance[k]["fd"])


def floor(r: dict) -> tuple[float, str]:
    """The FD floor the targets divide by: training images against held-out ones, as many
    training images as samples per row (FD grows as the sample shrinks)."""
    at = r.get("fd_floor_at_samples")
    if at is None:
        return r["fd_floor"], "floor (2,000 training images)"
    return at["fd"], f"floor ({at['n']:,} training images)"


Target = tuple[str, str, float, str, float, float, bool]
# (target, figure's name, figure, against's name, against, the limit of figure / against,
#  whether the ratio must reach the limit (higher is better) rather than stay under it)


def row(
    target: str, figure: str, value: float, against: str, other: float, limit: float, higher: bool
) -> str:
    """One line of the table: the figure, what it is compared with, their ratio, the verdict."""
    ratio = value / other
    verdict = "met" if (ratio >= limit if higher else ratio <= limit) else "**missed**"
    cells = (target, f"{figure}: {value:.4g}", f"{against}: {other:.4g}", f"{ratio:.3f}")
    return "| " + " | ".join([*cells, verdict]) + " |"


def accuracy_targets(r: dict) -> list[Target]:
    out = []
    for model in ("pixel", "latent"):
        by = r[model]["by_guidance"]
        scale = best_guidance(by)
        for key, judge in JUDGES.items():
            text = f"{model}: class accuracy >= {ACCURACY} ({judge} judge)"
            out.append((text, f"guidance {scale}", by[scale][key], "target", ACCURACY, 1.0, True))
    return out


def fd_targets(r: dict) -> list[Target]:
    low, name = floor(r)
    out = []
    for model, limit in FD_LIMITS.items():
        by = r[model]["by_guidance"]
        scale = lowest_fd(by)
        text = f"{model}: FD <= {limit:g}x floor"
        out.append((text, f"guidance {scale}", by[scale]["fd"], name, low, limit, False))
    return out


def solver_target(r: dict) -> Target:
    samplers = r["pixel"]["samplers"]
    slow = next(k for k in samplers if k.startswith("ancestral"))
    fast = "DPM-Solver++ 20"
    text = f"pixel: DPM-Solver++(2M) 20 FD <= {SOLVER_LIMIT:g}x {slow}"
    return (text, fast, samplers[fast]["fd"], slow, samplers[slow]["fd"], SOLVER_LIMIT, False)


def diffusers_targets(r: dict) -> list[Target]:
    h, tp = r["held_out_error"], r["throughput"]["images_per_s"]
    ours, theirs = h["diffkit"], h["diffusers UNet2DModel"]
    equal = f"{h['steps']} equal steps, batch {h['batch']}"
    best = f"DDPM layout, best of {r['settings']['timed']} steps"
    rate, mse = "images_per_s", "held_out_mse"
    return [
        (f"throughput >= diffusers' (recipe layout, {equal})", "diffkit images/s", ours[rate],
         "diffusers", theirs[rate], 1.0, True),
        (f"throughput >= diffusers' ({best})", "diffkit images/s", tp["diffkit"], "diffusers",
         tp["diffusers"], 1.0, True),
        (f"held-out eps MSE <= diffusers' ({equal})", "diffkit", ours[mse], "diffusers",
         theirs[mse], 1.0, False),
    ]  # fmt: skip


def markdown(r: dict) -> str:
    """The targets table of a run (one saved with ``by_guidance`` and ``held_out_error``)."""
    targets = [*accuracy_targets(r), *fd_targets(r), solver_target(r), *diffusers_targets(r)]
    lines = [
        "Targets (issue 18): accuracy at the guidance scale whose lower judge accuracy is "
        "highest, FD at the scale with the lowest FD; ratio = figure / what it is compared "
        "with (higher is better for accuracy and throughput, lower for FD and error).",
        "",
        "| target | figure | against | ratio | verdict |",
        "|---|---|---|---|---|",
        *(row(*t) for t in targets),
    ]
    return "\n".join(lines)
