"""diffkit's TimeGrad on Exchange (and ETTh1) next to a random walk and GluonTS's DeepAR.

    python benchmarks/timeseries.py --quick   # Exchange, one seed, 500 steps (~5 min)
    python benchmarks/timeseries.py           # Exchange 3 seeds, ETTh1 1 seed, 1000 steps
    python benchmarks/timeseries.py --report-only   # re-render RESULTS.md from results/*.json
    python benchmarks/timeseries.py --scale   # steps/s, memory, forecast time at 370/2,000 series

Exchange is GluonTS's ``exchange_rate_nips`` rebuilt offline from
``../shared/data/exchange_rate/exchange_rate.txt.gz`` (start 1990-01-01, business days,
8 series; train = the first 6,071 rows; 5 rolling test windows of 30). ETTh1 is
``../shared/data/ett/ETTh1.csv`` (hourly, 7 series), its last 7 windows of 24 as test.
Each seed trains TimeGrad through ``diffkit.fit`` (the engine the CLI uses: batches of 64,
lr 1e-3 with warm-up and cosine decay, EMA; 1000 steps, half of TimeGrad's 20 x 100, as
2000 scored the same in tuning) with ``target="difference"`` (see ``TimeGradConfig``), then
forecasts 100 sample paths per window with the ancestral sampler (100 and 20 steps),
DPM-Solver++ (2M, 20 and 10 calls) and SDE-DPM-Solver++ (2M, 20 calls), each repeated with
``--draws`` sampling seeds (2 in the full run) whose metrics are averaged: one draw's
CRPS-sum has a Monte-Carlo spread of about 5%, as large as the gaps between samplers.
Baselines in the same run: a random walk with Gaussian increments (mean and full covariance of the
training range's increments) and GluonTS's torch DeepAR (one model over the series as
univariate items, its defaults, stopped at TimeGrad's training wall time). Metrics are
``diffkit.domains.timeseries.evaluate`` (equal to GluonTS's MultivariateEvaluator).
Writes ``benchmarks/results/timeseries[-quick].{json,md}`` and renders the run's tables into
its section of ``benchmarks/RESULTS.md`` (between the ``<!-- begin NAME -->`` /
``<!-- end NAME -->`` markers); ``--report-only`` re-renders the saved runs without training.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from diffkit.config import DiffusionConfig, TrainConfig, build, parse_sets
from diffkit.domains.timeseries import data as ts_data
from diffkit.domains.timeseries.bench import random_walk
from diffkit.domains.timeseries.domain import (
    DIFFUSION_DEFAULTS,
    TimeSeriesConfig,
    forecast_paths,
)
from diffkit.domains.timeseries.evaluate import evaluate
from diffkit.inference import load_model
from diffkit.runner import RunConfig, fit

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: its sibling module
from results_md import RESULTS
from timeseries_report import markdown, report, update_section

SAMPLERS = (
    ("ddpm", None),
    ("ddpm", 20),
    ("dpmpp_2m", 20),
    ("dpmpp_2m", 10),
    ("dpmpp_2m_sde", 20),
)
DATASETS = {
    # name -> (file under the data folder, model settings)
    "exchange": (
        "exchange_rate/exchange_rate.txt.gz",
        {
            "prediction_length": 30,
            "context_length": 30,
            "freq": "B",
            "start": "1990-01-01",
            "test_windows": 5,
            "train_length": ts_data.EXCHANGE_TRAIN_LENGTH,
            "target": "difference",
        },
    ),
    "etth1": (
        "ett/ETTh1.csv",
        {"prediction_length": 24, "freq": "h", "test_windows": 7, "target": "difference"},
    ),
}


def train_timegrad(path, model, steps, seed, root, overrides=None):
    """Train through the engine; returns (network, split, wall seconds)."""
    overrides = overrides or {}
    train = {"max_steps": steps, "batch_size": 64, "lr": 1e-3, "seed": seed, "log_every": 200}
    train.update(checkpoint_every=steps, **overrides.get("train", {}))
    model = build(TimeSeriesConfig, {**model, **overrides.get("model", {})}, "model")
    run = RunConfig(
        "timeseries",
        model,
        build(TrainConfig, train, "train"),
        build(
            DiffusionConfig, {**DIFFUSION_DEFAULTS, **overrides.get("diffusion", {})}, "diffusion"
        ),
        str(path),
    )
    t0 = time.perf_counter()
    out = fit("timeseries", run, out=root / f"seed{seed}", quiet=True)
    wall = time.perf_counter() - t0
    domain, net, _, _ = load_model(out)
    data = domain.load_data(model, path)
    return net, data.train.split, wall


def forecast_windows(net, split, sampler, steps, seed, num_samples=100):
    """Sample paths (S, Th, D) per test window, and the wall time of the batched forecast."""
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    samples, _ = forecast_paths(
        net,
        list(split.histories),
        num_samples=num_samples,
        sampler=sampler,
        steps=steps,
        generator=g,
    )  # (W, S, Th, D)
    return list(samples.double().numpy()), time.perf_counter() - t0


def deepar(split, budget_s: float, seed: int, root: Path, num_samples=100):
    """GluonTS's torch DeepAR on the series as univariate items, stopped after ``budget_s``."""
    import pandas as pd
    from gluonts.dataset.common import ListDataset
    from gluonts.torch.model.deepar import DeepAREstimator

    freq, Th = split.train.freq, split.prediction_length

    def items(series):
        start = pd.Period(series.index[0], freq=freq)
        return [{"start": start, "target": series.values[:, d]} for d in range(series.dim)]

    torch.manual_seed(seed)
    estimator = DeepAREstimator(
        freq=freq,
        prediction_length=Th,
        context_length=Th,
        trainer_kwargs={
            "max_time": {"seconds": budget_s},
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": False,
            "default_root_dir": str(root / "deepar"),  # GluonTS keeps a best-epoch checkpoint
        },
    )
    t0 = time.perf_counter()
    predictor = estimator.train(ListDataset(items(split.train), freq=freq))
    wall = time.perf_counter() - t0
    out = []
    for history in split.histories:
        forecasts = list(predictor.predict(ListDataset(items(history), freq=freq)))
        out.append(np.stack([f.samples[:num_samples] for f in forecasts], axis=-1))  # (S, Th, D)
    return out, wall


def forecast_metrics(net, split, sampler, calls, seeds):
    """Metrics averaged over forecasts drawn with each of ``seeds``, and the mean wall time.

    One draw of 100 paths x 5 windows scores CRPS-sum with a Monte-Carlo spread of about 5%
    on Exchange, as large as the differences between samplers being compared.
    """
    runs = []
    for seed in seeds:
        samples, wall = forecast_windows(net, split, sampler, calls, seed)
        runs.append({"forecast_s": wall, **evaluate(samples, split.targets).as_dict()})
    return {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}


def run_dataset(name, folder, seeds, steps, root, baselines=True, overrides=None, draws=1):
    file, model = DATASETS[name]
    path = folder / file
    rows = []
    for seed in seeds:
        net, split, train_s = train_timegrad(path, model, steps, seed, root, overrides)
        params = sum(p.numel() for p in net.parameters())
        for sampler, calls in SAMPLERS:
            draw_seeds = [1000 * seed + j for j in range(draws)]
            metrics = forecast_metrics(net, split, sampler, calls, draw_seeds)
            label = f"TimeGrad {sampler}" + (f" {calls}" if calls else " 100")
            rows.append(
                {"model": label, "seed": seed, "train_s": train_s, "params": params, **metrics}
            )
        if not baselines:
            continue
        t0 = time.perf_counter()
        rw = random_walk(split, 100, seed=seed)
        rows.append(
            {
                "model": "random walk",
                "seed": seed,
                "train_s": 0.0,
                "forecast_s": time.perf_counter() - t0,
                "params": 0,
                **evaluate(rw, split.targets).as_dict(),
            }
        )
        samples, deepar_s = deepar(split, train_s, seed, root)
        rows.append(
            {
                "model": "DeepAR (GluonTS)",
                "seed": seed,
                "train_s": deepar_s,
                "forecast_s": float("nan"),
                "params": float("nan"),
                **evaluate(samples, split.targets).as_dict(),
            }
        )
        print(json.dumps(rows[-len(SAMPLERS) - 2 :], indent=1), flush=True)
    return rows


def summary(rows):
    """Mean and std over seeds per model."""
    out = {}
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        keys = [k for k in mine[0] if k not in ("model", "seed")]
        out[model] = {
            k: (float(np.mean([r[k] for r in mine])), float(np.std([r[k] for r in mine])))
            for k in keys
        }
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Exchange, 1 seed, 500 steps")
    parser.add_argument("--data", type=Path, default=None, help="data folder (../shared/data)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--datasets", nargs="+", default=None, choices=sorted(DATASETS))
    parser.add_argument(
        "--set", action="append", default=[], help="KEY=VALUE like diffkit train's (train.lr=2e-3)"
    )
    parser.add_argument(
        "--draws", type=int, default=None, help="forecasts per sampler and model (2; quick 1)"
    )
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs in this folder")
    parser.add_argument("--no-baselines", action="store_true", help="TimeGrad only")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--report-only", action="store_true", help="re-render RESULTS.md from the saved JSON"
    )
    parser.add_argument(
        "--scale", action="store_true", help="cost against the number of series (timeseries_scale)"
    )
    args = parser.parse_args()
    if args.scale:
        from timeseries_scale import run as run_scale

        run_scale([370, 2000], 5, None, args.threads or 1)
        return
    if args.report_only:
        print("rendered", ", ".join(report(args.out)) or "nothing", "into", RESULTS)
        return
    args.steps = args.steps or (500 if args.quick else 1000)
    args.seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    args.draws = args.draws or (1 if args.quick else 2)
    args.datasets = args.datasets or (["exchange"] if args.quick else ["exchange", "etth1"])
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = args.data or Path(
        os.environ.get("DIFFKIT_DATA", Path(__file__).parents[1] / "../shared/data")
    )
    args.command = "python benchmarks/timeseries.py " + " ".join(sys.argv[1:])
    args.machine = f"{os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads"
    results = {"args": {k: str(v) for k, v in vars(args).items()}, "datasets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = args.keep or tmp
        for name in args.datasets:
            seeds = args.seeds if name == "exchange" else args.seeds[:1]  # ETTh1: one seed
            rows = run_dataset(
                name,
                folder,
                seeds,
                args.steps,
                Path(tmp) / name,
                not args.no_baselines,
                parse_sets(args.set),
                args.draws,
            )
            results["datasets"][name] = {"rows": rows, "summary": summary(rows)}
    stem = "timeseries-quick" if args.quick else "timeseries"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=1))
    text = markdown(results, stem)
    (args.out / f"{stem}.md").write_text(text + "\n")
    update_section(stem, text)  # RESULTS.md's tables of this run, between its markers
    print(text)


if __name__ == "__main__":
    main()
