"""What a domain hands the engine: a network, data, conditioning, sampling and evaluation.

The core never imports a domain. A domain is a :class:`Domain` value that a package exposes
through the ``diffkit.domains`` entry-point group; :mod:`diffkit.registry` finds it by name.

Batches from a domain's datasets are either a tensor ``x0`` of shape ``(B, ...)`` or a dict
with key ``"x"`` plus optional ``"mask"`` (1 where observed) and any conditioning tensors,
which reach the network as keyword arguments: ``net(x_t, t, **cond)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from diffkit.config import bounded

Tensor = torch.Tensor


@dataclass(frozen=True)
class DomainData:
    """A domain's data: training and validation sets and the settings sampling needs.

    ``settings`` is JSON-ready (scaling constants, a tokenizer path, a series length); it is
    saved in every checkpoint's ``config.json`` and handed back to ``generate``/``evaluate``.
    ``config`` is the domain config completed from the data (the number of series, the
    frequency), or None when the data leave it as it was; the run saves and builds from it.
    """

    train: Dataset
    val: Dataset | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    config: Any = None


@dataclass(frozen=True)
class Domain:
    """A domain plugin.

    Attributes
    ----------
    name
        The name users type: ``diffkit train --domain NAME``.
    config
        A frozen dataclass type whose fields all have defaults (the ``[model]`` section).
    build_network
        ``(config, diffusion) -> nn.Module`` called as ``net(x_t, t, **cond)``; ``diffusion``
        is the run's :class:`~diffkit.config.DiffusionConfig` (for networks that own their
        schedule, like a forecaster that samples inside its own loop).
    load_data
        ``(config, path or None) -> DomainData``; ``None`` means the built-in default data.
    generate
        ``(net, schedule, n, *, config, settings, sampler, steps, prediction, generator,
        options) -> Tensor``: ``n`` samples in the domain's own units (conditioning is its
        business); ``options`` is an instance of ``options["sample"]`` or None.
    evaluate
        ``(net, schedule, data, *, config, settings, prediction, generator, options) -> dict``
        of float metrics; ``options`` is an instance of ``options["evaluate"]`` or None.
    save_samples
        ``(samples, path) -> None``; raises a ConfigError for a file type it cannot write.
    description
        One line for ``diffkit info`` and help texts.
    loss
        Optional ``(net, batch, schedule, *, prediction, weighting, generator) -> (B,)``
        per-example training loss, for networks that do more than denoise one tensor (an
        RNN over time that conditions a denoiser per step). It may instead return a dict
        ``{"loss": (B,), name: (B,), ...}``: the engine optimises ``"loss"`` and logs each
        other term as ``loss/name``. By default :func:`diffkit.training.batch_loss` on
        ``split_batch(batch)``.
    defaults
        The domain's own defaults of ``[train]`` and ``[diffusion]`` keys, by section (e.g.
        ``{"diffusion": {"T": 100}, "train": {"batch_size": 64}}``); the user's config
        file and flags still override them.
    defaults_for
        Optional ``(model) -> {section: {key: value}}``: defaults that depend on the run's
        ``[model]`` values (``defaults`` under the user's), laid over ``defaults`` and
        under the user's own: a network that trains best on a diffusion of its own.
    forecast
        Optional ``(net, schedule, data, out, *, config, settings, prediction, num_samples,
        sampler, steps, raw, generator) -> list[Path]`` behind ``diffkit forecast``: forecast
        past the end of ``data`` (a path, or None for the run's data), write ``out`` and
        return the files written.
    impute
        Optional ``(net, schedule, data, out, *, config, settings, prediction, sampler,
        steps, generator, options) -> list[Path]`` behind ``diffkit impute``: sample the
        missing values of ``data`` (a path) conditioned on its observed ones, write the
        filled table to ``out`` (and whatever else it draws) and return the files written.
    prepare
        Optional ``(net, data, config) -> DomainData``, called by ``fit`` after the network
        is built and before training: a step the diffusion fit needs first (the images
        domain's latent mode trains its autoencoder into ``net`` and returns the data as
        latents). Default: none.
    options
        The domain's own flags of ``diffkit sample``, ``evaluate``, ``forecast`` and
        ``impute``: by command
        name, a frozen dataclass whose fields (made with :func:`option`) the CLI turns into
        flags, parses and hands to the domain as an instance (see :mod:`diffkit.options`).
    bench
        Optional ``(suite) -> list[Case]``: the domain's cases of ``diffkit bench`` for the
        suite "smoke", "quick" or "full" (see :class:`diffkit.bench.Case`). Default: none.
    """

    name: str
    config: type
    build_network: Callable[[Any, Any], torch.nn.Module]
    load_data: Callable[[Any, Path | None], DomainData]
    generate: Callable[..., Tensor]
    evaluate: Callable[..., dict[str, float]]
    save_samples: Callable[[Tensor, Path], None]
    description: str = ""
    loss: Callable[..., Tensor] | None = None
    defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    defaults_for: Callable[[dict[str, Any]], dict[str, dict[str, Any]]] | None = None
    forecast: Callable[..., list[Path]] | None = None
    impute: Callable[..., list[Path]] | None = None
    prepare: Callable[[torch.nn.Module, DomainData, Any], DomainData] | None = None
    options: dict[str, type] = field(default_factory=dict)
    bench: Callable[[str], list] | None = None


def option(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    low: float | None = None,
    high: float | None = None,
    open_high: bool = False,
) -> Any:
    """A field of a command-options dataclass: its default, help text, flag and range.

    The flag is ``--field-name`` unless ``flag`` names another (``"--class"`` for a field
    ``class_``). A default of None means "not given": the domain falls back to the run's own.
    ``low``/``high`` declare the range a given value must lie in (``open_high``: below
    ``high``); :func:`diffkit.options.build_options` checks it and the help text shows it.
    """
    return bounded(default, low, high, open_high=open_high, help=help, flag=flag)


@dataclass(frozen=True)
class EvaluateOptions:
    """``diffkit evaluate`` flags of a domain that samples; None keeps what training saved."""

    sampler: str | None = option(None, "Sampler of the samples evaluation draws.")
    steps: int | None = option(None, "Model calls per sample.", low=1, high=1_000_000)
    num_samples: int | None = option(
        None, "Samples to draw (per window or in all).", low=1, high=1_000_000
    )

    def __post_init__(self):
        from diffkit.config import check_bounds
        from diffkit.errors import check_choice

        check_bounds(self)  # built in code too, not only through build_options
        if self.sampler is not None:  # a Gaussian or a masked sampler; the model checks which
            from diffkit.discrete import SAMPLERS as MASKED
            from diffkit.sampling import SAMPLERS

            check_choice("sampler", self.sampler, {**SAMPLERS, **MASKED})

    def onto(self, config, **fields: str):
        """``config`` with each given option replacing the field ``fields`` names for it.

        ``options.onto(config, sampler="eval_sampler", steps="eval_steps")``; an option
        left None keeps the config's value.
        """
        import dataclasses

        changes = {fields[k]: getattr(self, k) for k in fields if getattr(self, k) is not None}
        return dataclasses.replace(config, **changes)


def build_network(domain: Domain, config: Any, diffusion: Any) -> torch.nn.Module:
    """``domain.build_network(config, diffusion)``; a network too large to allocate is a
    ConfigError naming the domain (a typo such as ``--num-cells 100000000``), not a crash."""
    import re

    from diffkit.errors import ConfigError

    try:
        return domain.build_network(config, diffusion)
    except (RuntimeError, MemoryError) as e:  # torch's allocator raises RuntimeError
        if not isinstance(e, MemoryError) and "alloc" not in str(e):
            raise
        asked = re.search(r"allocate (\d+) bytes", str(e))
        size = f" ({int(asked.group(1)) / 2**30:.1f} GiB for one tensor)" if asked else ""
        raise ConfigError(
            f"the {domain.name} network its [model] settings describe does not fit in "
            f"memory{size}; choose smaller sizes."
        ) from None


def split_batch(batch) -> tuple[Tensor, dict, Tensor | None]:
    """``(x0, cond, mask)`` from a tensor batch or a dict batch (see module docstring)."""
    if isinstance(batch, Tensor):
        return batch, {}, None
    if isinstance(batch, (list, tuple)):  # TensorDataset yields 1-tuples
        return batch[0], {}, None
    cond = {k: v for k, v in batch.items() if k not in ("x", "mask")}
    return batch["x"], cond, batch.get("mask")


def save_samples_as(
    samples: Tensor, path: Path, suffix: str, write: Callable[[Tensor, Path], None]
) -> None:
    """Save samples as ``.npy``, ``.pt`` or the domain's own ``suffix`` through ``write``.

    Shared by the domains' ``save_samples``; any other suffix is a ConfigError naming the three.
    """
    import numpy as np

    from diffkit.errors import ConfigError

    path = Path(path)
    kind = path.suffix.lower()
    if kind not in (suffix, ".npy", ".pt"):
        raise ConfigError(f"--out must end in {suffix}, .npy or .pt, got {str(path)!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    x = samples.detach().cpu().float()
    if kind == ".npy":
        np.save(path, x.numpy())
    elif kind == ".pt":
        torch.save(x, path)
    else:
        write(x, path)
