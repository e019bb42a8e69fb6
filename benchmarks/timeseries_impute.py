"""``diffkit impute`` against linear interpolation, scored by CRPS on values hidden on purpose.

    python benchmarks/timeseries_impute.py            # 1,500 steps, 2 draws (~10 min, 1 thread)
    python benchmarks/timeseries_impute.py --steps 300 --samples 20   # a smoke run

TimeGrad is trained through the CLI's engine on the domain's default data (the seasonal
VAR of ``synthetic.py``, 8 series, 1,000 days). Imputation is scored on two fresh draws of
the same process the model never saw: a *validation* draw, on which the default
(``--resample`` or not) is chosen, and a *test* draw reported once. In each, 12 blocks of
10 consecutive days of one series and 1% of single cells are hidden; what the model sees is
everything else. CRPS is the weighted quantile loss of ``evaluate`` (GluonTS's
``mean_wQuantileLoss``) over the hidden cells; a point (linear interpolation in time,
pandas' ``interpolate``) scores its normalised absolute error there. Writes
``benchmarks/results/timeseries-impute.{json,md,png}`` and its RESULTS.md section.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from diffkit.domains.timeseries import Series, synthetic
from diffkit.domains.timeseries.evaluate import evaluate
from diffkit.domains.timeseries.impute import impute_paths, save_impute_chart
from diffkit.inference import load_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_md import update_section

RESULTS = Path(__file__).resolve().parent / "results"


def hidden_cells(shape, seed: int, blocks: int = 12, width: int = 10, single: float = 0.01):
    """A boolean (T, D) mask: ``blocks`` runs of ``width`` steps of one series, plus singles."""
    rng = np.random.default_rng(seed)
    T, D = shape
    hide = rng.random(shape) < single
    for _ in range(blocks):
        start, d = rng.integers(50, T - width - 1), rng.integers(D)
        hide[start : start + width, d] = True
    hide[:50] = False  # the first steps have no past to condition on
    return hide


def crps_on(samples: np.ndarray, truth: np.ndarray, hide: np.ndarray) -> float:
    """CRPS over the hidden cells of sample paths (S, T, D) or a point (T, D)."""
    samples = samples if samples.ndim == 3 else samples[None]
    cells = samples[:, hide][:, :, None]  # (S, N, 1)
    return evaluate([cells], [truth[hide][:, None]]).crps


def interpolate(values: np.ndarray) -> np.ndarray:
    frame = pd.DataFrame(values).interpolate(method="linear", limit_direction="both")
    return frame.to_numpy()


def train(out: Path, steps: int, seed: int) -> float:
    command = [
        sys.executable, "-m", "diffkit.cli", "train", "--domain", "timeseries", "--out", str(out),
        "--max-steps", str(steps), "--seed", str(seed), "--quiet", "--threads", "1",
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def score_draw(net, seed: int, args, generator_seed: int) -> dict:
    truth = synthetic(1000, seed=seed)
    hide = hidden_cells(truth.values.shape, seed)
    values = truth.values.copy()
    values[hide] = np.nan
    holes = Series(values, truth.index, truth.names, truth.freq)
    row = {
        "seed": seed,
        "hidden": int(hide.sum()),
        "interpolation": crps_on(interpolate(values), truth.values, hide),
    }
    paths = {}
    for resample in (True, False):
        crps, seconds = [], []
        for draw in range(args.draws):
            g = torch.Generator().manual_seed(generator_seed + draw)
            start = time.perf_counter()
            p = impute_paths(
                net, holes, num_samples=args.samples, sampler=args.sampler, steps=args.nfe,
                generator=g, resample=resample,
            )  # fmt: skip
            seconds.append(time.perf_counter() - start)
            crps.append(crps_on(p, truth.values, hide))
            paths[resample] = p
        key = "diffkit_resample" if resample else "diffkit_no_resample"
        row[key] = float(np.mean(crps))
        row[key + "_std"] = float(np.std(crps))
        row[key + "_seconds"] = float(np.mean(seconds))
    return row, holes, paths


def markdown(result: dict) -> str:
    chosen = result["chosen"]
    seconds = result["train_seconds"]
    trained = f"{seconds:.0f} s" if seconds else "trained by an earlier run of this script"
    lines = [
        "### Imputation (`diffkit impute`) against linear interpolation",
        "",
        f"`{result['command']}`: TimeGrad trained {result['train_steps']} steps on the default "
        f"seasonal VAR ({trained}, {result['machine']}); CRPS on the "
        f"hidden cells of fresh draws, {result['samples']} paths ({result['sampler']}, "
        f"{result['nfe']} calls per step), mean ± std over "
        f"{result['draws']} sampling draws. Default chosen on the validation draw: "
        f"`--{'resample' if chosen else 'no-resample'}`.",
        "",
        "| draw | hidden cells | linear interpolation | diffkit --resample | diffkit --no-resample"
        " | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("validation", "test"):
        r = result[name]
        lines.append(
            f"| {name} | {r['hidden']} | {r['interpolation']:.4f} | "
            f"{r['diffkit_resample']:.4f} ± {r['diffkit_resample_std']:.4f} | "
            f"{r['diffkit_no_resample']:.4f} ± {r['diffkit_no_resample_std']:.4f} | "
            f"{r['diffkit_resample_seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500, help="Training steps.")
    parser.add_argument("--samples", type=int, default=50, help="Paths per hidden value.")
    parser.add_argument("--draws", type=int, default=2, help="Sampling seeds per method.")
    parser.add_argument("--seed", type=int, default=0, help="Training seed.")
    parser.add_argument("--sampler", default="dpmpp_2m", help="Sampler of the drawn steps.")
    parser.add_argument("--nfe", type=int, default=20, help="Model calls per drawn step.")
    parser.add_argument("--results", type=Path, default=RESULTS / "timeseries-impute")
    parser.add_argument("--run", type=Path, default=None, help="a run it trained before (skip)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or Path(tmp) / "run"
        seconds = None if args.run else train(run, args.steps, args.seed)
        _, net, _, _ = load_model(run)
        validation, _, _ = score_draw(net, 101, args, 0)
        test, holes, paths = score_draw(net, 202, args, 10)
    chosen = validation["diffkit_resample"] <= validation["diffkit_no_resample"]
    import platform

    result = {
        "command": "python benchmarks/timeseries_impute.py "
        + " ".join(f"--{k} {v}" for k, v in vars(args).items() if k not in ("results", "run")),
        "train_steps": args.steps,
        "train_seconds": seconds,
        "samples": args.samples,
        "sampler": args.sampler,
        "nfe": args.nfe,
        "draws": args.draws,
        "machine": f"{platform.machine()} CPU, 1 torch thread, shared by other jobs",
        "chosen": bool(chosen),
        "validation": validation,
        "test": test,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    args.results.with_suffix(".md").write_text(text)
    save_impute_chart(holes, paths[chosen], args.results.with_suffix(".png"))
    update_section("timeseries-impute", text)
    print(text)


if __name__ == "__main__":
    main()
