"""diffkit's time-series defaults on Exchange and ETTh1, chosen on validation windows only.

    python benchmarks/timeseries.py --tune --quick  # candidates on validation (~15 min loaded)
    python benchmarks/timeseries.py --quick         # Exchange, one seed, 300 steps
    python benchmarks/timeseries.py                 # both data sets, 3 seeds, CLI defaults
    python benchmarks/timeseries.py --report-only   # re-render RESULTS.md from results/*.json
    python benchmarks/timeseries.py --scale   # steps/s, memory, forecast time at 370/2,000 series

Protocol (GluonTS style, :func:`diffkit.domains.timeseries.series.rolling_windows`): the
test windows are the last k windows (Exchange: GluonTS's ``exchange_rate_nips``, 5 windows
of 30 after its first 6,071 rows; ETTh1: the last 7 windows of 24); the validation windows
are the windows just before them (Exchange: 5; ETTh1: 28, four weeks), and training reads
only the steps before those. The validation loss (the horizon's diffusion loss of the EMA
network) picks the checkpoint and stops training early; the validation CRPS-sum
(``--tune``) picks the configuration among ``CANDIDATES``, and each 20-call sampler's own
the one the 20-call targets judge; the test windows are forecast once per trained model,
never for a choice. Every model trains through ``resolve_config`` + ``diffkit.fit``, so the
default row is exactly ``diffkit train --domain timeseries --data F`` plus the data set's
horizon, frequency and windows. Each seed's model forecasts 100 paths per window with the
ancestral sampler (100 steps) and DPM-Solver++(2M), ODE and SDE (20 calls), each repeated
with ``--draws`` sampling seeds whose metrics are averaged. Beside it, in the same run:
TimeGrad's own formulation (``architecture=timegrad``, ``target=level``: the reference,
unless the default is it), a random walk with Gaussian increments, and GluonTS's torch
DeepAR (univariate items, its defaults, stopped at the default's training wall time). Metrics are
``diffkit.domains.timeseries.evaluate`` (GluonTS's MultivariateEvaluator). Writes
``benchmarks/results/timeseries[-quick|-tune].{json,md}`` (and a PNG of the test CRPS-sum per
model) and its section of ``benchmarks/RESULTS.md``.
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

from diffkit.config import parse_sets
from diffkit.domains.timeseries import data as ts_data
from diffkit.domains.timeseries.bench import deepar, random_walk, seasonal_naive
from diffkit.domains.timeseries.domain import domain as ts_domain
from diffkit.domains.timeseries.domain import forecast_paths
from diffkit.domains.timeseries.evaluate import evaluate
from diffkit.inference import load_model
from diffkit.runner import fit, resolve_config

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: its sibling module
from results_md import RESULTS
from timeseries_report import markdown, plot, report, update_section
from timeseries_tune import CANDIDATES, merged, tune_dataset, validation_count

# ancestral 100, and two DPM-Solver++ variants at 20 calls: the ODE's and the SDE's, which
# the targets choose between by each one's own validation CRPS-sum (val_sampler_crps_sum)
SAMPLERS = (("ddpm", 100), ("dpmpp_2m", 20), ("dpmpp_2m_sde", 20))
VALIDATION_SAMPLER = ("dpmpp_2m", 20)  # the validation CRPS: 5x cheaper than ancestral
DATASETS = {
    # name -> (file under the data folder, the data set's own settings: horizon, grid, windows)
    "exchange": (
        "exchange_rate/exchange_rate.txt.gz",
        {
            "prediction_length": 30,
            "context_length": 30,
            "freq": "B",
            "start": "1990-01-01",
            "test_windows": 5,
            "train_length": ts_data.EXCHANGE_TRAIN_LENGTH,
        },
    ),
    # ETTh1's validation is four weeks before the test week: one week (as many windows as the
    # test's) was too seasonal to stand for it (seasonal naive CRPS-sum 0.159 there and 0.262
    # on the test week, 0.253 on four weeks; `--diagnose`), and it picked the seasonal target
    "etth1": (
        "ett/ETTh1.csv",
        {"prediction_length": 24, "freq": "h", "test_windows": 7, "validation_windows": 28},
    ),
}
REFERENCE = {"architecture": "timegrad", "target": "level"}  # TimeGrad's own formulation
LABELS = {"timegrad": "TimeGrad", "horizon": "horizon"}  # the rows' names, by architecture


def default_label(model: dict, sections: dict | None = None) -> str:
    """The name of the rows of what the defaults train for a data set's settings ``model``."""
    sections = sections or {}
    merged = {**sections, "model": {**model, **sections.get("model", {})}}
    return LABELS[resolve_config(ts_domain, merged).model.network.architecture]


def train_timegrad(path, model, seed, out, sections=None):
    """Train with the CLI's defaults plus ``model`` into ``out``; (network, split, info).

    The network is the checkpoint the validation loss chose (``best.json``).
    """
    sections = sections or {}
    merged = {
        **sections,
        "model": {**model, **sections.get("model", {})},
        "train": {"seed": seed, **sections.get("train", {})},
    }
    run = resolve_config(ts_domain, merged, str(path))
    t0, c0 = time.perf_counter(), time.process_time()
    fit(ts_domain, run, out=out, quiet=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    domain, net, _, found = load_model(out, which="best")
    data = domain.load_data(run.model, path)
    steps = sorted(int(p.name.split("-")[1]) for p in (out / "checkpoints").glob("step-*"))
    info = {
        "target": net.config.target,  # what "auto" chose
        "architecture": net.config.architecture,
        "train_s": wall,
        "train_cpu_s": cpu,
        "best_step": int(found.path.name.split("-")[1]),
        "last_step": steps[-1],
        "val_loss": float(json.loads((out / "checkpoints" / "best.json").read_text())["val_loss"]),
        "params": sum(p.numel() for p in net.parameters()),
    }
    return net, data.train.split, info


def forecast_windows(net, split, sampler, steps, seed, num_samples=100):
    """Sample paths (S, Th, D) per window of ``split``, and the batched forecast's seconds."""
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


def forecast_metrics(net, split, sampler, calls, seeds):
    """Metrics averaged over forecasts drawn with each of ``seeds``, and the mean wall time."""
    runs = []
    for seed in seeds:
        samples, wall = forecast_windows(net, split, sampler, calls, seed)
        runs.append({"forecast_s": wall, **evaluate(samples, split.targets).as_dict()})
    return {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}


def validation_metrics(net, split, seed) -> dict:
    """CRPS-sum and CRPS on the validation windows (one draw of VALIDATION_SAMPLER)."""
    m = forecast_metrics(net, split.validation_split(), *VALIDATION_SAMPLER, [seed])
    return {"val_crps_sum": m["crps_sum"], "val_crps": m["crps"]}


def test_rows(label, net, split, info, seed, draws, samplers=SAMPLERS):
    """One row per sampler: the test windows' metrics, forecast once per draw seed; a
    sampler of few calls also gets its own validation CRPS-sum (one draw), to choose by."""
    rows, val = [], validation_metrics(net, split, seed)
    for sampler, calls in samplers:
        metrics = forecast_metrics(
            net, split, sampler, calls, [1000 * seed + j for j in range(draws)]
        )
        own = {}
        if (sampler, calls) == VALIDATION_SAMPLER:  # the same draw as val's
            own = {"val_sampler_crps_sum": val["val_crps_sum"]}
        elif sampler != "ddpm":
            checked = forecast_metrics(net, split.validation_split(), sampler, calls, [seed])
            own = {"val_sampler_crps_sum": checked["crps_sum"]}
        rows.append(
            {
                "model": f"{label} {sampler} {calls or 100}",
                "seed": seed,
                **info,
                **val,
                **own,
                **metrics,
            }
        )
    return rows


def random_walk_row(split, seed) -> dict:
    t0 = time.perf_counter()
    rw = evaluate(random_walk(split, 100, seed=seed), split.targets).as_dict()
    wall = time.perf_counter() - t0
    return {"model": "random walk", "seed": seed, "train_s": 0.0, "params": 0, **rw} | {
        "forecast_s": wall
    }


def deepar_row(split, seed, budget_s) -> dict:
    t0 = time.perf_counter()
    samples = deepar(split, budget_s, seed, 100)
    return {
        "model": "DeepAR (GluonTS)",
        "seed": seed,
        "train_s": time.perf_counter() - t0,
        "forecast_s": float("nan"),
        "params": float("nan"),
        **evaluate(samples, split.targets).as_dict(),
    }


def run_dataset(
    name,
    folder,
    seeds,
    root,
    sections,
    draws,
    baselines=True,
    reference_seeds=1,
    saved=None,
    deepar_seeds=1,
):
    """The default and the random walk for every seed, then the reference and DeepAR.

    The TimeGrad reference runs on the first ``reference_seeds`` seeds and DeepAR, which
    trains for TimeGrad's wall time and so costs one TimeGrad training per seed, on the
    first ``deepar_seeds``: on this shared CPU the full run affords them on one seed.
    ``saved(rows)`` is called after each model, so an interrupted run keeps what it measured.
    """
    file, model = DATASETS[name]
    path, rows, trained = folder / file, [], {}
    saved = saved or (lambda rows: None)
    prefix = default_label(model, sections)
    for seed in seeds:
        net, split, info = train_timegrad(path, model, seed, root / f"default-{seed}", sections)
        trained[seed] = (split, info["train_s"], (info["architecture"], info["target"]))
        rows += test_rows(prefix, net, split, info, seed, draws)
        if baselines:
            rows.append(random_walk_row(split, seed))
        saved(rows)
    for seed in seeds[:reference_seeds]:
        if trained[seed][2] == (REFERENCE["architecture"], REFERENCE["target"]):
            continue  # the default chose TimeGrad's own formulation: it is the reference
        ref, split, ref_info = train_timegrad(
            path, {**model, **REFERENCE}, seed, root / f"reference-{seed}", sections
        )
        rows += test_rows("TimeGrad reference", ref, split, ref_info, seed, draws, SAMPLERS[:1])
        saved(rows)
    for seed in seeds[:deepar_seeds] if baselines else ():
        split, budget_s, _ = trained[seed]
        rows.append(deepar_row(split, seed, budget_s))
        saved(rows)
    return rows


SPREAD_SCALES = (0.0, 0.25, 0.5)  # --diagnose: the random walk's covariance scaled down


def diagnose_dataset(name, folder) -> dict:
    """Forecasts that need no training on the validation and the test windows (a few seconds).

    The seasonal naive forecasts show how much of each data set is its season, which the
    default's lags (1, 24, 168 for hourly data) reach only through three values.
    """
    file, model = DATASETS[name]
    run = resolve_config(ts_domain, {"model": model}, str(folder / file))
    data = ts_domain.load_data(run.model, folder / file)
    split = data.train.split
    out = {
        "windows": {"validation": len(split.validation_split().targets), "test": len(split.targets)}
    }
    seasons = {"B": (5,), "h": (24, 168)}.get(model["freq"], ())
    for part, windows in (("validation", split.validation_split()), ("test", split)):
        rows = {"random walk": random_walk(windows, 100, seed=0)}
        rows |= {  # how far the spread alone moves a martingale's score (no direction known)
            f"random walk, covariance x{c:g}": random_walk(windows, 100, seed=0, scale=c)
            for c in SPREAD_SCALES
        }
        rows["random walk, last 60 steps' covariance"] = random_walk(windows, 100, 0, recent=60)
        rows |= {f"seasonal naive {k}": seasonal_naive(windows, k, 100) for k in seasons}
        out[part] = {
            label: evaluate(paths, windows.targets).as_dict() for label, paths in rows.items()
        }
    return out


def dataset_result(name: str, rows: list[dict], sections: dict) -> dict:
    """A data set's saved result: its rows, their summary and the default's row label."""
    label = default_label(DATASETS[name][1], sections)
    return {"rows": rows, "summary": summary(rows), "default": label}


def following_defaults() -> str:
    """The defaults that follow from the domain's default [model] values (its network's own
    diffusion), as JSON."""
    return json.dumps(ts_domain.defaults_for(ts_domain.defaults["model"]))


def merge_parts(paths: list[Path], earlier: dict | None = None, keep=()) -> dict:
    """One result from runs that measured parts of it side by side (data sets, or seeds of
    one data set, each with its own ``--out``): their rows in the order given, each part's
    arguments kept. The rows of the models ``keep`` in ``earlier`` (a saved result) join
    the data sets whose parts did not measure them, marked as an earlier run's."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    datasets: dict[str, dict] = {}
    for part in parts:
        for name, res in part["datasets"].items():
            rows = datasets.get(name, {}).get("rows", []) + res["rows"]
            default = res.get("default") or datasets.get(name, {}).get("default")
            datasets[name] = {"rows": rows, "summary": summary(rows), "default": default}
    for name, res in datasets.items():
        measured = {r["model"] for r in res["rows"]}
        old = (earlier or {}).get("datasets", {}).get(name, {}).get("rows", [])
        carried = [{**r, "earlier": True} for r in old if r["model"] in set(keep) - measured]
        res["rows"] += carried
        res["summary"] = summary(res["rows"])
    seeds = sorted({r["seed"] for res in datasets.values() for r in res["rows"]})
    wall = max(float(p["args"].get("wall_s", 0)) for p in parts)  # side by side
    args = {**parts[0]["args"], "seeds": str(seeds), "wall_s": f"{wall:.0f}"}
    commands = [p["args"] for p in parts]
    if earlier and keep:  # the earlier run's own parts and its last command
        commands += [*earlier.get("parts", []), earlier["args"]]
    return {"args": args, "parts": commands, "datasets": datasets}


def summary(rows):
    """Mean and std over seeds per model."""
    out = {}
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        keys = [k for k, v in mine[0].items() if k != "seed" and isinstance(v, (int, float))]
        out[model] = {
            k: (float(np.mean([r[k] for r in mine])), float(np.std([r[k] for r in mine])))
            for k in keys
        }
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Exchange, 1 seed, 300 steps")
    parser.add_argument("--tune", action="store_true", help="score CANDIDATES on validation")
    parser.add_argument(
        "--candidates", nargs="+", default=None, help="--tune only these CANDIDATES (labels)"
    )
    parser.add_argument(
        "--diagnose", action="store_true", help="untrained forecasts on validation and test"
    )
    parser.add_argument("--data", type=Path, default=None, help="data folder (../shared/data)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (CLI default)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--datasets", nargs="+", default=None, choices=sorted(DATASETS))
    parser.add_argument(
        "--set", action="append", default=[], help="KEY=VALUE like diffkit train's (train.lr=2e-3)"
    )
    parser.add_argument(
        "--draws", type=int, default=None, help="forecasts per sampler (2; quick 1)"
    )
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs in this folder")
    parser.add_argument("--no-baselines", action="store_true", help="the default only")
    parser.add_argument(
        "--append", action="store_true", help="keep the saved run's other data sets (one file)"
    )
    parser.add_argument(
        "--keep-models",
        nargs="+",
        default=[],
        help="with --append: the saved rows of these models stay in the data sets measured; "
        "with --merge: they join the data sets whose parts lack them",
    )
    parser.add_argument(
        "--reference-seeds", type=int, default=1, help="seeds of the TimeGrad reference"
    )
    parser.add_argument("--deepar-seeds", type=int, default=1, help="seeds of DeepAR")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--report-only", action="store_true", help="re-render RESULTS.md from the saved JSON"
    )
    parser.add_argument(
        "--scale", action="store_true", help="cost against the number of series (timeseries_scale)"
    )
    parser.add_argument(
        "--merge", nargs="+", type=Path, default=None, help="timeseries.json files of parts"
    )
    args = parser.parse_args()
    if args.merge:
        saved = args.out / "timeseries.json"
        earlier = json.loads(saved.read_text()) if args.keep_models and saved.exists() else None
        results = merge_parts(args.merge, earlier, args.keep_models)
        results["args"]["command"] = "python benchmarks/timeseries.py " + " ".join(sys.argv[1:])
        results["args"].setdefault("architecture_defaults", following_defaults())
        print(write(results, args.out, "timeseries"))
        return
    if args.scale:
        from timeseries_scale import run as run_scale

        run_scale([370, 2000], 5, None, args.threads or 1)
        return
    if args.report_only:
        print("rendered", ", ".join(report(args.out)) or "nothing", "into", RESULTS)
        return
    sections = parse_sets(args.set)
    if args.steps or args.quick:
        sections.setdefault("train", {})["max_steps"] = args.steps or 300
    args.seeds = args.seeds or ([0] if args.quick or args.tune else [0, 1, 2])
    args.draws = args.draws or (1 if args.quick else 2)
    quick_sets = ["exchange"] if args.quick and not args.tune else ["exchange", "etth1"]
    args.datasets = args.datasets or quick_sets
    torch.set_num_threads(args.threads)
    folder = args.data or Path(
        os.environ.get("DIFFKIT_DATA", Path(__file__).parents[1] / "../shared/data")
    )
    args.command = "python benchmarks/timeseries.py " + " ".join(sys.argv[1:])
    args.machine = f"{os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads"
    args.defaults = json.dumps(ts_domain.defaults)
    args.architecture_defaults = following_defaults()
    args.default_label = default_label({}, sections)
    args.validation_windows = {
        name: validation_count(settings) for name, (_, settings) in DATASETS.items()
    }
    args.load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    results = {"args": {k: str(v) for k, v in vars(args).items()}, "datasets": {}}
    stem = "timeseries-tune" if args.tune else "timeseries-quick" if args.quick else "timeseries"
    stem = "timeseries-diagnose" if args.diagnose else stem
    labels = args.candidates or list(CANDIDATES)
    for label in labels:
        if label not in CANDIDATES:
            parser.error(f"unknown candidate {label!r}; choose from {', '.join(CANDIDATES)}")
    earlier_rows = {}
    if args.tune and (args.out / f"{stem}.json").exists():  # every measurement is kept
        earlier_rows = json.loads((args.out / f"{stem}.json").read_text())["datasets"]
        results["datasets"] = dict(earlier_rows)
    kept = {}  # data set -> the saved rows of --keep-models, carried into this run's
    if args.append and (args.out / f"{stem}.json").exists():  # a run continued in parts
        saved = json.loads((args.out / f"{stem}.json").read_text())
        results["datasets"] = {k: v for k, v in saved["datasets"].items() if k not in args.datasets}
        results["parts"] = [*saved.get("parts", []), saved["args"]]
        for name in args.datasets:
            rows = saved["datasets"].get(name, {}).get("rows", [])
            kept[name] = [{**r, "earlier": True} for r in rows if r["model"] in args.keep_models]
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = args.keep or tmp
        for name in args.datasets:
            root = Path(tmp) / name
            if args.diagnose:
                results["datasets"][name] = diagnose_dataset(name, folder)
            elif args.tune:

                def tuned(result, name=name):
                    results["datasets"][name] = result
                    path = args.out / f"{stem}.json"
                    if path.exists():  # another --tune run may have saved rows since
                        saved = json.loads(path.read_text())["datasets"]
                        results["datasets"] = merged(saved, results["datasets"], args.datasets)
                    write(results, args.out, stem)

                earlier = earlier_rows.get(name, {}).get("rows", [])
                results["datasets"][name] = tune_dataset(
                    name,
                    folder,
                    args.seeds[0],
                    root,
                    sections,
                    labels,
                    earlier,
                    tuned,
                    run=(DATASETS, train_timegrad, validation_metrics),
                )
            else:

                def saved(rows, name=name):
                    rows = rows + kept.get(name, [])
                    results["datasets"][name] = dataset_result(name, rows, sections)
                    results["args"]["wall_s"] = f"{time.perf_counter() - t_start:.0f}"
                    write(results, args.out, stem)

                rows = run_dataset(
                    name,
                    folder,
                    args.seeds,
                    root,
                    sections,
                    args.draws,
                    not args.no_baselines,
                    args.reference_seeds,
                    saved,
                    args.deepar_seeds,
                )
                rows += kept.get(name, [])
                results["datasets"][name] = dataset_result(name, rows, sections)
            results["args"]["wall_s"] = f"{time.perf_counter() - t_start:.0f}"
            text = write(results, args.out, stem)  # after each data set: a partial run is kept
    print(text)


def write(results: dict, out: Path, stem: str) -> str:
    """Save the run's JSON and markdown and its section of RESULTS.md; the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(results, indent=1))
    text = markdown(results, stem)
    (out / f"{stem}.md").write_text(text + "\n")
    if stem in ("timeseries-quick", "timeseries"):
        plot(results, out / f"{stem}.png")
    update_section(stem, text)  # RESULTS.md's tables of this run, between its markers
    return text


if __name__ == "__main__":
    main()
