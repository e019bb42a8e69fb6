"""The contract every registered sampler passes (after diffusers' scheduler tests)."""

import math

import pytest
import torch

import diffkit
from diffkit import SAMPLERS, ConfigError, DataError, ShapeError, get_sampler, schedules, toy
from diffkit.sampling import SPACINGS, model_function

SHAPES = {"image": (3, 2, 8, 8), "series": (3, 24, 5), "tokens": (3, 7, 16)}


class TinyNet(torch.nn.Module):
    """A fixed smooth function of (x_t, t) standing in for a trained eps network."""

    def forward(self, x, t):
        scale = torch.sigmoid(t / 500 - 1).reshape(-1, *([1] * (x.ndim - 1)))
        return 0.5 * torch.tanh(x) * scale


def run(name, shape, seed, schedule=None, dtype=torch.float32, **kw):
    schedule = schedule or schedules.linear()
    g = torch.Generator().manual_seed(seed)
    return diffkit.sample(
        TinyNet(), shape, schedule, sampler=name, steps=10, generator=g, dtype=dtype, **kw
    )


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_shape_dtype_and_finiteness(name, kind):
    for dtype in (torch.float32, torch.float64):
        x = run(name, SHAPES[kind], 0, dtype=dtype)
        assert x.shape == SHAPES[kind] and x.dtype == dtype
        assert torch.isfinite(x).all()


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_same_seed_same_result_other_seed_other_result(name):
    a, b, c = (run(name, SHAPES["series"], s) for s in (0, 0, 1))
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize("schedule", [schedules.linear(), schedules.cosine(), schedules.vp()])
def test_the_final_noise_level_is_reached(name, schedule):
    # A model that always predicts x0 = c must end exactly at c: the last step goes to sigma = 0.
    c = torch.tensor([0.25, -0.5])
    x = diffkit.sample(
        lambda x, t: c.expand_as(x),
        (4, 2),
        schedule,
        sampler=name,
        steps=10,
        prediction="x0",
        generator=torch.Generator().manual_seed(0),
    )
    torch.testing.assert_close(x, c.expand(4, 2))


def test_bad_sample_inputs_get_one_clear_error():
    s = schedules.linear()
    with pytest.raises(ConfigError, match=r"unknown sampler 'euler_x'; choose one of: .*ddim"):
        diffkit.sample(TinyNet(), (2, 3), s, sampler="euler_x")
    with pytest.raises(ConfigError, match="exceeds the schedule's T=1000"):
        diffkit.sample(TinyNet(), (2, 3), s, steps=1001)
    with pytest.raises(ConfigError, match="positive whole number"):
        diffkit.sample(TinyNet(), (2, 3), s, steps=0)
    with pytest.raises(ConfigError, match="outside schedule"):
        diffkit.sample(TinyNet(), (2, 3), s, times=torch.tensor([1200.0, 10.0]))
    with pytest.raises(ShapeError, match=r"model returned shape \(2, 2\) for x of shape \(2, 3\)"):
        diffkit.sample(lambda x, t: x[:, :2], (2, 3), s, steps=3)
    with pytest.raises(ConfigError, match="has no option 'eta'"):
        diffkit.sample(TinyNet(), (2, 3), s, sampler="ddpm", eta=1.0)
    with pytest.raises(ConfigError, match="choose one of: large, small"):
        diffkit.sample(TinyNet(), (2, 3), s, sampler="ddpm", variance="huge")
    with pytest.raises(DataError, match="NaN"):
        diffkit.sample(TinyNet(), torch.full((2, 3), float("nan")), s)
    with pytest.raises(ConfigError, match="cond must be a dict"):
        diffkit.sample(TinyNet(), (2, 3), s, cond=[1, 2])
    with pytest.raises(ConfigError, match="spacing"):
        diffkit.sample(TinyNet(), (2, 3), s, steps=3, spacing="karras_x")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (lambda x, t: (x, None), r"returned a tuple; it must return one torch.Tensor \(e.g. out"),
        (lambda x, t: x.numpy(), r"returned a numpy.ndarray; it must return one torch.Tensor"),
        (lambda x, t: x.sum(), r"returned shape \(\) for x of shape \(2, 3\)"),
        (lambda x, t: x.long(), r"returned a torch.int64 tensor; return floating-point"),
        (lambda x, t: 0.0, r"returned a float; it must return one torch.Tensor"),
    ],
)
def test_a_model_returning_the_wrong_kind_of_thing_is_one_clear_error(model, message):
    with pytest.raises(ShapeError, match=message):
        diffkit.sample(model, (2, 3), schedules.linear(), sampler="ddim", steps=3)


def test_a_model_that_turns_bad_after_the_first_call_is_still_one_clear_error():
    # the full check runs on the first call; later calls compare the shape, which also
    # catches a tuple or an array (neither has a torch.Size)
    def net(x, t):
        return torch.zeros_like(x) if t[0] > 500 else (x, x)

    with pytest.raises(ShapeError, match="returned a tuple"):
        diffkit.sample(net, (2, 3), schedules.linear(), sampler="ddim", steps=4)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_no_step_reads_a_value_of_the_data(name):
    # On the meta device tensors have shapes and no values: an .item(), bool() or float() of a
    # tensor on the data's device, a host synchronisation per step on a GPU, raises there.
    # (sample() itself checks x_T and x_0 once each, so the sampler is called directly.)
    s, x = schedules.linear(), torch.empty(4, 3, device="meta")
    times = diffkit.timesteps(s, 6)
    model_fn = model_function(TinyNet(), s, "eps", None, at=times, like=x)
    out = get_sampler(name)(model_fn, x, times, s)
    assert out.device.type == "meta" and out.shape == x.shape


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_a_model_returning_nan_is_one_clear_error_naming_the_sampler(name):
    def bad(x, t):  # NaN from the middle of the trajectory on
        return torch.where(t[:, None] < 500, float("nan"), 0.0) * x

    with pytest.raises(DataError, match=rf"sampler '{name}' got NaN or inf predictions"):
        diffkit.sample(bad, (2, 3), schedules.linear(), sampler=name, steps=10)

    def washed_out(x, t):  # NaN in the middle only, then x0 = 1 whatever x is
        middle = (t[:, None] > 300) & (t[:, None] < 700)
        return torch.where(middle, float("nan"), 1.0).expand_as(x)

    with pytest.raises(DataError, match="got NaN or inf predictions from the model"):
        diffkit.sample(washed_out, (2, 3), schedules.linear(), sampler=name, prediction="x0")


def test_steps_that_diverge_on_finite_outputs_are_their_own_clear_error():
    # a huge finite eps gives x0 = (x - sigma eps) / alpha beyond float32 at alpha = 0.006
    # (three calls of 1e37 keep the running sum of the outputs below float32's 3.4e38)
    with pytest.raises(DataError, match="ended with NaN or inf values though the model's"):
        diffkit.sample(
            lambda x, t: torch.full_like(x, 1e37), (1, 1), schedules.linear(), sampler="ddim",
            steps=3,
        )  # fmt: skip


# Zero terminal SNR: Gaussian data N(mu, s^2 I) and its exact denoiser, which at SNR 0 gives
# x0 = mu. With every spacing ('trailing' and 'linspace' start at t = T - 1, where alpha = 0)
# every sampler must reach the known answer up to its own discretisation error, the same
# with or without SNR 0 at the start (measured: 'leading' starts above it). ODE samplers are
# checked sample by sample against the exact flow, which keeps z = (x_t - alpha mu) / std_t
# and ends with E[x0 | x_t] at the last time; stochastic ones on mean and std. Tolerances
# are about 1.3x the worst error measured over the spacings.
GAUSS, MU, STD = toy.mixture([[0.5, -1.0]], 0.5), torch.tensor([0.5, -1.0]).double(), 0.5
RESCALED = schedules.linear(rescale=True)
ODE_CASES = {  # sampler -> (options, RMS error / s at 100 steps)
    "ddim": ({}, 0.085),  # measured 0.065 (karras), first order
    "euler": ({}, 0.085),  # 0.065, = DDIM
    "heun": ({}, 0.012),  # 0.0084
    "dpm_solver": ({}, 0.007),  # 0.0049
    "dpm_solver-3": ({"order": 3}, 0.001),  # 0.0002
    "dpmpp_2m": ({}, 0.02),  # 0.014
    "dpmpp_3m": ({}, 0.007),  # 0.0053
    "dpmpp_2s": ({}, 0.006),  # 0.0044
    "unipc": ({}, 0.014),  # 0.0105
    "unipc-3": ({"order": 3}, 0.005),  # 0.0032
}
SDE_CASES = {  # sampler -> (steps, options, |mean - mu|, |std / std_exact - 1|)
    "ddpm": (200, {}, 0.015, 0.1),  # measured 0.009, 0.078 (karras): too little noise
    "dpmpp_2m_sde": (200, {}, 0.015, 0.04),  # 0.009, 0.030
    "sde_euler": (200, {}, 0.015, 0.04),  # 0.008, 0.029
    "pc": (200, {}, 0.03, 0.075),  # 0.023, 0.056
    "repaint": (200, {"jump_n_sample": 2}, 0.025, 0.09),  # 0.017, 0.074
    "langevin": (100, {"n_steps_each": 20}, 0.02, 0.03),  # 0.01, 0.012 (trailing)
}
assert set(SAMPLERS) == {c.split("-")[0] for c in [*ODE_CASES, *SDE_CASES]}


def exact_final_std(t):
    # the last step returns E[x0 | x_t] at the last time t, of std s^2 alpha / std_t
    a, sigma = RESCALED.alpha_sigma(t)
    return STD**2 * a / math.sqrt(a**2 * STD**2 + sigma**2)


def zero_snr_cases(cases):
    return [
        (case, spacing, prediction)
        for case in sorted(cases)
        for spacing in SPACINGS
        for prediction in ("v", "x0")
        if prediction == "v" or spacing in ("trailing", "linspace")  # x0 where SNR 0 is met
    ]


def sample_rescaled(case, times, prediction, x, **options):
    return diffkit.sample(
        GAUSS.denoiser(RESCALED, prediction), x, RESCALED, sampler=case.split("-")[0],
        times=times, prediction=prediction, generator=torch.Generator().manual_seed(0),
        dtype=torch.float64, **options,
    )  # fmt: skip


@pytest.mark.parametrize(("case", "spacing", "prediction"), zero_snr_cases(ODE_CASES))
def test_ode_samplers_from_zero_snr_follow_the_exact_flow(case, spacing, prediction):
    options, tol = ODE_CASES[case]
    times = diffkit.timesteps(RESCALED, 100, spacing)
    x_T = torch.randn(500, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = sample_rescaled(case, times, prediction, x_T, **options)
    a, sigma = RESCALED.alpha_sigma(times[0])
    z = (x_T - a * MU) / math.sqrt(a**2 * STD**2 + sigma**2)  # sigma_T z at SNR 0
    exact = MU + exact_final_std(times[-1]) * z
    assert (x - exact).pow(2).mean().sqrt() / STD < tol


@pytest.mark.parametrize(("case", "spacing", "prediction"), zero_snr_cases(SDE_CASES))
def test_stochastic_samplers_from_zero_snr_reach_the_data_distribution(case, spacing, prediction):
    steps, options, mean_tol, std_tol = SDE_CASES[case]
    times = diffkit.timesteps(RESCALED, steps, spacing)
    if case == "langevin":  # a step size for this last level: (sigma / alpha)^2 there
        a, sigma = RESCALED.alpha_sigma(times[-1])
        options = {**options, "step_lr": float(sigma / a) ** 2}
    x = sample_rescaled(case, times, prediction, (2000, 2), **options)
    assert (x.mean(0) - MU).abs().max() < mean_tol, x.mean(0)
    assert (x.std(0) / exact_final_std(times[-1]) - 1).abs().max() < std_tol, x.std(0)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize("prediction", ["eps", "score"])
@pytest.mark.parametrize("spacing", ["trailing", "linspace"])
def test_eps_prediction_at_zero_snr_is_one_clear_error(name, prediction, spacing):
    calls = []

    def net(x, t):
        calls.append(1)
        return GAUSS.denoiser(RESCALED, prediction)(x, t)

    message = f"predicts {prediction} cannot give x0 at SNR 0.*sample a v- or x0-prediction"
    with pytest.raises(ConfigError, match=message):
        diffkit.sample(
            net, (4, 2), RESCALED, steps=10, spacing=spacing, prediction=prediction, sampler=name
        )
    assert not calls  # refused before the first model call


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_from_zero_snr_the_first_step_is_one_call_and_calls_stays_an_upper_bound(name):
    # from_pure_noise's DDIM step costs one call where a sampler's own step may cost more, so
    # diffkit.sampling.calls (which knows no schedule) counts at most one step too many
    from diffkit.sampling.calls import calls

    seen = []

    def net(x, t):
        seen.append(1)
        return GAUSS.denoiser(RESCALED, "v")(x, t)

    diffkit.sample(net, (4, 2), RESCALED, sampler=name, steps=7, prediction="v")
    peeled = hasattr(get_sampler(name), "__wrapped__")  # taken through from_pure_noise
    assert len(seen) == (1 + calls(name, 6) if peeled else calls(name, 7))
    assert len(seen) <= calls(name, 7)
