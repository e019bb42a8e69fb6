"""``benchmarks/timeseries.py --merge``: parts run side by side make one result."""

import json
import sys

from tests.reference import REPO

sys.path.insert(0, str(REPO / "benchmarks"))  # the scripts import their sibling modules by name

from timeseries import merge_parts
from timeseries_report import markdown

METRICS = ("crps_sum", "crps", "energy_score", "nd", "train_s", "forecast_s", "params")


def row(model: str, seed: int, crps_sum: float) -> dict:
    steps = {"best_step": 3000, "last_step": 3000}
    return {"model": model, "seed": seed, **dict.fromkeys(METRICS, 1.0), **steps,
            "crps_sum": crps_sum}  # fmt: skip


def part(path, seeds, rows, command):
    args = {"command": command, "seeds": str(seeds), "draws": "2", "wall_s": "100"}
    data = {"args": args, "datasets": {"etth1": {"rows": rows, "default": "horizon"}}}
    path.write_text(json.dumps(data))
    return path


def test_parts_join_in_order_and_an_earlier_runs_models_fill_only_what_is_missing(tmp_path):
    a = part(tmp_path / "a.json", [0], [row("horizon ddpm 100", 0, 0.15)], "part a")
    b = part(tmp_path / "b.json", [1], [row("horizon ddpm 100", 1, 0.17),
                                        row("random walk", 1, 0.3)], "part b")  # fmt: skip
    earlier = {
        "args": {"command": "old run"},
        "datasets": {
            "etth1": {
                "rows": [row("DeepAR (GluonTS)", 0, 0.18), row("random walk", 0, 0.9)],
            }
        },
    }
    merged = merge_parts([a, b], earlier, keep=["DeepAR (GluonTS)", "random walk"])
    res = merged["datasets"]["etth1"]
    assert [(r["model"], r["seed"]) for r in res["rows"]] == [
        ("horizon ddpm 100", 0),
        ("horizon ddpm 100", 1),
        ("random walk", 1),
        ("DeepAR (GluonTS)", 0),  # carried: no part measured it; the random walk was measured
    ]
    assert res["rows"][-1]["earlier"] and res["default"] == "horizon"
    mean, std = res["summary"]["horizon ddpm 100"]["crps_sum"]
    assert abs(mean - 0.16) < 1e-12 and abs(std - 0.01) < 1e-12
    assert merged["args"]["seeds"] == "[0, 1]"
    assert [p["command"] for p in merged["parts"]] == [
        "part a", "part b", "old run"
    ]  # fmt: skip
    merged["args"]["command"] = "merge"
    text = markdown(merged, "timeseries")
    assert "DeepAR (GluonTS) (earlier part)" in text and "| horizon ancestral 100 |" in text
