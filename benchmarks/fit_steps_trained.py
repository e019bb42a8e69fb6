"""Fitted steps on a trained model: the toy MLP, fitted through `diffkit fit-steps`' own path.

    python benchmarks/fit_steps_trained.py    # trains the toy MLP (3,000 steps), then ~5 min

Trains the toy domain's MLP on the 8-mode ring (seed 0) into ``runs/fit-steps-toy``, fits
each sampler's 10-call steps to the checkpoint with :func:`diffkit.fitted.fit_checkpoint`
(2,048 calibration samples, seed 10: the network's own ODE map is the reference, not the
data), then draws 20,000 samples (seed 0, noise the fit never saw) with the fitted steps and
with every fixed spacing, and scores them against the exact ring as ``fit_steps.py`` does.
Writes ``benchmarks/results/fit-steps/fit-steps-trained.{json,md,png}`` and its RESULTS.md
section.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import torch

import diffkit
from diffkit import toy
from diffkit.fitted import fit_checkpoint
from diffkit.inference import sample_checkpoint
from diffkit.registry import get_domain
from diffkit.runner import resolve_config
from diffkit.sampling import SPACINGS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fit_steps import figure
from fit_steps_tables import environment, score
from results_md import publish

SAMPLERS = ("dpmpp_2m", "dpmpp_3m", "unipc")
NFE = 10


def train(out: Path, steps: int) -> Path:
    if (out / "checkpoints").is_dir():
        return out  # trained already: the same seed gives the same run
    config = resolve_config(
        get_domain("toy"),
        {"train": {"max_steps": steps, "seed": 0, "accelerator": "cpu"}},
    )
    return diffkit.fit("toy", config, out=out, quiet=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-steps", type=int, default=3000)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--calib", type=int, default=2048)
    parser.add_argument("--run", type=Path, default=Path("runs/fit-steps-toy"))
    parser.add_argument("--note", default="", help="a sentence on the machine's load, for the md")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "fit-steps")
    args = parser.parse_args()
    torch.set_num_threads(1)
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    t0 = time.time()
    run = train(args.run, args.train_steps)
    trained_s = time.time() - t0
    ring = toy.ring()
    g = torch.Generator().manual_seed(0)
    exact = [ring.sample(args.samples, g) for _ in range(3)]
    floor = sum(score(ring, ring.sample(args.samples, g), exact)[0] for _ in range(3)) / 3
    rows, fits = [], []
    for sampler in SAMPLERS:
        _, res = fit_checkpoint(run, sampler=sampler, nfe=NFE, n=args.calib, seed=10, device="cpu")
        fits.append({**res.to_json(), "name": sampler})
        print(f"{sampler}: fitted in {res.seconds:.0f} s", flush=True)
        for spacing in ("fitted", *SPACINGS):
            x = sample_checkpoint(
                run, args.samples, sampler=sampler, steps=NFE, seed=0, spacing=spacing, device="cpu"
            )
            rows.append(
                {
                    "library": "diffkit",
                    "sampler": sampler,
                    "spacing": spacing,
                    "nfe_budget": NFE,
                    "nfe": res.nfe,
                    "sw1": score(ring, x, exact)[0],
                }
            )
    results = {
        **environment(),
        "n": args.samples,
        "calib": args.calib,
        "nfes": [NFE],
        "train_steps": args.train_steps,
        "train_seconds": trained_s,
        "problems": {"toy MLP, 8-mode ring": {"floor": floor, "rows": rows, "fits": fits}},
    }
    results["load"].append(os.getloadavg()[0])
    figure(results, args.out / "fit-steps-trained.png")
    md = markdown(results, command)
    print(publish(args.out, "fit-steps-trained", results, md, args.note))


def markdown(results, command) -> str:
    res = results["problems"]["toy MLP, 8-mode ring"]
    lines = [
        f"Command: `{command}` (toy MLP trained {results['train_steps']} steps; "
        f"{results['n']} scored samples, calibration {results['calib']}, {NFE} model calls, "
        f"one torch thread, load average {results['load'][0]:.1f}-{results['load'][-1]:.1f}); "
        f"noise floor {res['floor']:.4f}; output `benchmarks/results/fit-steps/"
        "fit-steps-trained.{json,md,png}`.",
        "",
        "| sampler | fitted SW1 | best fixed (SW1) | ratio | fit s | "
        + " | ".join(SPACINGS)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(SPACINGS),
    ]
    for fit in res["fits"]:
        mine = {r["spacing"]: r["sw1"] for r in res["rows"] if r["sampler"] == fit["name"]}
        fixed = {k: v for k, v in mine.items() if k != "fitted"}
        b = min(fixed, key=fixed.get)
        lines.append(
            f"| {fit['name']} | {mine['fitted']:.4f} | {fixed[b]:.4f} ({b}) | "
            f"{mine['fitted'] / fixed[b]:.2f} | {fit['seconds']:.0f} | "
            + " | ".join(f"{fixed[k]:.4f}" for k in SPACINGS)
            + " |"
        )
    return "\n".join(lines) + "\n\n![fitted vs fixed](results/fit-steps/fit-steps-trained.png)\n"


if __name__ == "__main__":
    main()
