"""Fitted step schedules: better than every fixed spacing on a closed-form ODE, reproducible,
stored in a checkpoint and read back, and explicit times checked with one clear error."""

import functools
import math

import pytest
import torch

import diffkit
from diffkit import ConfigError, schedules, toy
from diffkit.checkpoint import read_config, save_checkpoint
from diffkit.fitted import spacing_context, store, stored
from diffkit.sampling import SPACINGS, fit_steps, fit_steps_report, using_spacing
from diffkit.sampling.fit import on_grid, reference_times, steps_within

S = schedules.linear()
MU, STD, DIM = 0.7, 0.2, 3
ONE = toy.mixture([[MU] * DIM], STD)  # one Gaussian N(mu, std^2 I)


def exact_ode_map(x_T):
    """The probability-flow ODE's x_T -> x_0 for N(mu, s^2) data: affine, since each x_t is
    N(alpha mu, alpha^2 s^2 + sigma^2) and the flow keeps the standardised value."""
    alpha, sigma = S.alpha_sigma_at(S.t_max)
    return MU + STD * (x_T.double() - alpha * MU) / math.sqrt(alpha**2 * STD**2 + sigma**2)


def error(x, x_T):
    return (x.double() - exact_ode_map(x_T)).norm(dim=1).mean().item()


@functools.cache
def fitted(sampler, nfe, seed=0):
    g = torch.Generator().manual_seed(seed)
    return fit_steps_report(
        ONE.denoiser(S), S, sampler=sampler, nfe=nfe, shape=(256, DIM), generator=g,
        reference_steps=200, max_evals=240,
    )  # fmt: skip


@pytest.mark.parametrize(("sampler", "nfe", "steps"), [("dpmpp_2m", 4, 4), ("heun", 5, 3)])
def test_fitted_steps_beat_every_fixed_spacing_against_the_exact_solution(sampler, nfe, steps):
    result = fitted(sampler, nfe)
    assert len(result.times) == steps and result.nfe <= nfe  # Heun: 2 calls a step, 1 last
    x_T = torch.randn(2000, DIM, generator=torch.Generator().manual_seed(7))  # unseen noise
    net = ONE.denoiser(S)
    ours = error(diffkit.sample(net, x_T, S, sampler=sampler, spacing=result.times), x_T)
    for spacing in SPACINGS:
        x = diffkit.sample(net, x_T, S, sampler=sampler, steps=steps, spacing=spacing)
        assert ours < 0.9 * error(x, x_T), spacing


def test_the_reference_is_the_exact_solution():
    x_T = torch.randn(500, DIM, generator=torch.Generator().manual_seed(3))
    ref = diffkit.sample(ONE.denoiser(S), x_T, S, sampler="dpmpp_3m", steps=200, spacing="logsnr")
    assert error(ref, x_T) < 1e-3


def test_the_fit_is_reproducible_for_a_seed():
    def fit():
        g = torch.Generator().manual_seed(1)
        return fit_steps(ONE.denoiser(S), S, sampler="dpmpp_2m", nfe=3, shape=(128, DIM),
                         generator=g, reference_steps=100, max_evals=60)  # fmt: skip

    a, b = fit(), fit()
    assert torch.equal(a, b) and a.dtype == torch.float64 and (a[1:] < a[:-1]).all()


def off_grid_is_wrong(model):
    """``model`` at a discrete schedule's integer steps, wrong by +3 between them: a network
    trained at those steps only, whose step embedding never saw a fractional one."""

    def net(x, t):
        t = torch.as_tensor(t, dtype=torch.float64)
        off = (t - t.round()).abs().gt(1e-6).to(x.dtype).reshape(-1, *[1] * (x.ndim - 1))
        return model(x, t) + 3.0 * off

    return net


def test_a_discrete_model_is_fitted_and_referenced_on_its_integer_steps():
    S100 = schedules.linear(T=100, beta_end=0.1)  # TimeGrad's schedule
    exact = ONE.denoiser(S100)
    net = off_grid_is_wrong(exact)
    ref_t = reference_times(S100, 500)
    assert len(ref_t) == 100 and torch.equal(ref_t, ref_t.round())  # at most T, all integer
    x_T = torch.randn(500, DIM, generator=torch.Generator().manual_seed(3))
    ref = diffkit.sample(net, x_T, S100, sampler="dpmpp_3m", spacing=ref_t)
    assert torch.allclose(ref, diffkit.sample(exact, x_T, S100, sampler="dpmpp_3m", spacing=ref_t))
    log_snr = diffkit.sample(net, x_T, S100, sampler="dpmpp_3m", steps=100, spacing="logsnr")
    assert (log_snr - ref).abs().mean() > 1  # fractional times: the old reference was off

    g = torch.Generator().manual_seed(0)
    times = fit_steps(net, S100, sampler="dpmpp_2m", nfe=5, shape=(256, DIM), generator=g,
                      reference_steps=100, max_evals=120)  # fmt: skip
    assert torch.equal(times, times.round()) and (times[1:] < times[:-1]).all()
    x = diffkit.sample(net, x_T, S100, sampler="dpmpp_2m", spacing=times)
    for spacing in ("trailing", "linspace", "leading"):  # the fixed spacings on the grid
        fixed = diffkit.sample(net, x_T, S100, sampler="dpmpp_2m", steps=5, spacing=spacing)
        assert (x - ref).norm(dim=1).mean() < (fixed - ref).norm(dim=1).mean(), spacing


def test_on_grid_rounds_and_keeps_the_times_strictly_decreasing():
    S100 = schedules.linear(T=100)
    t = torch.tensor([99.0, 50.4, 50.2, 0.6], dtype=torch.float64)
    assert on_grid(S100, t).tolist() == [99.0, 50.0, 49.0, 1.0]
    c = torch.tensor([0.9, 0.5004], dtype=torch.float64)
    assert torch.equal(on_grid(schedules.vp(), c), c)  # a continuous schedule keeps its times


def test_samplers_with_several_calls_per_step_get_fewer_steps():
    assert steps_within("dpmpp_2m", 10, S) == 10
    assert steps_within("heun", 10, S) == 5  # 2 * 5 - 1 = 9 calls
    assert steps_within("dpm_solver", 10, S, {"order": 3}) == 4  # 3 * 4 - 2 = 10
    with pytest.raises(ConfigError, match="draws fresh noise"):
        steps_within("ddpm", 10, S)


def fake_checkpoint(tmp_path):
    return save_checkpoint(
        tmp_path / "checkpoints", 4, {"domain": "toy", "settings": {"source": "ring"}},
        {"w": torch.ones(2)}, {"w": torch.ones(2)},
    )  # fmt: skip


def test_a_fitted_schedule_survives_the_checkpoint_round_trip(tmp_path):
    path = fake_checkpoint(tmp_path)
    weights = (path / "model.pt").read_bytes()
    result = fitted("dpmpp_2m", 4)
    store(path, result, 4, seed=0)
    config = read_config(path)
    assert config["settings"] == {"source": "ring"} and config["step"] == 4  # kept
    assert (path / "model.pt").read_bytes() == weights
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []
    entry = stored(config)["dpmpp_2m"]["4"]
    assert entry["times"] == result.times and entry["nfe"] == 4
    seen = []  # sample() calls that name no spacing now run at the stored times
    with using_spacing("fitted", stored(config), str(path)):
        diffkit.sample(
            ONE.denoiser(S), (8, DIM), S, sampler="dpmpp_2m", steps=4,
            callback=lambda state: seen.append(state["t"]),
        )  # fmt: skip
    assert seen == result.times


def test_fitted_spacing_without_a_fit_names_the_fit_steps_command(tmp_path):
    path = fake_checkpoint(tmp_path)
    found = type("Found", (), {"config": read_config(path), "path": path})()
    with pytest.raises(
        ConfigError, match=r"diffkit fit-steps --checkpoint .* --sampler ddim --nfe 5"
    ):
        spacing_context(found, "fitted", "ddim", 5)
    with pytest.raises(ConfigError, match=r"no fitted steps for any sampler.*diffkit fit-steps"):
        spacing_context(found, "fitted")  # evaluate: the sampler is the domain's


@pytest.mark.parametrize(
    ("times", "problem"),
    [
        ([999.0, 500.0, 600.0], "strictly decrease"),
        ([999.0, 500.0, 500.0], "strictly decrease"),
        ([1500.0, 500.0], "outside schedule"),
        ([999.0, -1.0], "outside schedule"),
        ([999.0, float("nan")], "NaN or inf"),
        ([[999.0, 500.0]], "1-D"),
        ([], "1-D"),
        ("999,500", "unknown spacing"),
    ],
)
def test_bad_explicit_times_are_one_clear_error(times, problem):
    with pytest.raises(ConfigError, match=problem):
        diffkit.sample(ONE.denoiser(S), (4, DIM), S, sampler="ddim", spacing=times)


def test_explicit_times_of_the_wrong_length_are_one_clear_error():
    with pytest.raises(ConfigError, match="2 explicit times were given for steps=3"):
        diffkit.sample(ONE.denoiser(S), (4, DIM), S, sampler="ddim", steps=3, spacing=(999, 10))


def test_explicit_times_are_used_as_given():
    seen = []
    diffkit.sample(
        ONE.denoiser(S), (4, DIM), S, sampler="ddim", spacing=torch.tensor([900.0, 300.5, 2.0]),
        callback=lambda state: seen.append(state["t"]),
    )  # fmt: skip
    assert seen == [900.0, 300.5, 2.0]
