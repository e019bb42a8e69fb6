"""The SMLD row: the images U-Net on the VE (NCSN) schedule beside the VP model, by the CLI.

    python benchmarks/images_smld.py --runs /tmp/smld     # ~30 min on one core
    python benchmarks/images_smld.py --report-only

Both models are trained by ``diffkit train`` on the built-in 8x8 digits, class-conditional,
for the same steps and batch: the VP model with the domain's defaults (linear T = 1000,
v-prediction, min-SNR), the SMLD model with ``--set diffusion.schedule=ve`` (sigma 0.01..50,
continuous time) and NCSN's loss (eps prediction, i.e. denoising score matching with
lambda(sigma) = sigma^2, no extra weighting). Each is scored by ``diffkit evaluate`` with
several samplers: FD-classifier against the held-out digits (floor: training digits against
them), class accuracy by both judges at guidance 0 / 1 / 3, noise tiles, and the network
calls per sample (twice as many with guidance above 0, which evaluates the unconditional
twin too). Writes ``benchmarks/results/images-smld.{json,md}`` and RESULTS.md's section.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from diffkit.sampling.calls import calls

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: its sibling module
from results_md import publish

NAME = "images-smld"
OUT = Path(__file__).parent / "results"
MODELS = {
    "VP (default)": [],
    "SMLD (VE)": [
        "--set=diffusion.schedule=ve",
        "--set=diffusion.prediction=eps",
        "--set=diffusion.weighting=none",
    ],
}
# each row costs its calls x 4 sampling passes (guidance 0, 1, 3 and the plain samples)
ROWS = {
    "VP (default)": [("dpmpp_2m", 20)],
    "SMLD (VE)": [
        ("dpmpp_2m", 20),
        ("langevin", 20),
        ("langevin", 200),
        ("langevin", 10, {"n_steps_each": 100, "step_lr": 2e-5}),  # NCSN's own: 10 x 100 steps
        ("pc", 50),
        ("pc", 200),
    ],
}


def cli(*args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "diffkit.cli", *args], check=True, env=env)


def run(steps: int, tmp: Path, samples: int, reuse_only: bool = False) -> dict:
    """Train each model into ``tmp`` (a run already there is reused) and evaluate it; a
    metrics file already there is read back, and ``reuse_only`` evaluates nothing new."""
    results: dict = {"steps": steps, "samples": samples, "models": {}}
    for name, flags in MODELS.items():
        out = tmp / name.split()[0]
        t0 = time.perf_counter()
        reused = (out / "checkpoints").is_dir()
        if reused:
            flags = [*flags, "--resume"]  # at max_steps already: trains nothing
        train = [
            "train",
            "--domain",
            "images",
            "--class-conditional",
            "--batch-size",
            "64",
            "--quiet",
        ]
        cli(*train, "--max-steps", str(steps), "--set=bpd_steps=0", "--out", str(out), *flags)
        model = {"train_seconds": time.perf_counter() - t0, "reused": reused, "rows": {}}
        for sampler, n, *extra in ROWS[name]:
            options = extra[0] if extra else {}
            given = [f"--sampler-option={k}={v}" for k, v in options.items()]
            suffix = "".join(f"-{k}{v}" for k, v in options.items())
            metrics = tmp / f"{out.name}-{sampler}-{n}{suffix}.json"
            if not metrics.exists() and reuse_only:
                continue  # left for a later invocation
            if not metrics.exists():
                t0 = time.perf_counter()
                cli("evaluate", "--checkpoint", str(out), "--sampler", sampler, "--steps", str(n),
                    "--num-samples", str(samples), "--out", str(metrics), *given)  # fmt: skip
                row = json.loads(metrics.read_text())
                row.update(calls=calls(sampler, n, **options), seconds=time.perf_counter() - t0)
                metrics.write_text(json.dumps(row))  # an interrupted run keeps its rows
            row = json.loads(metrics.read_text())
            row.setdefault("calls", calls(sampler, n, **options))
            label = " ".join([sampler, str(n), *(f"{k}={v}" for k, v in options.items())])
            model["rows"][label] = row
            print(name, sampler, n, json.dumps(row), flush=True)
        results["models"][name] = model
    return results


def markdown(r: dict) -> str:
    lines = [
        *([f"`{r['command']}`.", ""] if "command" in r else []),
        f"Built-in 8x8 digits, class-conditional, {r['steps']} training steps per model at "
        f"batch 64 by `diffkit train`, scored by `diffkit evaluate` ({r['samples']} samples "
        "against the held-out digits; accuracy by the CNN judge / the perceptron judge). "
        "Calls: network calls per sample without guidance (guidance > 0 doubles them). "
        "2-core CPU, 1 torch thread per process; seconds are noisy when other processes run.",
        "",
        "| model | sampler | calls | FD (floor) | accuracy g0 | g1 | g3 | noise tiles | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, model in r["models"].items():
        for label, m in model["rows"].items():
            acc = [
                f"{m[f'class_accuracy_g{g}']:.2f} / {m[f'class_accuracy_mlp_g{g}']:.2f}"
                for g in (0, 1, 3)
            ]
            lines.append(
                f"| {name} | {label} | {m['calls']} | {m['fd']:.1f} ({m['fd_floor']:.1f}) | "
                f"{' | '.join(acc)} | {m['noise_tiles']:.3f} | "
                + (f"{m['seconds']:.0f} |" if "seconds" in m else "- |")
            )
    seconds = ", ".join(
        f"{k} {m['train_seconds']:.0f} s"
        + (" (a run trained before, reused)" if m.get("reused", m["train_seconds"] < 60) else "")
        for k, m in r["models"].items()
    )
    lines += ["", f"Training wall time: {seconds}."]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500, help="training steps per model")
    parser.add_argument("--samples", type=int, default=128, help="samples per evaluation")
    parser.add_argument("--runs", type=Path, help="keep the runs here (default: a temp folder)")
    parser.add_argument("--report-only", action="store_true", help="re-render the saved JSON")
    parser.add_argument(
        "--reuse-only", action="store_true", help="with --runs: only the rows already evaluated"
    )
    args = parser.parse_args()
    if args.report_only:
        results = json.loads((OUT / f"{NAME}.json").read_text())
    elif args.runs is not None:
        results = run(args.steps, args.runs, args.samples, args.reuse_only)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            results = run(args.steps, Path(tmp), args.samples)
    if not args.report_only:
        results["command"] = " ".join(["python benchmarks/images_smld.py", *sys.argv[1:]])
    md = markdown(results)
    publish(OUT, NAME, results, md)
    print(md)


if __name__ == "__main__":
    main()
