"""How TimeGrad's cost grows with the number of series: steps/s, peak memory, forecast time.

    python benchmarks/timeseries.py --scale          # 370 and 2,000 series (~5 min, 1 thread)
    python benchmarks/timeseries_scale.py --dims 8 370 2000 --steps 5

Data: the domain's synthetic generator (``synthetic.py``: a seasonal VAR with a daily
season, hourly, 1,500 steps), at Electricity's 370 and Wikipedia's 2,000 series. Each size
runs in its own process (so its peak memory is its own): the CLI's defaults (TimeGrad's
network, prediction and context 24, batch 64, Adam), ``--steps`` timed training steps after
one warm-up step, then one forecast of the horizon with 100 paths (DPM-Solver++ 2M, 20 calls
per step). Writes ``benchmarks/results/timeseries-scale.{json,md}`` and its RESULTS.md
section.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results" / "timeseries-scale"


def measure(dim: int, steps: int, batch_size: int | None, reference: bool = False) -> dict:
    """Train ``steps`` steps and forecast once at ``dim`` series; the figures as a dict."""
    from torch.utils.data import DataLoader

    from diffkit.domains.timeseries import rolling_windows, seasonal_var, synthetic
    from diffkit.domains.timeseries.domain import (
        TRAIN_DEFAULTS,
        TimeSeriesConfig,
        build_network,
        complete,
        forecast_paths,
        loss,
    )
    from diffkit.domains.timeseries.windows import WindowDataset

    torch.manual_seed(0)
    series = synthetic(1500, seasonal_var(dim, period=24, seed=0), freq="h")
    config = complete(TimeSeriesConfig(), series)
    if reference:  # the reference's sizes: every position, an uncapped upsampler
        network = dataclasses.replace(
            config.network,
            max_loss_values=None,
            denoiser=dataclasses.replace(config.network.denoiser, max_cond_hidden=10**9),
        )
        config = dataclasses.replace(config, network=network)
    net = build_network(config)
    split = rolling_windows(series, config.network.prediction_length, 1)
    batch = batch_size or TRAIN_DEFAULTS["batch_size"]
    loader = DataLoader(WindowDataset(split, config.network), batch_size=batch, shuffle=True)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    batches = iter(loader)

    def step():
        out = loss(net, next(batches), net.schedule, prediction="eps", weighting=None)
        optimiser.zero_grad()
        out.mean().backward()
        optimiser.step()

    step()  # warm-up: allocations, first-call overheads
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    cpu = (time.process_time() - cpu) / steps  # this process's CPU time: less hit by load
    train_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # GiB (KiB units)
    start = time.perf_counter()
    forecast_paths(
        net.eval(), [split.histories[0]], num_samples=100, sampler="dpmpp_2m", steps=20,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    return {
        "series": dim,
        "reference_sizes": reference,
        "batch_size": batch,
        "seconds_per_step": seconds,
        "steps_per_s": 1 / seconds,
        "cpu_seconds_per_step": cpu,
        "cpu_steps_per_s": 1 / cpu,
        "train_peak_gib": train_peak,
        "forecast_s": time.perf_counter() - start,
        "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "parameters": sum(p.numel() for p in net.parameters()),
    }


def markdown(result: dict) -> str:
    rows = result["rows"]
    lines = [
        "### Scale: cost per training step against the number of series"
        + " (the reference's sizes: every loss position, uncapped upsampler)"
        * rows[0]["reference_sizes"],
        "",
        f"`{result['command']}` ({result['machine']}). Training: batch of 64 windows of the "
        "CLI's defaults (prediction and context 24, hourly lags 1, 24, 168); forecast: one "
        "window, 100 paths, DPM-Solver++ 2M at 20 calls per step (wall time); peak memory is the "
        "process's. Steps/s from CPU time is what one free core would give; the wall figure "
        "carries the load of the other jobs on the machine.",
        "",
        "| series | parameters | steps/s (wall) | steps/s (CPU time) | CPU s per step per "
        "1,000 series | peak memory (GiB) | forecast (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per = r["cpu_seconds_per_step"] / r["series"] * 1000
        lines.append(
            f"| {r['series']} | {r['parameters']:,} | {r['steps_per_s']:.2f} | "
            f"{r['cpu_steps_per_s']:.2f} | {per:.3f} | {r['peak_gib']:.2f} | "
            f"{r['forecast_s']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def run(dims, steps: int, batch_size: int | None, threads: int, reference: bool = False) -> dict:
    """Measure each size in a child process; write JSON, markdown and the RESULTS.md section."""
    rows = []
    for dim in dims:
        command = [sys.executable, __file__, "--case", str(dim), "--steps", str(steps)]
        command += ["--threads", str(threads), "--reference"][: 3 if reference else 2]
        command += ["--batch-size", str(batch_size)] if batch_size else []
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    name = "timeseries-scale-reference" if reference else "timeseries-scale"
    flags = f"--dims {' '.join(map(str, dims))} --steps {steps}" + " --reference" * reference
    result = {
        "command": f"python benchmarks/timeseries_scale.py {flags}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {threads} torch thread(s), "
        "load from other jobs",
        "rows": rows,
    }
    out = RESULTS.parent / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    out.with_suffix(".md").write_text(text)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from results_md import update_section

    update_section(name, text)
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[370, 2000])
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per size")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the CLI's")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--reference", action="store_true", help="every loss position, uncapped upsampler"
    )
    parser.add_argument("--case", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.case is not None:
        print(json.dumps(measure(args.case, args.steps, args.batch_size, args.reference)))
        return
    print(markdown(run(args.dims, args.steps, args.batch_size, args.threads, args.reference)))


if __name__ == "__main__":
    main()
