"""``python benchmarks/timeseries.py --tune``: candidate settings scored on validation windows.

Each candidate is a function of the data set's own settings returning model overrides; every
one trains once (seed 0) and forecasts the validation windows only, never the test windows.
"""

from __future__ import annotations

import json
import os
import time

# --tune: name -> model overrides given the data set's settings (scored on validation only)
WIDE = {"num_cells": 80, "residual_channels": 32}  # TimeGrad's: 40 and 8
CANDIDATES = {
    "level": lambda m: {"target": "level"},  # TimeGrad's own
    "difference": lambda m: {"target": "difference"},
    "difference-context3": lambda m: {
        "target": "difference",
        "context_length": 3 * m["prediction_length"],
    },
    "difference-deepar-lags": lambda m: {"target": "difference", "lags": deepar_lags(m["freq"])},
    "seasonal": lambda m: {"target": "seasonal"},  # the residual of the seasonal naive forecast
    "seasonal-deepar-lags": lambda m: {"target": "seasonal", "lags": deepar_lags(m["freq"])},
    "seasonal-context3": lambda m: {
        "target": "seasonal",
        "context_length": 3 * m["prediction_length"],
    },
    "auto": lambda m: {"target": "auto"},  # chosen on the validation windows' naive errors
    # a wider network (WIDE): RNN cells and the denoiser's residual channels
    "level-wide": lambda m: {"target": "level", **WIDE},
    "difference-wide": lambda m: {"target": "difference", **WIDE},
    "level-context3": lambda m: {"target": "level", "context_length": 3 * m["prediction_length"]},
    "level-deepar-lags": lambda m: {"target": "level", "lags": deepar_lags(m["freq"])},
    # the whole horizon at once (domains/timeseries/horizon.py): the data set's context, or
    # the network's default of 7 horizons; and 7 horizons where the data set sets its own
    "horizon": lambda m: {"architecture": "horizon"},
    "horizon-context7": lambda m: {
        "architecture": "horizon",
        "context_length": 7 * m["prediction_length"],
    },
    # Exchange's pegged CNY: 30 flat days under the 1e-3 floor put horizons 335 scales away;
    # anchored at the last value, as a random walk is, or floored higher (3e-2 became the
    # default; 1e-3 was the first)
    "horizon-last": lambda m: {"architecture": "horizon", "horizon_centre": "last"},
    "horizon-floor1e-2": lambda m: {"architecture": "horizon", "relative_floor": 1e-2},
    "horizon-floor3e-2": lambda m: {"architecture": "horizon", "relative_floor": 3e-2},
    "horizon-depth4": lambda m: {"architecture": "horizon", "transformer_depth": 4},
}


def validation_count(settings: dict) -> int:
    """A data set's validation windows: its own count, else as many as its test windows."""
    return settings.get("validation_windows", settings["test_windows"])


def deepar_lags(freq: str) -> list[int]:
    """GluonTS's lag set for ``freq`` (DeepAR's default; 40 lags up to 721 for hourly data)."""
    from gluonts.time_feature import get_lags_for_frequency

    return [int(lag) for lag in get_lags_for_frequency(freq)]


def tune_dataset(name, folder, seed, root, sections, labels, earlier=(), saved=None, *, run):
    """The candidates ``labels`` trained once each and scored on the validation windows only.

    ``run`` is ``(datasets, train, validate)`` of :mod:`timeseries`: its DATASETS, its
    ``train_timegrad`` and its ``validation_metrics``.

    Rows of earlier runs (``earlier``) are kept in front; ``saved(result)`` is called after
    each candidate, so an interrupted run keeps what it measured. The choice is the lowest
    validation CRPS-sum among the rows trained for as many steps as this run's.
    """
    datasets, train, validate = run
    file, model = datasets[name]
    rows, steps = list(earlier), sections.get("train", {}).get("max_steps", _default_steps())
    windows = validation_count(model)
    for label in labels:
        overrides = CANDIDATES[label](model)
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        settings, out = {**model, **overrides}, root / f"c{len(rows)}"
        net, split, info = train(folder / file, settings, seed, out, sections)
        c0 = time.process_time()
        val = validate(net, split, seed)
        val["val_cpu_s"] = time.process_time() - c0
        rows.append(
            {"candidate": label, "settings": overrides, "seed": seed, "steps": steps}
            | {"val_windows": windows, "load": load, **info, **val}
        )
        print(json.dumps(rows[-1]), flush=True)
        (saved or (lambda result: None))(_tuned(rows, steps, windows))
    return _tuned(rows, steps, windows)


def _tuned(rows: list[dict], steps: int, windows: int) -> dict:
    """The lowest validation CRPS-sum among rows of ``steps`` scored on ``windows`` windows
    (rows saved before the count was recorded match none; all rows where none match)."""
    same = [r for r in rows if (r.get("steps"), r.get("val_windows")) == (steps, windows)]
    return {"rows": rows, "chosen": min(same or rows, key=lambda r: r["val_crps_sum"])["candidate"]}


def _default_steps() -> int:
    from diffkit.domains.timeseries.domain import domain

    return domain.defaults["train"]["max_steps"]


def merged(saved: dict, mine: dict, tuning) -> dict:
    """The tune results to save: the file's (``saved``, per data set) with this run's data
    sets ``tuning`` replaced by ``mine``, plus the rows another run saved meanwhile."""
    out = dict(saved)
    for name in tuning:
        if name in mine:
            rows = mine[name]["rows"]
            extra = [r for r in saved.get(name, {}).get("rows", []) if r not in rows]
            out[name] = {**mine[name], "rows": rows + extra}
    return out
