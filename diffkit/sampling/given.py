"""Sampler options given from outside a program: ``diffkit sample --sampler-option K=V``.

The commands hold the given ``key=value`` strings in :data:`GIVEN` while they run
(:func:`given_options`); both front doors (:func:`diffkit.sample` and
:func:`diffkit.discrete.sample`) read them as options of the sampler they run
(:func:`read_given`), each value as the type of that option's default (a number where the
default is None), and the options passed in code win. Every domain's sampling reaches the
sampler through a front door, so none of them needs to carry the options itself.
"""

from __future__ import annotations

import contextlib
import inspect
from contextvars import ContextVar

from diffkit.config import coerce
from diffkit.errors import ConfigError

GIVEN: ContextVar[dict[str, str]] = ContextVar("given_sampler_options", default={})  # noqa: B039


def split_pairs(pairs) -> dict[str, str]:
    """``["step_lr=1e-4", "n_steps_each=10"]`` as ``{"step_lr": "1e-4", ...}``."""
    out = {}
    for pair in pairs or ():
        key, eq, value = pair.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise ConfigError(f"--sampler-option takes key=value, like step_lr=1e-4; got {pair!r}.")
        out[key.strip()] = value.strip()
    return out


@contextlib.contextmanager
def given_options(pairs):
    """Hold the ``key=value`` strings ``pairs`` as the given sampler options inside."""
    token = GIVEN.set(split_pairs(pairs))
    try:
        yield
    finally:
        GIVEN.reset(token)


def read_given(fn, name: str, check) -> dict:
    """The given options as options of sampler ``fn`` (registered as ``name``), typed.

    ``check(fn, name, options)`` raises for a name the sampler does not take.
    """
    given = GIVEN.get()
    if not given:
        return {}
    check(fn, name, given)
    params = inspect.signature(fn).parameters
    out = {}
    for key, value in given.items():
        default = params[key].default
        kind = type(default) if isinstance(default, bool | int | float | str) else float
        out[key] = coerce(value, kind, f"--sampler-option {key}")
    return out
