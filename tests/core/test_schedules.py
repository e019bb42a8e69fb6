import math

import pytest
import torch
from diffusers import DDPMScheduler

import diffkit
from diffkit import ConfigError, schedules, toy
from diffkit.schedules import from_config, get_schedule


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (schedules.linear(), "linear"),
        (schedules.cosine(), "squaredcos_cap_v2"),
        (schedules.sigmoid(), "sigmoid"),
    ],
)
def test_discrete_schedules_equal_diffusers(ours, theirs):
    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule=theirs).alphas_cumprod
    torch.testing.assert_close(ours.alphas_cumprod, ref.double(), atol=1e-6, rtol=0)


def test_zero_terminal_snr_equals_diffusers_rescale():
    ref = DDPMScheduler(rescale_betas_zero_snr=True).alphas_cumprod.double()
    ours = schedules.linear(rescale=True).alphas_cumprod
    assert ours[-1] == 0 and ours[0] == pytest.approx(schedules.linear().alphas_cumprod[0].item())
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)
    lam = schedules.linear(rescale=True).log_snr(torch.tensor([998.0, 998.5, 999.0]))
    assert torch.isfinite(lam[:2]).all() and lam[2] == -math.inf


def test_sqrt_schedule_follows_diffusion_lm_alpha_bar():
    s = schedules.sqrt(T=2000)
    t = torch.arange(1, 1500, dtype=torch.float64)  # before the beta cap bites
    expected = (1 - torch.sqrt(t / 2000 + 1e-4)) / (1 - math.sqrt(1e-4))
    torch.testing.assert_close(s.alphas_cumprod[:1499], expected, atol=1e-9, rtol=0)
    assert (s.betas <= 0.999 + 1e-12).all()


def test_betas_and_alpha_sigma_are_consistent():
    s = schedules.linear(T=1000)
    torch.testing.assert_close(s.betas, torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64))
    alpha, sigma = s.alpha_sigma(torch.arange(1000.0))
    torch.testing.assert_close(alpha**2, s.alphas_cumprod)
    torch.testing.assert_close(alpha**2 + sigma**2, torch.ones(1000, dtype=torch.float64))


def test_fractional_times_interpolate_log_alpha():
    s = schedules.cosine()
    la = 0.5 * s.alphas_cumprod.log()
    got = s.log_alpha_sigma(torch.tensor([10.25]))[0]
    torch.testing.assert_close(got, (0.75 * la[10] + 0.25 * la[11]).reshape(1))


def test_vp_and_subvp_closed_forms():
    t = torch.tensor([0.001, 0.3, 0.7, 1.0], dtype=torch.float64)
    log_alpha = -0.25 * t**2 * (20 - 0.1) - 0.5 * t * 0.1
    a, s = schedules.vp().alpha_sigma(t)
    torch.testing.assert_close(a, log_alpha.exp())
    torch.testing.assert_close(s, (1 - (2 * log_alpha).exp()).sqrt())
    a2, s2 = schedules.subvp().alpha_sigma(t)
    torch.testing.assert_close(a2, a)
    torch.testing.assert_close(s2, 1 - a**2)


def test_ve_is_geometric_with_unit_alpha():
    a, s = schedules.ve().alpha_sigma(torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(a, torch.ones(3, dtype=torch.float64))
    expected = torch.tensor([0.01, math.sqrt(0.01 * 50), 50.0], dtype=torch.float64)
    torch.testing.assert_close(s, expected)
    assert not schedules.ve().variance_preserving


@pytest.mark.parametrize("name", sorted(schedules.SCHEDULES))
def test_variance_preserving_flag_matches_alpha_squared_plus_sigma_squared(name):
    # the flag sets the predictor-corrector's default snr; sub-VP's sigma = 1 - alpha^2 is not
    s = get_schedule(name)
    a, sigma = s.alpha_sigma(torch.linspace(s.t_min, s.t_max, 9, dtype=torch.float64)[1:])
    preserves = bool(torch.allclose(a**2 + sigma**2, torch.ones_like(a), atol=1e-12, rtol=0))
    assert s.variance_preserving == preserves
    assert preserves == (name not in ("subvp", "ve"))  # the test itself sees both kinds


@pytest.mark.parametrize(("schedule", "snr"), [(schedules.vp(), 0.01), (schedules.subvp(), 0.16)])
def test_the_predictor_corrector_default_snr_follows_the_flag(schedule, snr):
    # Song et al.'s 0.01 for VP and 0.16 otherwise; sub-VP was given VP's 0.01

    def run(**options):
        g = torch.Generator().manual_seed(0)
        net = toy.ring().denoiser(schedule)
        return diffkit.sample(net, (8, 2), schedule, sampler="pc", steps=4, generator=g, **options)

    torch.testing.assert_close(run(), run(snr=snr), atol=0, rtol=0)
    assert not torch.allclose(run(), run(snr=0.01 if snr == 0.16 else 0.16))


@pytest.mark.parametrize("name", ["linear", "cosine", "sqrt", "vp", "subvp", "ve"])
def test_time_of_log_snr_inverts_log_snr(name):
    s = get_schedule(name)
    t = torch.linspace(s.t_min, s.t_max, 7, dtype=torch.float64)[1:-1]
    torch.testing.assert_close(s.t_of_log_snr(s.log_snr(t)), t, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["linear", "cosine", "sqrt", "sigmoid", "vp", "subvp", "ve"])
def test_config_round_trip(name):
    s = get_schedule(name)
    again = from_config(s.config())
    assert again == s
    t = torch.linspace(s.t_min, s.t_max, 5)
    torch.testing.assert_close(again.alpha_sigma(t)[1], s.alpha_sigma(t)[1])


def test_bad_schedule_inputs_name_the_fix():
    with pytest.raises(ConfigError, match="choose one of: cosine, linear"):
        get_schedule("quadratic")
    with pytest.raises(ConfigError, match="unknown parameter"):
        get_schedule("linear", beta_max=3)
    with pytest.raises(ConfigError, match=r"outside schedule 'linear'.s range \[0, 999\]"):
        schedules.linear().alpha_sigma(torch.tensor([1000.0]))
    with pytest.raises(ConfigError, match="outside"):
        schedules.vp().alpha_sigma(torch.tensor([1.5]))
    with pytest.raises(ConfigError, match="NaN"):
        schedules.vp().alpha_sigma(torch.tensor([math.nan]))
    with pytest.raises(ConfigError, match="T >= 2"):
        schedules.linear(T=1)
    with pytest.raises(ConfigError, match="continuous"):
        _ = schedules.vp().T


@pytest.mark.parametrize("name", ["linear", "cosine", "vp", "subvp", "ve"])
def test_the_per_step_float_path_equals_the_tensor_path(name):
    s = get_schedule(name)
    t = torch.linspace(s.t_min, s.t_max, 9, dtype=torch.float64)
    t[3] += 0.37  # a fractional time too
    alpha, sigma = s.alpha_sigma(t)
    floats = torch.tensor([s.alpha_sigma_at(v) for v in t.tolist()], dtype=torch.float64)
    torch.testing.assert_close(floats, torch.stack([alpha, sigma], 1), atol=1e-14, rtol=1e-12)


def test_tables_are_cached_per_device_and_dtype_and_not_pickled():
    import pickle

    s = schedules.linear()
    s.alpha_sigma(torch.tensor([3.5]))
    s.alpha_sigma(torch.tensor([3.5], device="meta"), check=False)
    assert {(d.type, dt) for d, dt in s._tables} == {
        ("cpu", torch.float64),
        ("meta", torch.float64),
    }
    again = pickle.loads(pickle.dumps(s))
    assert again == s and "_tables" not in again.__dict__
    torch.testing.assert_close(
        again.alpha_sigma(torch.tensor([3.5])), s.alpha_sigma(torch.tensor([3.5]))
    )
