"""diffkit's DDPM and DDIM reproduce diffusers' schedulers step by step, with the same noise.

diffusers keeps ``alphas_cumprod`` in float32; the schedules themselves are compared to 1e-6
in test_schedules. Here both run in float64 on the same table, so what is compared is the
step rule alone, to 1e-5 over every intermediate state.
"""

import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    UniPCMultistepScheduler,
)

import diffkit
from diffkit import schedules, toy


def run_diffusers(scheduler, net, x, generator, schedule, **step_kwargs):
    scheduler.alphas_cumprod = schedule.alphas_cumprod.clone()  # float64, see the docstring
    xs = []
    for t in scheduler.timesteps:
        eps = net(x, torch.full((x.shape[0],), float(t), dtype=x.dtype))
        if generator is not None:
            step_kwargs = {**step_kwargs, "generator": generator}
        x = scheduler.step(eps, t, x, **step_kwargs).prev_sample
        xs.append(x)
    return torch.stack(xs)


def run_diffkit(net, x, schedule, generator, **kwargs):
    xs = []
    diffkit.sample(
        net, x, schedule, generator=generator, callback=lambda s: xs.append(s["x"]), **kwargs
    )
    return torch.stack(xs)


NET = toy.ring()


@pytest.mark.parametrize("steps", [1000, 50])
def test_ddpm_matches_diffusers_ddpm_scheduler(steps):
    s = schedules.linear()
    net = NET.denoiser(s)
    ref = DDPMScheduler(beta_schedule="linear", clip_sample=False)
    ref.set_timesteps(steps)
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    theirs = run_diffusers(ref, net, x, torch.Generator().manual_seed(1), s)
    times = ref.timesteps.double()
    ours = run_diffkit(net, x, s, torch.Generator().manual_seed(1), sampler="ddpm", times=times)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("spacing", ["leading", "trailing"])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_matches_diffusers_ddim_scheduler(spacing, eta):
    s = schedules.cosine()
    net = NET.denoiser(s)
    ref = DDIMScheduler(
        beta_schedule="squaredcos_cap_v2", clip_sample=False, timestep_spacing=spacing
    )
    ref.set_timesteps(50)
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    theirs = run_diffusers(ref, net, x, torch.Generator().manual_seed(1), s, eta=eta)
    g = torch.Generator().manual_seed(1)
    ours = run_diffkit(net, x, s, g, sampler="ddim", steps=50, spacing=spacing, eta=eta)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("spacing", ["leading", "linspace", "trailing"])
def test_spacings_equal_diffusers_timesteps(spacing):
    ref = DDIMScheduler(timestep_spacing=spacing)
    ref.set_timesteps(37)
    ours = diffkit.timesteps(schedules.linear(), 37, spacing)
    torch.testing.assert_close(ours, ref.timesteps.double())


# DPM-Solver++ 2M and UniPC against diffusers, on the same integer time steps and float64 table.
# diffusers settings that make both compute the same thing: final_sigmas_type="zero" (the last
# step goes to sigma = 0, i.e. returns x0, as ours does), lower_order_final=True (ours too: the
# step to clean data is first order; UniPC's last steps use order min(order, steps left)),
# euler_at_final=False, use_karras_sigmas=False (Karras sigmas there are evaluated at rounded
# time steps, which is a different method), solver_type="bh2" and predict_x0=True for UniPC.
@pytest.mark.parametrize("steps", [10, 25])
@pytest.mark.parametrize(
    ("ours", "order", "make"),
    [
        ("dpmpp_2m", 2, lambda **kw: DPMSolverMultistepScheduler(
            algorithm_type="dpmsolver++", euler_at_final=False, **kw)),
        ("unipc", 2, lambda **kw: UniPCMultistepScheduler(
            solver_type="bh2", predict_x0=True, **kw)),
        ("unipc", 3, lambda **kw: UniPCMultistepScheduler(
            solver_type="bh2", predict_x0=True, **kw)),
    ],
)  # fmt: skip
def test_multistep_solvers_match_diffusers(ours, order, make, steps):
    s = schedules.linear()
    net = NET.denoiser(s)
    ref = make(
        beta_schedule="linear",
        solver_order=order,
        final_sigmas_type="zero",
        lower_order_final=True,
        use_karras_sigmas=False,
    )
    ref.alphas_cumprod = s.alphas_cumprod.clone()  # before set_timesteps: its sigmas in float64
    ref.set_timesteps(steps)
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    theirs = run_diffusers(ref, net, x, None, s)
    options = {"order": order} if ours == "unipc" else {}
    times = ref.timesteps.double()
    mine = run_diffkit(net, x, s, None, sampler=ours, times=times, **options)
    torch.testing.assert_close(mine, theirs, atol=1e-4, rtol=0)
    assert (mine - theirs).abs().max() < 5e-6  # achieved: at most 1.1e-6 over these cases


# diffusers draws its SDE noise in float32 inside `step`; we hand it the float64 draws that
# ours takes from the same generator (one per step; ours skips the draw of the last step,
# whose noise is multiplied by sigma = 0).
@pytest.mark.parametrize("steps", [10, 25])
def test_sde_dpmpp_2m_matches_diffusers_with_the_same_noise(steps):
    s = schedules.linear()
    net = NET.denoiser(s)
    ref = DPMSolverMultistepScheduler(
        algorithm_type="sde-dpmsolver++",
        beta_schedule="linear",
        solver_order=2,
        final_sigmas_type="zero",
        lower_order_final=True,
        euler_at_final=False,
    )
    ref.alphas_cumprod = s.alphas_cumprod.clone()
    ref.set_timesteps(steps)
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    noise = [torch.randn(x.shape, generator=g, dtype=x.dtype) for _ in range(steps)]
    theirs, y = [], x
    for t, z in zip(ref.timesteps, noise, strict=True):
        eps = net(y, torch.full((y.shape[0],), float(t), dtype=y.dtype))
        y = ref.step(eps, t, y, variance_noise=z).prev_sample
        theirs.append(y)
    times = ref.timesteps.double()
    g = torch.Generator().manual_seed(1)
    mine = run_diffkit(net, x, s, g, sampler="dpmpp_2m_sde", times=times)
    torch.testing.assert_close(mine, torch.stack(theirs), atol=1e-5, rtol=0)
    # The noise matters: without it the result is the deterministic solver's, far away.
    ode = run_diffkit(net, x, s, None, sampler="dpmpp_2m", times=times)
    assert (mine[-1] - ode[-1]).abs().mean() > 0.1
