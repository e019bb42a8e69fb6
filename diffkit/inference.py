"""Using a trained checkpoint: load it, sample, evaluate, forecast (what the CLI calls).

Sampling and evaluation do not need Lightning: this module imports only torch and the core.
Each function takes ``device`` (``"auto"`` takes a GPU when present; see
:func:`diffkit.devices.resolve_device`) and the domain's own options of the command, as an
instance of the domain's options dataclass or a dict keyed by field or flag name
(``{"class": 7, "guidance": 3.0}``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from diffkit import checkpoint as ckpt
from diffkit.chunks import CHUNK, draw_in_chunks
from diffkit.config import DiffusionConfig, build
from diffkit.devices import generator_on, resolve_device
from diffkit.domain import Domain, build_network
from diffkit.errors import ConfigError
from diffkit.fitted import spacing_context
from diffkit.options import build_options
from diffkit.process import Prediction
from diffkit.reading import check_run_path, from_run
from diffkit.registry import get_domain


def load_model(checkpoint: Path | str, *, ema: bool = True, which: str = "latest", device="cpu"):
    """``(domain, net, schedule, checkpoint)`` from a checkpoint; EMA weights by default.

    The network is in eval mode on ``device``. ``which`` is ``"latest"`` or ``"best"`` (by
    validation loss) for a run directory; the commands read the best (:data:`CHOSEN`).
    """
    return _load(checkpoint, ema, which, device)[:4]


def _load(checkpoint, ema: bool, which: str, device):
    found = ckpt.load_checkpoint(Path(checkpoint), which=which)
    domain = get_domain(found.domain)
    model_cfg, diffusion, schedule = saved_configs(domain, found)
    net = build_network(domain, model_cfg, diffusion)
    try:
        net.load_state_dict(found.ema if ema else found.model)
    except RuntimeError:
        raise ckpt.CheckpointError(
            f"the weights in {str(found.path)!r} do not fit the network "
            "its config.json describes; the checkpoint is damaged."
        ) from None
    net = net.to(resolve_device(device)).eval()
    return domain, net, schedule, found, model_cfg


def saved_configs(domain: Domain, found: ckpt.Checkpoint):
    """``(model config, DiffusionConfig, Schedule)`` of a checkpoint's ``config.json``.

    A missing or mistyped key is one CheckpointError naming the file.
    """
    from diffkit.schedules import from_config

    where = f"{str(found.path / 'config.json')!r}"
    try:
        model = build(domain.config, found.config.get("model", {}), "model")
        diffusion = build(DiffusionConfig, found.config.get("diffusion", {}), "diffusion")
        schedule = from_config(found.config["schedule"])
        Prediction.parse(found.config["prediction"])
    except KeyError as e:
        raise ckpt.CheckpointError(
            f"{where} has no {e.args[0]!r} entry; the checkpoint is damaged, use another one."
        ) from None
    except (ConfigError, TypeError, AttributeError) as e:
        raise ckpt.CheckpointError(
            f"{where} does not describe a valid run ({e}); use another checkpoint."
        ) from None
    return model, diffusion, schedule


def run_settings(found: ckpt.Checkpoint) -> dict:
    """The checkpoint's data ``settings``, with the paths it and the run name checked.

    ``config.json`` may be edited: its data path and ``settings.source`` must name a
    regular file or a folder (never a device or pipe), else one CheckpointError.
    """
    where = _where(found)
    settings = found.config.get("settings", {})
    if not isinstance(settings, dict):
        raise ckpt.CheckpointError(f"{where} has settings that are not a table; restore it.")
    check_run_path(found.config.get("data"), where)
    check_run_path(settings.get("source"), where)
    return settings


def _where(found: ckpt.Checkpoint) -> str:
    return repr(str(found.path / "config.json"))


def _reading_run_data(found: ckpt.Checkpoint, given=None):
    """A context in which the data the run names is read (not ``given`` by the user)."""
    settings = found.config.get("settings", {})
    named = found.config.get("data") or settings.get("source")
    return from_run(None if given is not None else named, _where(found))


def command_options(domain: Domain, command: str, values=None):
    """The domain's options of ``command`` ("sample", "evaluate", "forecast") as an instance."""
    try:
        return build_options(domain.options.get(command), values)
    except ConfigError as e:
        where = f"domain {domain.name!r}, diffkit {command}"
        raise ConfigError(f"{str(e).rstrip('.')} ({where}).") from None


# A run directory is read at the checkpoint its validation loss chose (checkpoints/best.json),
# else at its latest; checkpoint.describe says which.
CHOSEN = "best"


def _context(checkpoint, ema: bool, device, seed: int):
    domain, net, schedule, found, model_cfg = _load(checkpoint, ema, CHOSEN, device)
    common = {
        "config": model_cfg,
        "settings": run_settings(found),
        "prediction": found.config["prediction"],
        "generator": generator_on(next(net.parameters()).device, seed),
    }
    return domain, net, schedule, found, common


@torch.no_grad()
def sample_checkpoint(
    checkpoint: Path | str,
    n: int = 64,
    *,
    sampler: str = "ddim",
    steps: int | None = 50,
    seed: int = 0,
    ema: bool = True,
    options=None,
    device="auto",
    chunk: int = CHUNK,
    spacing: str | None = None,
) -> torch.Tensor:
    """``n`` samples from a checkpoint in the domain's own units, on the CPU.

    Drawn ``chunk`` at a time; a request too large for the machine's memory is refused after
    a first small chunk (:func:`diffkit.chunks.draw_in_chunks`). ``spacing`` places the
    steps of every sampling call (a name, or ``"fitted"`` for the checkpoint's own from
    ``diffkit fit-steps``, with ``steps`` read as model calls).
    """
    if n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}.")
    domain, net, schedule, found, common = _context(checkpoint, ema, device, seed)
    chosen = command_options(domain, "sample", options)

    def draw(k: int) -> torch.Tensor:
        return domain.generate(
            net, schedule, k, sampler=sampler, steps=steps, options=chosen, **common
        )

    with _reading_run_data(found), spacing_context(found, spacing, sampler, steps):
        return draw_in_chunks(draw, n, chunk=chunk, what="samples")


@torch.no_grad()
def evaluate_checkpoint(
    checkpoint: Path | str,
    data: Path | str | None = None,
    *,
    seed: int = 0,
    ema: bool = True,
    options=None,
    device="auto",
    spacing: str | None = None,
) -> dict[str, Any]:
    """The domain's metrics for a checkpoint, on ``data`` or the run's own data."""
    domain, net, schedule, found, common = _context(checkpoint, ema, device, seed)
    chosen = command_options(domain, "evaluate", options)
    path = data if data is not None else found.config.get("data")
    with _reading_run_data(found, data):
        loaded = domain.load_data(common["config"], Path(path) if path else None)
    with spacing_context(found, spacing):
        metrics = domain.evaluate(net, schedule, loaded, options=chosen, **common)
    return {"checkpoint": str(found.path), "step": found.step, **metrics}


@torch.no_grad()
def forecast_checkpoint(
    checkpoint: Path | str,
    out: Path | str,
    data: Path | str | None = None,
    *,
    sampler: str = "ddpm",
    steps: int | None = None,
    seed: int = 0,
    ema: bool = True,
    options=None,
    device="auto",
    spacing: str | None = None,
) -> list[Path]:
    """Forecast past the end of ``data`` (default the run's data); returns the files written."""
    domain, net, schedule, found, common = _context(checkpoint, ema, device, seed)
    if domain.forecast is None:
        raise ConfigError(
            f"domain {domain.name!r} does not forecast; use `diffkit sample` for its checkpoints."
        )
    chosen = command_options(domain, "forecast", options)
    path = data if data is not None else found.config.get("data")
    with _reading_run_data(found, data), spacing_context(found, spacing, sampler, steps):
        return domain.forecast(
            net,
            schedule,
            Path(path) if path else None,
            Path(out),
            sampler=sampler,
            steps=steps,
            options=chosen,
            **common,
        )


@torch.no_grad()
def impute_checkpoint(
    checkpoint: Path | str,
    data: Path | str,
    out: Path | str,
    *,
    sampler: str = "ddpm",
    steps: int | None = None,
    seed: int = 0,
    ema: bool = True,
    options=None,
    device="auto",
) -> list[Path]:
    """Sample the missing values of ``data`` and write the filled table; returns the files."""
    domain, net, schedule, _, common = _context(checkpoint, ema, device, seed)
    if domain.impute is None:
        raise ConfigError(f"domain {domain.name!r} does not impute missing values.")
    chosen = command_options(domain, "impute", options)
    return domain.impute(
        net, schedule, Path(data), Path(out), sampler=sampler, steps=steps, options=chosen, **common
    )


def write_metrics(metrics: dict, path: Path) -> None:
    """Save metrics as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2) + "\n")
