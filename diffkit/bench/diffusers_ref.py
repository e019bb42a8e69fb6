"""diffusers' schedulers as the reference samplers, driven by any eps function.

Each diffkit sampler has its diffusers counterpart (:data:`COUNTERPARTS`); the
``use_lu_lambdas`` (uniform log-SNR) and ``use_karras_sigmas`` variants of DPM-Solver++(2M)
stand beside diffkit's ``dpmpp_2m`` with ``spacing="logsnr"`` and ``"karras"``. The model
reads the noise level from the scheduler's own table at the current index (its ``sigmas``
where it has them, else ``alphas_cumprod[t]``), so a gain from step placement is credited
to the scheduler that placed the steps, not to rounding. diffusers is optional: callers
check :func:`installed` and report "reference not installed" without it.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable

import torch

Tensor = torch.Tensor
# eps_at(x_t, alpha, sigma) -> eps, with alpha and sigma floats of the VP process
EpsAt = Callable[[Tensor, float, float], Tensor]

# diffkit sampler -> (diffusers scheduler class name, its config, calls for `steps` steps)
COUNTERPARTS: dict[str, tuple[str, dict, Callable[[int], int]]] = {
    # DDPM and DDIM clip x0 to [-1, 1] by default; diffkit's do not, so neither does this
    "ddpm": ("DDPMScheduler", {"clip_sample": False}, lambda n: n),
    "ddim": ("DDIMScheduler", {"clip_sample": False}, lambda n: n),
    "euler": ("EulerDiscreteScheduler", {}, lambda n: n),
    "heun": ("HeunDiscreteScheduler", {}, lambda n: 2 * n - 1),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {}, lambda n: n),
    "dpmpp_3m": ("DPMSolverMultistepScheduler", {"solver_order": 3}, lambda n: n),
    "dpmpp_2m_sde": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++"},
        lambda n: n,
    ),
    "unipc": ("UniPCMultistepScheduler", {}, lambda n: n),
}
# diffkit (sampler, spacing) -> the diffusers option that places the steps the same way
VARIANTS = {
    ("dpmpp_2m", "logsnr"): {"use_lu_lambdas": True},
    ("dpmpp_2m", "karras"): {"use_karras_sigmas": True},
}


def installed() -> bool:
    """Whether diffusers can be imported."""
    try:
        import diffusers  # noqa: F401
    except ImportError:
        return False
    return True


def version() -> str | None:
    """diffusers' version, or None when it is not installed."""
    try:
        import diffusers
    except ImportError:
        return None
    return diffusers.__version__


def steps_for(sampler: str, nfe: int) -> int:
    """The most steps of ``sampler``'s diffusers counterpart within ``nfe`` calls."""
    calls = COUNTERPARTS[sampler][2]
    return max([n for n in range(1, nfe + 1) if calls(n) <= nfe] or [1])


def scheduler(sampler: str, alphas_cumprod: Tensor, steps: int, variant: dict | None = None):
    """The counterpart of ``sampler`` on the schedule ``alphas_cumprod`` (T,), set to ``steps``."""
    import diffusers

    name, config, _ = COUNTERPARTS[sampler]
    ac = alphas_cumprod.double()
    betas = 1 - ac / torch.cat([ac.new_ones(1), ac[:-1]])  # (T,)
    with warnings.catch_warnings():  # numpy 2's copy= notice about diffusers' np.array(tensor)
        warnings.simplefilter("ignore", DeprecationWarning)
        sched = getattr(diffusers, name)(
            num_train_timesteps=len(ac),
            trained_betas=betas.tolist(),
            timestep_spacing="trailing",
            **config,
            **(variant or {}),
        )
        sched.alphas_cumprod = ac.clone()  # float64, before set_timesteps
        sched.set_timesteps(steps)
    return sched


def sample(
    sampler: str,
    eps_at: EpsAt,
    x_T: Tensor,
    alphas_cumprod: Tensor,
    steps: int,
    *,
    variant: dict | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw x_0 with ``sampler``'s diffusers counterpart from unit-variance noise ``x_T``."""
    sched = scheduler(sampler, alphas_cumprod, steps, variant)
    takes_generator = "generator" in inspect.signature(sched.step).parameters
    extra = {"generator": generator} if takes_generator and generator is not None else {}

    def model(x_in, t):
        if hasattr(sched, "sigmas"):  # the scheduler's own VE sigma at the current index
            s_ve = float(sched.sigmas[sched.step_index or 0])
        else:
            ac = float(alphas_cumprod[int(t)])
            s_ve = ((1 - ac) / ac) ** 0.5
        alpha = (1 + s_ve**2) ** -0.5
        return eps_at(x_in, alpha, s_ve * alpha)

    return loop(sched, model, x_T, **extra)


def loop(sched, model: Callable[[Tensor, Tensor], Tensor], x_T: Tensor, **step_options) -> Tensor:
    """diffusers' own sampling loop over ``sched`` (set to its steps); ``model(x_in, t)`` -> eps."""
    x = x_T * sched.init_noise_sigma
    for t in sched.timesteps:
        x = sched.step(model(sched.scale_model_input(x, t), t), t, x, **step_options).prev_sample
    return x
