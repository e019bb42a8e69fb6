"""A whole bench run: collect the cases of the chosen domains, run them, write the report.

The core never imports a domain: each installed domain offers its cases through
``Domain.bench(suite)`` and is found by name in the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from diffkit.bench import plots, report
from diffkit.bench.case import SUITES, Case, Context
from diffkit.bench.header import header
from diffkit.bench.runner import run
from diffkit.errors import ConfigError, check_choice


def benchmarked_domains() -> list[str]:
    """The installed domains that contribute benchmark cases."""
    from diffkit.registry import available, get_domain

    return [name for name in available() if get_domain(name).bench is not None]


def collect(domains: list[str] | None, suite: str) -> list[Case]:
    """The cases of ``domains`` (default: every domain with cases) for ``suite``."""
    from diffkit.registry import get_domain

    check_choice("suite", suite, SUITES)
    names = domains or benchmarked_domains()
    cases: list[Case] = []
    for name in names:
        domain = get_domain(name)
        if domain.bench is None:
            raise ConfigError(
                f"domain {name!r} has no benchmark cases; choose from: "
                f"{', '.join(benchmarked_domains()) or 'none'}."
            )
        cases += domain.bench(suite)
    return cases


def bench(
    context: Context,
    out: Path,
    domains: list[str] | None = None,
    *,
    fresh: bool = False,
    report_only: bool = False,
    command: list[str] | None = None,
    echo: Callable[[str], None] = print,
    progress: bool = True,
) -> dict:
    """Run the suite and write ``report.md``, ``report.json`` and the PNGs into ``out``.

    Returns the report as written to ``report.json``.
    """
    cases = collect(domains, context.suite)
    out = Path(out)
    results = run(
        cases, context, out, fresh=fresh, report_only=report_only, echo=echo, progress=progress
    )
    figs = plots.figures(results, out)
    head = header(context, command)
    path = report.write(head, results, out, figs)
    echo(f"saved {path}, {out / 'report.json'} and {sum(map(len, figs.values()))} figures")
    return {"header": head, "cases": results, "figures": figs}
