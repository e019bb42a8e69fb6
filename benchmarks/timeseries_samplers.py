"""Which few-call sampler keeps a trained forecaster's quality: validation windows only.

    python benchmarks/timeseries_samplers.py RUN [--dataset etth1] [--data ../shared/data]

Forecasts the validation windows of ``RUN`` (a ``diffkit train --domain timeseries`` run
on one of ``timeseries.py``'s data sets, with its settings) with ancestral sampling at 100
and 20 steps and the 20-call DPM-Solver++, DDIM and UniPC under trailing, linspace and
log-SNR spacings, two draws each, and prints CRPS-sum, CRPS and seconds per sampler. The
test windows are never read. The benchmark's SDE row came from this study.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: its sibling module
from timeseries import DATASETS, forecast_metrics, resolve_config, ts_domain

from diffkit.inference import load_model
from diffkit.sampling.timesteps import using_spacing

ROWS = (
    ("ddpm", None, "trailing"),
    ("ddpm", 20, "trailing"),
    ("dpmpp_2m", 20, "trailing"),
    ("dpmpp_2m_sde", 20, "trailing"),
    ("ddim", 20, "trailing"),
    ("unipc", 20, "trailing"),
    ("dpmpp_2m", 20, "linspace"),
    ("dpmpp_2m", 20, "logsnr"),
    ("dpmpp_2m_sde", 20, "logsnr"),
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a trained run directory")
    parser.add_argument("--dataset", default="etth1", choices=sorted(DATASETS))
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[1] / "../shared/data")
    args = parser.parse_args()
    torch.set_num_threads(1)
    domain, net, _, _ = load_model(args.run, which="best")
    file, model = DATASETS[args.dataset]
    path = args.data / file
    run = resolve_config(ts_domain, {"model": {**model, "target": net.config.target}}, str(path))
    split = domain.load_data(run.model, path).train.split.validation_split()
    net.eval()
    for sampler, steps, spacing in ROWS:
        with using_spacing(spacing), torch.no_grad():
            m = forecast_metrics(net, split, sampler, steps, [0, 1])
        print(
            f"{sampler} {steps or 100} {spacing}: CRPS-sum {m['crps_sum']:.4f} "
            f"CRPS {m['crps']:.4f} ({m['forecast_s']:.1f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
