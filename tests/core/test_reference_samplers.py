"""diffkit's samplers reproduce diffusers' schedulers step by step, with the same noise.

diffusers keeps ``alphas_cumprod`` in float32; the schedules themselves are compared to 1e-6
in test_schedules. Here both run in float64 on the same table, so what is compared is the
step rule alone, over every intermediate state. Where diffusers rounds its sigmas to float32
(the multistep tests) the tolerance is 1e-4 with the achieved error asserted below 5e-6;
where the test hands it float64 sigmas (the singlestep and Heun tests) it is 1e-10.
"""

import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    DPMSolverSinglestepScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
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


def test_dpmpp_3m_matches_diffusers_third_order_multistep():
    # diffusers lowers the second-last step to second order only below 15 steps; ours always
    # (lower_order_final): so 10 steps with it, 25 without it, where both are third order.
    s = schedules.linear()
    net = NET.denoiser(s)
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for steps, lower in ((10, True), (25, False)):
        ref = DPMSolverMultistepScheduler(
            algorithm_type="dpmsolver++", beta_schedule="linear", solver_order=3,
            final_sigmas_type="zero", lower_order_final=lower, euler_at_final=False,
        )  # fmt: skip
        ref.alphas_cumprod = s.alphas_cumprod.clone()
        ref.set_timesteps(steps)
        theirs = run_diffusers(ref, net, x, None, s)
        times = ref.timesteps.double()
        mine = run_diffkit(
            net, x, s, None, sampler="dpmpp_3m", times=times, lower_order_final=lower
        )
        torch.testing.assert_close(mine, theirs, atol=1e-4, rtol=0)
        assert (mine - theirs).abs().max() < 5e-6
    # the third-order term matters: second order is far from both at this accuracy
    second = run_diffkit(net, x, s, None, sampler="dpmpp_2m", times=times, lower_order_final=False)
    assert (second[-1] - theirs[-1]).abs().max() > 1e-4


def ve_sigmas(schedule, times):
    """diffusers' sigmas (sigma / alpha, the VE noise level) at ``times``, then 0, in float64."""
    alpha, sigma = schedule.alpha_sigma(torch.as_tensor(times, dtype=torch.float64))
    return torch.cat([sigma / alpha, torch.zeros(1, dtype=torch.float64)])


def stage_times(s, ours, steps, options):
    """The times at which our singlestep sampler calls the model, in order (its stages)."""
    seen = []

    def net(x, t):
        seen.append(float(t[0]))
        return NET.denoiser(s)(x, t)

    x = torch.zeros(1, 2, dtype=torch.float64)
    diffkit.sample(net, x, s, sampler=ours, steps=steps, spacing="logsnr", **options)
    return seen


def clean_step(s, net, x, t):
    """Our step to clean data from time t: x0 = (x - sigma eps) / alpha, first order."""
    alpha, sigma = s.alpha_sigma_at(t)
    return (x - sigma * net(x, torch.full((x.shape[0],), t, dtype=x.dtype))) / alpha


# Singlestep DPM-Solver (noise prediction, orders 1 and 2) and DPM-Solver++(2S) against
# DPMSolverSinglestepScheduler driven at our stage times (its timesteps in float64 sigmas,
# with the midpoint solver type): its order list [1, 2, 1, 2, ..., 1] takes the stages of one
# of our steps as consecutive timesteps, and its update of order k from the k of them is ours.
# For noise prediction diffusers cannot step to sigma = 0 (0 * inf), so its last step goes to
# sigma_min and ours to clean data is checked on its own.
@pytest.mark.parametrize(
    ("ours", "options", "algorithm", "order"),
    [
        ("dpm_solver", {"order": 1}, "dpmsolver", 1),
        ("dpm_solver", {"order": 2}, "dpmsolver", 2),
        ("dpmpp_2s", {}, "dpmsolver++", 2),
    ],
)
def test_singlestep_solvers_match_diffusers(ours, options, algorithm, order):
    s, steps = schedules.vp(), 8
    net = NET.denoiser(s)
    times = stage_times(s, ours, steps, options)  # order * (steps - 1) + 1 model calls
    assert len(times) == order * (steps - 1) + 1
    if order == 2:  # each stage halves its step in log-SNR (r = 1/2)
        lam = s.log_snr(torch.tensor(times, dtype=torch.float64))
        torch.testing.assert_close(lam[1:-1:2], (lam[:-2:2] + lam[2::2]) / 2, atol=1e-8, rtol=0)
    final = "zero" if algorithm == "dpmsolver++" else "sigma_min"
    ref = DPMSolverSinglestepScheduler(
        algorithm_type=algorithm, solver_order=order, solver_type="midpoint",
        lower_order_final=True, final_sigmas_type=final,
    )  # fmt: skip
    ref.set_timesteps(timesteps=list(range(len(times), 0, -1)))  # placeholders, replaced:
    ref.sigmas = ve_sigmas(s, times)
    ref.set_begin_index(0)
    assert ref.order_list == [*([1, 2] if order == 2 else [1]) * (steps - 1), 1]
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    theirs, y = [], x
    for t in times:
        eps = net(y, torch.full((y.shape[0],), t, dtype=y.dtype))
        y = ref.step(eps, 0, y).prev_sample
        theirs.append(y)
    # the state after each of our steps, and after the last, first-order one
    theirs = torch.stack(theirs[order - 1 : -1 : order] + theirs[-1:])
    mine = run_diffkit(net, x, s, None, sampler=ours, steps=steps, spacing="logsnr", **options)
    assert mine.shape == theirs.shape
    if final == "sigma_min":
        torch.testing.assert_close(mine[-1], clean_step(s, net, mine[-2], times[-1]))
        mine, theirs = mine[:-1], theirs[:-1]
    torch.testing.assert_close(mine, theirs, atol=1e-10, rtol=0)


def test_dpm_solver_3_stages_match_diffusers_updates():
    # DPM-Solver-3 as in the paper and the official code: its second stage is the "heun"
    # second-order update and its last the "midpoint" third-order one (diffusers' singlestep
    # scheduler uses one solver type for both), so each stage is compared with that update.
    s, steps = schedules.vp(), 6
    net = NET.denoiser(s)
    times = stage_times(s, "dpm_solver", steps, {"order": 3})
    refs = {}
    for kind in ("heun", "midpoint"):
        refs[kind] = DPMSolverSinglestepScheduler(
            algorithm_type="dpmsolver", solver_order=3, solver_type=kind,
            final_sigmas_type="sigma_min",
        )  # fmt: skip
        refs[kind].set_timesteps(timesteps=list(range(len(times), 0, -1)))
        refs[kind].sigmas = ve_sigmas(s, times)
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mine = run_diffkit(
        net, x, s, None, sampler="dpm_solver", order=3, steps=steps, spacing="logsnr"
    )

    def eps_at(y, k):
        return net(y, torch.full((y.shape[0],), times[k], dtype=y.dtype))

    y = x
    for i in range(steps - 1):
        k = 3 * i  # our step i runs from times[k] over the stages times[k + 1], times[k + 2]
        e0 = eps_at(y, k)
        refs["heun"]._step_index = k
        y1 = refs["heun"].dpm_solver_first_order_update(e0, sample=y)
        e1 = eps_at(y1, k + 1)
        refs["heun"]._step_index = k + 1
        y2 = refs["heun"].singlestep_dpm_solver_second_order_update([e0, e1], sample=y)
        e2 = eps_at(y2, k + 2)
        refs["midpoint"]._step_index = k + 2
        y = refs["midpoint"].singlestep_dpm_solver_third_order_update([e0, e1, e2], sample=y)
        torch.testing.assert_close(mine[i], y, atol=1e-10, rtol=0)
    torch.testing.assert_close(mine[-1], clean_step(s, net, y, times[-1]), atol=1e-10, rtol=0)


@pytest.mark.parametrize("spacing", ["leading", "trailing"])
@pytest.mark.parametrize(("ours", "cls"), [("euler", EulerDiscreteScheduler),
                                           ("heun", HeunDiscreteScheduler)])  # fmt: skip
def test_karras_euler_and_heun_match_diffusers(ours, cls, spacing):
    # diffusers runs in the VE variable x / alpha with sigma = sigma / alpha; we compare in x.
    # Heun's timesteps are doubled (an Euler and a correction substep), its last Euler's.
    s, steps = schedules.linear(), 25
    net = NET.denoiser(s)
    ref = cls(beta_schedule="linear", timestep_spacing=spacing)
    ref.set_timesteps(steps)
    ref.sigmas = ve_sigmas(s, ref.timesteps)
    ref.set_begin_index(0)
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    theirs, y = [], x * (1 + ref.sigmas[0] ** 2).sqrt()
    for k, t in enumerate(ref.timesteps):
        eps = net(ref.scale_model_input(y, t), torch.full((y.shape[0],), float(t)).double())
        y = ref.step(eps, t, y).prev_sample
        theirs.append(y / (1 + ref.sigmas[k + 1] ** 2).sqrt())  # back to x at the next sigma
    if ours == "heun":
        theirs = theirs[1::2] + theirs[-1:]  # after each correction, and the final Euler step
    times = ref.timesteps.unique_consecutive().double()
    mine = run_diffkit(net, x, s, None, sampler=ours, times=times)
    # EulerDiscreteScheduler.step casts the sample to float32 (achieved: 7.9e-7); Heun's
    # keeps float64 (achieved: 3e-15)
    atol = 2e-6 if ours == "euler" else 1e-10
    torch.testing.assert_close(mine, torch.stack(theirs), atol=atol, rtol=0)
