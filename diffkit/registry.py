"""Domains by name, found through the ``diffkit.domains`` entry-point group.

A third-party package adds a domain by declaring, in its pyproject::

    [project.entry-points."diffkit.domains"]
    mydomain = "mypackage.module:domain"

where ``domain`` is a :class:`diffkit.domain.Domain`. The built-in domains register the same way.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from diffkit.domain import Domain
from diffkit.errors import ConfigError

GROUP = "diffkit.domains"


def available() -> list[str]:
    """The names of every installed domain, sorted."""
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def get_domain(name: str) -> Domain:
    """Load the domain registered as ``name``; unknown names list the installed ones."""
    found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not found:
        valid = ", ".join(available()) or "none installed"
        raise ConfigError(f"unknown domain {name!r}; choose one of: {valid}.")
    domain = found[0].load()
    if not isinstance(domain, Domain):
        raise ConfigError(
            f"the entry point for domain {name!r} ({found[0].value}) is not a diffkit Domain; "
            "its package must point at a diffkit.domain.Domain value."
        )
    return domain
