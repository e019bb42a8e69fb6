"""A benchmark case: what one domain measures, and the context the runner hands it.

A domain contributes cases through ``Domain.bench(suite) -> list[Case]``. A case's ``run``
takes a :class:`Context` and returns a JSON-ready result dict (see :func:`result`): rows of
one metric value per (library, method, NFE), the references it compares with and whether
each ran, the floor a perfect method reaches, and its training curve where it trains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUITES = ("smoke", "quick", "full")
NOT_INSTALLED = "reference not installed"


class Skip(Exception):
    """Raised by a case that cannot run here (its data files are absent); says why."""


@dataclass(frozen=True)
class Context:
    """What the runner tells every case: the suite and the user's sampler/NFE/data choices.

    ``advance`` moves the case's progress bar by one (sampler, NFE) point; ``total`` is how
    many points the runner expects (``len(samplers) * len(nfes)``).
    """

    suite: str = "smoke"
    samplers: tuple[str, ...] = ("ddpm", "ddim", "heun", "dpmpp_2m", "unipc")
    nfes: tuple[int, ...] = (5, 10, 20, 50)
    data_dir: Path | None = None
    device: str = "cpu"
    seed: int = 0
    advance: Callable[[], None] = field(default=lambda: None, compare=False, repr=False)

    def signature(self) -> dict[str, Any]:
        """The settings a cached result must match to be reused."""
        return {
            "suite": self.suite,
            "samplers": list(self.samplers),
            "nfes": list(self.nfes),
            "data_dir": str(self.data_dir) if self.data_dir else None,
            "device": self.device,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class Case:
    """One benchmark of one domain.

    Attributes
    ----------
    domain, name
        ``domain/name`` identifies the case (its cache file is ``cases/domain-name.json``).
    title
        One line for the report's section heading.
    metric, unit
        The row key the tables and figures show, and its axis label with units.
    references
        The implementations or laws the case compares with (each reported as run, or why not).
    run
        ``(Context) -> dict`` built with :func:`result`.
    metrics
        Further row keys the report tables (e.g. CRPS beside CRPS-sum).
    higher_better
        The metrics (of ``metric`` and ``metrics``) where higher is better, like accuracy.
    log_y
        Whether the figure's metric axis is logarithmic.
    nfe_label
        The NFE axis' label (a forecaster counts calls per forecast step).
    labels
        Axis labels with units of the further ``metrics``, by key (default the key).
    """

    domain: str
    name: str
    title: str
    metric: str
    unit: str
    references: tuple[str, ...]
    run: Callable[[Context], dict]
    metrics: tuple[str, ...] = ()
    higher_better: tuple[str, ...] = ()
    log_y: bool = True
    nfe_label: str = "network calls per sample (NFE)"
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.domain}-{self.name}"

    def label(self, metric: str) -> str:
        """The axis label of ``metric``, with its units."""
        return self.unit if metric == self.metric else self.labels.get(metric, metric)


def row(library: str, method: str, nfe: int | None, **values: Any) -> dict[str, Any]:
    """One result: ``library`` ("diffkit" or a reference's name), its method, true model calls.

    ``nfe`` is None for a reference that calls no network (a random walk, the true law).
    """
    return {"library": library, "method": method, "nfe": nfe, **values}


def result(
    rows: list[dict],
    references: dict[str, str],
    *,
    floor: dict[str, float] | None = None,
    curve: list[tuple[int, float]] | None = None,
    setup: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """A case's JSON-ready result.

    ``references`` maps each reference name to ``"ok"``, :data:`NOT_INSTALLED` or another
    reason it did not run; ``floor`` holds the metric of a perfect method (exact samples,
    the true law); ``curve`` is the training loss by step. ``extra`` may hold ``notes``,
    markdown paragraphs the report prints after the training lines.
    """
    return {
        "rows": rows,
        "references": references,
        "floor": floor or {},
        "curve": [list(p) for p in curve or []],
        "setup": setup,
        **extra,
    }
