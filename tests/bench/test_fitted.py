"""The bench's fitted-steps rows: fitted on calibration noise, scored on the evaluation noise."""

import math

import pytest
import torch

import diffkit
from diffkit import schedules, toy
from diffkit.bench import fitted, row
from diffkit.sampling import SPACINGS

NFE = 5


@pytest.fixture(scope="module")
def ring():
    """The exact 2-D ring: evaluation noise, exact samples, one fit and its rows."""
    mix, schedule = toy.ring(), schedules.linear()
    net = mix.denoiser(schedule)
    g = torch.Generator().manual_seed(0)
    x_T, exact = torch.randn(2000, 2, generator=g), mix.sample(2000, g)
    calibration = torch.randn(256, 2, generator=torch.Generator().manual_seed(1000))

    def evaluate(spacing, steps, name="dpmpp_2m"):
        calls = [0]

        def counted(x, t):
            calls[0] += 1
            return net(x, t)

        x = diffkit.sample(counted, x_T, schedule, sampler=name, steps=steps, spacing=spacing)
        sw = toy.sliced_wasserstein(x, exact, 64, torch.Generator().manual_seed(1))
        return calls[0], {"sw1": sw}

    def fit():
        return fitted.fit(
            net, schedule, sampler="dpmpp_2m", nfe=NFE, x_T=calibration, max_evals=120
        )

    fit_ = fit()
    rows = fitted.compare(
        evaluate, fit_, [], sampler="dpmpp_2m", nfe=NFE, steps=NFE, target=schedule
    )
    return {"fit": fit_, "again": fit(), "rows": rows, "x_T": x_T}


def by_method(rows) -> dict:
    return {r["method"]: r for r in rows}


def test_every_fixed_spacing_and_the_fitted_steps_get_a_finite_row(ring):
    rows = by_method(ring["rows"])
    assert set(rows) == {fitted.method("dpmpp_2m", s) for s in SPACINGS} | {"dpmpp_2m fitted"}
    for r in ring["rows"]:
        assert math.isfinite(r["sw1"]) and r["sw1"] > 0, r
        assert r["nfe"] == NFE and r["nfe_budget"] == NFE and r["wall_s"] > 0
    assert math.isfinite(rows["dpmpp_2m fitted"]["target"]["sw1"])


def test_the_fitted_row_samples_at_the_fitted_times_which_a_seed_fixes(ring):
    fit, r = ring["fit"], by_method(ring["rows"])["dpmpp_2m fitted"]
    assert r["times"] == fit.times and r["steps"] == len(fit.times) == NFE
    assert fit.times == ring["again"].times  # the same calibration noise: the same steps
    assert fit.times not in [
        diffkit.timesteps(schedules.linear(), NFE, s).tolist() for s in SPACINGS
    ]
    assert r["fit_cpu_s"] == fit.cpu_s > 0 and r["fit_wall_s"] == fit.wall_s > 0
    assert r["fit"]["evaluations"] > 5 and r["fit"]["nfe"] == NFE


def test_fitted_steps_beat_the_uniform_spacings_on_the_exact_mixture(ring):
    # measured: fitted about 0.03 against trailing 0.21, linspace 0.17 (sampling noise ~0.01)
    rows = by_method(ring["rows"])
    sw = rows["dpmpp_2m fitted"]["sw1"]
    assert sw < 0.5 * rows["dpmpp_2m"]["sw1"]  # trailing: uniform in t
    assert sw < 0.5 * rows["dpmpp_2m (linspace)"]["sw1"]
    assert sw < rows["dpmpp_2m (logsnr)"]["sw1"]  # uniform in log-SNR


def test_a_spacing_the_case_already_ran_gets_no_second_row(ring):
    have = [row("diffkit", "dpmpp_2m (karras)", NFE, nfe_budget=NFE, sw1=1.0)]
    rows = fitted.compare(
        lambda spacing, steps: (NFE, {"sw1": 2.0}), ring["fit"], have,
        sampler="dpmpp_2m", nfe=NFE, steps=NFE,
    )  # fmt: skip
    assert "dpmpp_2m (karras)" not in by_method(rows) and "dpmpp_2m fitted" in by_method(rows)


def fitted_row(value):
    return row("diffkit", "dpmpp_2m fitted", 10, nfe_budget=10, sw1=value, fit_cpu_s=3.3,
               fit_wall_s=4.0, fit={"evaluations": 40})  # fmt: skip


@pytest.mark.parametrize(
    ("value", "words"),
    [(0.83, "fitted 0.83x the best fixed (karras)"),
     (1.07, "does not beat the best fixed (karras): 1.07x")],
)  # fmt: skip
def test_the_note_gives_the_ratio_to_the_best_fixed_spacing_and_the_fit_cost(value, words):
    rows = [
        row("diffkit", "dpmpp_2m", 10, nfe_budget=10, sw1=2.0),
        row("diffkit", "dpmpp_2m (karras)", 10, nfe_budget=10, sw1=1.0),
        row("diffkit", "dpmpp_2m (logsnr)", 5, nfe_budget=5, sw1=0.1),  # another NFE
        row("diffusers", "dpmpp_2m (logsnr)", 10, nfe_budget=10, sw1=0.1),  # another library
        fitted_row(value),
    ]
    text = fitted.note(rows, "sw1", sampler="dpmpp_2m", nfe=10)
    assert words in text and "3.3 CPU s" in text and "40 sampling runs" in text
