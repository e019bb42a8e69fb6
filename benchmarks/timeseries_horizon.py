"""The whole horizon at once: a transformer denoiser over context and horizon, on validation.

    OMP_NUM_THREADS=1 python benchmarks/timeseries_horizon.py --name c72 [--context 72] ...
    OMP_NUM_THREADS=1 python benchmarks/timeseries_horizon.py --test    # the best row, 3 seeds
    python benchmarks/timeseries_horizon.py --report-only

TimeGrad draws a forecast one step at a time, each step's noise denoised given an RNN's
state. CSDI and TSDiff instead denoise the whole (horizon, series) block at once, every
position attending to the observed context and to the rest of the horizon, so the daily
shape of a forecast is drawn jointly rather than chained. This study measures that on
ETTh1's 28 validation windows (the ones ``timeseries.py`` chooses on; a plain run never
reads the test windows): one token per time step (its D values, whether it is context or
horizon, its time features), a transformer encoder over the ``context + horizon`` tokens,
the diffusion time added to every token, v (or eps) predicted at the horizon's tokens; each
window standardised by its context's mean and standard deviation per series. Trained with the core's
``diffusion_loss`` and sampled with the core's ``sample`` (DPM-Solver++(2M), 20 calls, as
the benchmark's validation CRPS-sum), next to TimeGrad's validation CRPS-sum at the same
budget (``timeseries-tune``: 0.1808 at 3,000 steps).

Each plain run adds one validation row (seed 0, two sampling draws) to
``benchmarks/results/timeseries-horizon.json``; ``--test`` takes the row with the lowest
validation CRPS-sum, trains it with ``SEEDS`` and scores the 7 test windows once per seed
(two draws each), next to TimeGrad and DeepAR as ``timeseries.json`` holds them (the same
protocol, an earlier run); both write the markdown, the PNG and RESULTS.md's section.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from diffkit.domains.timeseries.data import read_csv
from diffkit.domains.timeseries.evaluate import evaluate
from diffkit.domains.timeseries.features import time_features
from diffkit.domains.timeseries.series import rolling_windows
from diffkit.losses import diffusion_loss
from diffkit.nn import timestep_embedding
from diffkit.sampling import sample
from diffkit.schedules import get_schedule

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: its sibling module
from results_md import update_section

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parent.parent / "shared" / "data" / "ett" / "ETTh1.csv"
OUT = ROOT / "results"
HORIZON, TEST_WINDOWS, VALIDATION_WINDOWS = 24, 7, 28
SEEDS = (0, 1, 2)
DRAWS = (0, 1)
SCHEDULES = {"cosine": "cosine, T 1000", "timegrad": "linear, T 100 (TimeGrad's)"}
PLOT_HOURS = 72  # history drawn before the example test window
TARGETS = {"crps_sum": 0.145, "crps": 0.18}  # issue 19, ETTh1, mean over seeds
SETTINGS = (
    "context",
    "steps",
    "batch",
    "lr",
    "width",
    "depth",
    "schedule",
    "sampler",
    "prediction",
    "calls",
)


class HorizonDenoiser(nn.Module):
    """The standardised horizon's prediction (B, H, D), of the type it was trained for (v by
    default), given x_t there, the diffusion step and the standardised context (B, C, D);
    ``feats`` (B, C + H, F) are the steps' time features."""

    def __init__(self, dim: int, context: int, features: int, width=64, depth=3, heads=4):
        super().__init__()
        self.context = context
        self.inp = nn.Linear(dim + 1 + features, width)
        self.position = nn.Embedding(context + HORIZON, width)
        self.step = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        layer = nn.TransformerEncoderLayer(
            width, heads, 2 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, dim))

    def forward(self, x_t, t, *, past, feats):
        values = torch.cat([past, x_t], dim=1)  # (B, C + H, D)
        flag = torch.zeros_like(values[..., :1])
        flag[:, self.context :] = 1.0
        h = self.inp(torch.cat([values, flag, feats], dim=-1))
        h = h + self.position.weight[None] + self.step(timestep_embedding(t, h.shape[-1]))[:, None]
        return self.out(self.encoder(h)[:, self.context :])  # (B, H, D)


def schedule_of(name: str):
    """``name`` at T = 1000, or "timegrad": the time-series domain's reference diffusion
    (100 linear steps, beta 1e-4..0.1)."""
    if name == "timegrad":
        return get_schedule("linear", T=100, beta_start=1e-4, beta_end=0.1)
    return get_schedule(name, T=1000)


def standardise(window: torch.Tensor, context: int):
    """Each window (B, C + H, D) by its context's mean and std per series: (z, loc, scale)."""
    past = window[:, :context]
    loc, scale = past.mean(1, keepdim=True), past.std(1, keepdim=True).clamp_min(1e-3)
    return (window - loc) / scale, loc, scale


def train(net, values, feats, s: dict, schedule, generator) -> list[float]:
    """AdamW on uniformly drawn training windows; the loss every 100 steps."""
    C, span = s["context"], s["context"] + HORIZON
    opt = torch.optim.AdamW(net.parameters(), lr=s["lr"])
    losses, starts = [], len(values) - span + 1
    net.train()
    for step in range(s["steps"]):
        for group in opt.param_groups:  # warm-up, then cosine decay
            warm = min(1.0, (step + 1) / 100)
            group["lr"] = s["lr"] * warm * 0.5 * (1 + np.cos(np.pi * step / s["steps"]))
        index = torch.randint(starts, (s["batch"],), generator=generator)
        rows = index[:, None] + torch.arange(span)
        z, _, _ = standardise(values[rows], C)
        loss = diffusion_loss(
            net,
            z[:, C:],
            schedule,
            prediction=s["prediction"],
            cond={"past": z[:, :C], "feats": feats[rows]},
            generator=generator,
        ).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if (step + 1) % 100 == 0:
            losses.append(loss.item())
            print(f"step {step + 1}: loss {np.mean(losses[-5:]):.4f}", flush=True)
    return losses


@torch.no_grad()
def forecast(net, values, feats, ends: list[int], s: dict, schedule, generator, paths=100):
    """``paths`` sample paths (S, H, D) of the horizon after each of ``ends``, a few windows
    at a time (the attention of thousands of paths at once is mostly memory traffic)."""
    net.eval()
    out = []
    for i in range(0, len(ends), 4):
        out += forecast_batch(net, values, feats, ends[i : i + 4], s, schedule, generator, paths)
    return out


def forecast_batch(net, values, feats, ends, s, schedule, generator, paths):
    C = s["context"]
    rows = torch.tensor(ends)[:, None] + torch.arange(-C, HORIZON)
    window = values[rows].clone()
    window[:, C:] = 0.0  # never read: standardise reads the context only
    z, loc, scale = standardise(window, C)
    B = len(ends)
    cond = {
        "past": z[:, :C].repeat_interleave(paths, 0),
        "feats": feats[rows].repeat_interleave(paths, 0),
    }
    draw = sample(
        net,
        (B * paths, HORIZON, values.shape[1]),
        schedule,
        sampler=s["sampler"],
        steps=s["calls"],
        prediction=s["prediction"],
        cond=cond,
        generator=generator,
    )
    draw = draw.view(B, paths, HORIZON, -1) * scale[:, None] + loc[:, None]
    return list(draw.double().numpy())


def splits(path: Path):
    """ETTh1 as ``timeseries.py`` splits it: (series, validation split, test split)."""
    series = read_csv(path, "h")
    split = rolling_windows(series, HORIZON, TEST_WINDOWS, validation_windows=VALIDATION_WINDOWS)
    return series, split.validation_split(), split


def run(settings: dict, seed: int, path: Path, test: bool) -> dict:
    """Train one seed of ``settings`` and score the validation windows (with ``test`` the
    test windows instead), over ``DRAWS``; the figures and the first test window's paths."""
    torch.manual_seed(seed)
    series, val, test_split = splits(path)
    values = torch.tensor(series.values, dtype=torch.float32)
    feats = torch.tensor(time_features(series.index, series.freq))
    schedule = schedule_of(settings["schedule"])
    net = HorizonDenoiser(
        series.dim, settings["context"], feats.shape[1], settings["width"], settings["depth"]
    )
    g = torch.Generator().manual_seed(seed)
    t0 = time.process_time()
    losses = train(net, values[: val.train.length], feats, settings, schedule, g)
    out = {
        "seed": seed,
        "params": sum(p.numel() for p in net.parameters()),
        "train_cpu_s": time.process_time() - t0,
        "losses": losses,
    }
    name, split = ("test", test_split) if test else ("val", val)
    ends, draws = [h.length for h in split.histories], []
    for draw in DRAWS:
        t0 = time.perf_counter()
        g = torch.Generator().manual_seed(1000 * seed + draw)
        paths = forecast(net, values, feats, ends, settings, schedule, g)
        draws.append(
            {**evaluate(paths, split.targets).as_dict(), "forecast_s": time.perf_counter() - t0}
        )
        if name == "test" and draw == 0:
            out["example"] = {
                "paths": paths[0][:, :, -1].tolist(),
                "target": split.targets[0][:, -1].tolist(),
                "past": series.values[ends[0] - PLOT_HOURS : ends[0], -1].tolist(),
            }
    out[name] = {k: float(np.mean([d[k] for d in draws])) for k in draws[0]}
    print(
        f"seed {seed} {name}: CRPS-sum {out[name]['crps_sum']:.4f} CRPS {out[name]['crps']:.4f}",
        flush=True,
    )
    return out


def load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {"validation": [], "test": None}


def machine() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, 1 torch thread, torch "
        f"{torch.__version__}, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )


def spread(rows: list[dict], part: str, key: str) -> tuple[float, float]:
    values = [r[part][key] for r in rows]
    return float(np.mean(values)), float(np.std(values))


def timegrad_rows(path: Path) -> dict:
    """TimeGrad's and DeepAR's ETTh1 test and validation figures from ``timeseries.json``."""
    if not path.exists():
        return {}
    summary = json.loads(path.read_text())["datasets"]["etth1"]
    rows = {}
    for model in ("TimeGrad ddpm 100", "TimeGrad dpmpp_2m_sde 20", "DeepAR (GluonTS)"):
        seeds = [r for r in summary["rows"] if r["model"] == model]
        rows[model] = {
            key: (
                float(np.mean([r[key] for r in seeds])),
                float(np.std([r[key] for r in seeds])),
                len(seeds),
            )
            for key in ("crps_sum", "crps", "val_crps_sum")
            if all(r.get(key) is not None for r in seeds)
        }
    return rows


def markdown(results: dict, reference: dict) -> str:
    lines = [
        "### ETTh1: the whole horizon at once (issue 19), validation windows first",
        "",
        "`python benchmarks/timeseries_horizon.py` (" + results.get("machine", "") + "). "
        "A transformer over context and horizon tokens denoises the (24, 7) horizon block at "
        "once (cosine schedule, T = 1000, DPM-Solver++(2M) at 20 calls, 100 paths per window, "
        "two sampling draws); the 28 validation windows just before the test week choose, the "
        "7 test windows are scored once, with the lowest validation CRPS-sum's settings.",
        "",
        "| name | context | steps | width | depth | schedule | prediction | params | "
        "train CPU s | val CRPS-sum | val CRPS |",
        "|---|---:|---:|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for row in results["validation"]:
        c = row["settings"]
        lines.append(
            f"| {row['name']} | {c['context']} | {c['steps']} | {c['width']} | {c['depth']} | "
            f"{SCHEDULES.get(c['schedule'], c['schedule'])} | {c['prediction']} | "
            f"{row['params']} | {row['train_cpu_s']:.0f} | "
            f"{row['val']['crps_sum']:.4f} | {row['val']['crps']:.4f} |"
        )
    ref = reference.get("TimeGrad ddpm 100", {})
    if "val_crps_sum" in ref:
        lines += [
            "",
            f"TimeGrad (the benchmark's default, 3,000 steps, {ref['val_crps_sum'][2]} "
            f"seeds): val CRPS-sum {ref['val_crps_sum'][0]:.4f} (DPM-Solver++(2M) 20, one "
            "draw) in `timeseries.json`.",
        ]
    test = results.get("test")
    if test:
        rows = test["seeds"]
        lines += [
            "",
            f"**Test windows** (`--test`: **{test['name']}**, seeds "
            f"{', '.join(str(r['seed']) for r in rows)}; mean ± std over seeds; TimeGrad and "
            "DeepAR from `timeseries.json`, the same protocol and windows, an earlier run):",
            "",
            "| model | seeds | CRPS-sum | CRPS |",
            "|---|---:|---|---|",
            f"| horizon transformer, DPM-Solver++(2M) 20 | {len(rows)} | "
            + " | ".join("{:.4f} ± {:.4f}".format(*spread(rows, "test", k)) for k in TARGETS)
            + " |",
        ]
        for model, r in reference.items():
            cells = [
                f"{r[k][0]:.4f}" + (f" ± {r[k][1]:.4f}" if r[k][2] > 1 else "") for k in TARGETS
            ]
            lines.append(
                f"| {model} (`timeseries.json`) | {r['crps_sum'][2]} | " + " | ".join(cells) + " |"
            )
        deepar = reference.get("DeepAR (GluonTS)", {})
        mean = {k: spread(rows, "test", k)[0] for k in TARGETS}
        lines += ["", "| target (issue 19) | bound | measured | |", "|---|---|---|---|"]
        for key, bound in TARGETS.items():
            lines.append(
                f"| mean {key.replace('_', '-')} | <= {bound} | {mean[key]:.4f} | "
                f"{'met' if mean[key] <= bound else 'not met'} |"
            )
            if key in deepar:
                ahead = mean[key] < deepar[key][0]
                lines.append(
                    f"| ahead of DeepAR's {key.replace('_', '-')} | < "
                    f"{deepar[key][0]:.4f} | {mean[key]:.4f} | "
                    f"{'met' if ahead else 'not met'} |"
                )
        lines += ["", "![timeseries-horizon.png](timeseries-horizon.png)"]
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    """The first test window's OT paths (seed 0) after ``PLOT_HOURS`` of history."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ex = results["test"]["seeds"][0]["example"]
    paths, past = np.asarray(ex["paths"]), np.asarray(ex["past"])
    t = np.arange(len(past), len(past) + paths.shape[1])
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(np.arange(len(past)), past, color="k", lw=1, label="history")
    ax.plot(t, ex["target"], color="k", ls="--", lw=1, label="truth")
    lo, mid, hi = np.quantile(paths, [0.05, 0.5, 0.95], axis=0)
    ax.fill_between(t, lo, hi, color="tab:blue", alpha=0.3, label="5-95%")
    ax.plot(t, mid, color="tab:blue", lw=1.2, label="median")
    ax.set_title("ETTh1 OT, first test window: horizon transformer (seed 0)", fontsize=10)
    ax.set_xlabel("hour")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results: dict, out: Path) -> None:
    results["machine"] = results.get("machine") or machine()
    (out / "timeseries-horizon.json").write_text(json.dumps(results, indent=1) + "\n")
    md = markdown(results, timegrad_rows(out / "timeseries.json"))
    (out / "timeseries-horizon.md").write_text(md)
    if results.get("test"):
        plot(results, out / "timeseries-horizon.png")
    update_section(
        "timeseries-horizon", md.replace("](timeseries-horizon", "](results/timeseries-horizon")
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--name", default=None, help="the validation row's name")
    ap.add_argument("--context", type=int, default=72)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--schedule", default="cosine", help="a schedule at T = 1000, or timegrad")
    ap.add_argument("--sampler", default="dpmpp_2m")
    ap.add_argument("--prediction", default="v")
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--test", action="store_true", help="the best validation row, SEEDS, test")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    results = load(args.out / "timeseries-horizon.json")
    if not args.report_only and not args.data.is_file():
        raise SystemExit(f"error: no ETTh1 file at {args.data}; pass --data path/to/ETTh1.csv.")
    if args.test and not results["validation"]:
        raise SystemExit("error: no validation rows to choose from; run without --test first.")
    if args.report_only:
        return write(results, args.out)
    if args.test:
        best = min(results["validation"], key=lambda r: r["val"]["crps_sum"])
        seeds = [run(best["settings"], seed, args.data, test=True) for seed in SEEDS]
        results["test"] = {"name": best["name"], "settings": best["settings"], "seeds": seeds}
    else:
        settings = {k: getattr(args, k) for k in SETTINGS}
        row = run(settings, 0, args.data, test=False)
        row.pop("losses")
        results["validation"].append(
            {"name": args.name or f"c{args.context}", "settings": settings, **row}
        )
    results["machine"] = machine()
    write(results, args.out)


if __name__ == "__main__":
    main()
