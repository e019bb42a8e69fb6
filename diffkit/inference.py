"""Using a trained checkpoint: load it, sample, evaluate, forecast (what the CLI calls).

Sampling and evaluation do not need Lightning: this module imports only torch and the core.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from diffkit import checkpoint as ckpt
from diffkit.config import DiffusionConfig, build
from diffkit.domain import Domain
from diffkit.errors import ConfigError
from diffkit.registry import get_domain


def load_model(checkpoint: Path | str, *, ema: bool = True, which: str = "latest"):
    """``(domain, net, schedule, checkpoint)`` from a checkpoint; EMA weights by default."""
    found = ckpt.load_checkpoint(Path(checkpoint), which=which)
    domain = get_domain(found.domain)
    from diffkit.schedules import from_config

    model_cfg = build(domain.config, found.config.get("model", {}), "model")
    diffusion = build(DiffusionConfig, found.config.get("diffusion", {}), "diffusion")
    net = domain.build_network(model_cfg, diffusion)
    try:
        net.load_state_dict(found.ema if ema else found.model)
    except RuntimeError:
        raise ckpt.CheckpointError(
            f"the weights in {str(found.path)!r} do not fit the network "
            "its config.json describes; the checkpoint is damaged."
        ) from None
    return domain, net.eval(), from_config(found.config["schedule"]), found


@torch.no_grad()
def sample_checkpoint(
    checkpoint: Path | str,
    n: int = 64,
    *,
    sampler: str = "ddim",
    steps: int | None = 50,
    seed: int = 0,
    ema: bool = True,
    options: dict | None = None,
) -> torch.Tensor:
    """``n`` samples from a checkpoint in the domain's own units.

    ``options`` (e.g. ``{"class": 7, "guidance": 3.0}`` from ``diffkit sample``'s flags)
    reach ``domain.generate`` as keyword arguments; a domain whose ``generate`` takes none
    of them gets a ConfigError naming the first.
    """
    if n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}.")
    domain, net, schedule, found = load_model(checkpoint, ema=ema)
    options = options or {}
    check_generate_options(domain, options)
    model_cfg = build(domain.config, found.config.get("model", {}), "model")
    return domain.generate(
        net,
        schedule,
        n,
        config=model_cfg,
        settings=found.config.get("settings", {}),
        sampler=sampler,
        steps=steps,
        prediction=found.config["prediction"],
        generator=torch.Generator().manual_seed(seed),
        **options,
    )


def check_generate_options(domain: Domain, options: dict) -> None:
    """ConfigError for an option ``domain.generate`` does not take (it may check more)."""
    import inspect

    params = inspect.signature(domain.generate).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return  # the domain checks its own options
    for key in options:
        if key not in params:
            raise ConfigError(f"domain {domain.name!r} does not support --{key} when sampling.")


@torch.no_grad()
def evaluate_checkpoint(
    checkpoint: Path | str, data: Path | str | None = None, *, seed: int = 0, ema: bool = True
) -> dict[str, Any]:
    """The domain's metrics for a checkpoint, on ``data`` or the run's own data."""
    domain, net, schedule, found = load_model(checkpoint, ema=ema)
    model_cfg = build(domain.config, found.config.get("model", {}), "model")
    path = data if data is not None else found.config.get("data")
    loaded = domain.load_data(model_cfg, Path(path) if path else None)
    metrics = domain.evaluate(
        net,
        schedule,
        loaded,
        config=model_cfg,
        settings=found.config.get("settings", {}),
        prediction=found.config["prediction"],
        generator=torch.Generator().manual_seed(seed),
    )
    return {"checkpoint": str(found.path), "step": found.step, **metrics}


@torch.no_grad()
def forecast_checkpoint(
    checkpoint: Path | str,
    out: Path | str,
    data: Path | str | None = None,
    *,
    num_samples: int = 100,
    sampler: str = "ddpm",
    steps: int | None = None,
    raw: bool = False,
    seed: int = 0,
    ema: bool = True,
) -> list[Path]:
    """Forecast past the end of ``data`` (default the run's data); returns the files written."""
    if not 1 <= num_samples <= 1_000_000:
        raise ConfigError(f"--num-samples must lie in 1..1000000, got {num_samples}.")
    domain, net, schedule, found = load_model(checkpoint, ema=ema)
    if domain.forecast is None:
        raise ConfigError(
            f"domain {domain.name!r} does not forecast; use `diffkit sample` for its checkpoints."
        )
    model_cfg = build(domain.config, found.config.get("model", {}), "model")
    path = data if data is not None else found.config.get("data")
    return domain.forecast(
        net,
        schedule,
        Path(path) if path else None,
        Path(out),
        config=model_cfg,
        settings=found.config.get("settings", {}),
        prediction=found.config["prediction"],
        num_samples=num_samples,
        sampler=sampler,
        steps=steps,
        raw=raw,
        generator=torch.Generator().manual_seed(seed),
    )


def write_metrics(metrics: dict, path: Path) -> None:
    """Save metrics as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2) + "\n")
