"""The cross-domain benchmark runner behind ``diffkit bench``.

Domains contribute :class:`Case` values through ``Domain.bench(suite)``; :func:`bench` runs
them (caching each result in the output folder) and writes ``report.md``, ``report.json``
and the figures.
"""

from diffkit.bench.case import NOT_INSTALLED, SUITES, Case, Context, Skip, result, row
from diffkit.bench.nfe import CALLS, Counted, counting, steps_for
from diffkit.bench.suite import bench, benchmarked_domains, collect

__all__ = [
    "CALLS",
    "NOT_INSTALLED",
    "SUITES",
    "Case",
    "Context",
    "Counted",
    "Skip",
    "bench",
    "benchmarked_domains",
    "collect",
    "counting",
    "result",
    "row",
    "steps_for",
]
