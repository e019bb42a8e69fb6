"""benchmarks/timeseries_horizon.py: the whole-horizon denoiser study never reads what it
forecasts, undoes its standardisation exactly, and judges the targets it reports."""

import sys

import numpy as np
import torch

from diffkit.schedules import get_schedule
from tests.reference import REPO

sys.path.insert(0, str(REPO / "benchmarks"))  # the scripts import their sibling modules by name

from timeseries_horizon import HORIZON, HorizonDenoiser, forecast, markdown, standardise

SETTINGS = {"context": 12, "sampler": "dpmpp_2m", "calls": 4, "prediction": "v"}


def test_standardising_by_the_context_is_undone_exactly():
    window = torch.randn(3, 12 + HORIZON, 2) * 5 + 7
    z, loc, scale = standardise(window, 12)
    assert torch.allclose(z[:, :12].mean(1), torch.zeros(3, 2), atol=1e-5)
    assert torch.allclose(z[:, :12].std(1), torch.ones(3, 2), atol=1e-5)
    assert torch.allclose(z * scale + loc, window, atol=1e-5)


def test_a_forecast_never_reads_the_values_it_forecasts():
    torch.manual_seed(0)
    values, feats = torch.randn(200, 2), torch.randn(200, 4)
    net = HorizonDenoiser(2, 12, 4, width=16, depth=1)
    schedule = get_schedule("cosine", T=1000)
    ends = [100, 150]

    def paths(v):
        g = torch.Generator().manual_seed(3)
        return forecast(net, v, feats, ends, SETTINGS, schedule, g, 5)

    changed = values.clone()
    changed[100:124] += 100.0  # the first window's horizon
    changed[150:] = float("nan")  # and everything from the second's on
    a, b = paths(values), paths(changed)
    assert [p.shape for p in a] == [(5, HORIZON, 2)] * 2
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    changed[99] += 1.0  # the last context value does change the forecast
    assert not np.array_equal(paths(changed)[0], a[0])


def result(crps_sum: float, crps: float) -> dict:
    settings = {
        "context": 72,
        "steps": 3000,
        "width": 64,
        "depth": 3,
        "prediction": "v",
        "schedule": "cosine",
    }
    seed = {"seed": 0, "test": {"crps_sum": crps_sum, "crps": crps}}
    row = {"name": "c72", "settings": settings, "params": 1, "train_cpu_s": 1.0,
           "val": {"crps_sum": 0.17, "crps": 0.19}}  # fmt: skip
    return {"validation": [row], "test": {"name": "c72", "settings": settings, "seeds": [seed]}}


def test_the_report_judges_each_target_and_deepar_from_the_measured_means():
    deepar = {"DeepAR (GluonTS)": {"crps_sum": (0.1786, 0.0, 1), "crps": (0.2018, 0.0, 1)}}
    md = markdown(result(0.150, 0.175), deepar)
    assert "| mean crps-sum | <= 0.145 | 0.1500 | not met |" in md
    assert "| mean crps | <= 0.18 | 0.1750 | met |" in md
    assert "| ahead of DeepAR's crps-sum | < 0.1786 | 0.1500 | met |" in md
    assert "**c72**" in md
