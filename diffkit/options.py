"""A domain's own command flags: from its options dataclass to click options and back.

A domain declares the flags of ``diffkit sample``, ``evaluate`` and ``forecast`` as frozen
dataclasses (``Domain.options``, fields made with :func:`diffkit.domain.option`). The CLI
adds one click option per field to the command of the checkpoint's domain
(:func:`click_options`), and the values given reach the domain as an instance of the
dataclass (:func:`build_options`), checked against the ranges the fields declare and by the
dataclass itself.
"""

from __future__ import annotations

import typing
from dataclasses import fields
from pathlib import Path
from typing import Any

from diffkit.config import check_bounds, coerce, flag_of, optional_inner, range_text, tuple_item
from diffkit.errors import ConfigError


def _key(name: str) -> str:
    return name.lstrip("-").replace("-", "_")


def build_options(cls: type | None, values: dict[str, Any] | Any = None):
    """An instance of ``cls`` from ``values`` keyed by field name or flag (``"class"``).

    ``values`` may already be an instance of ``cls``; None values are left at the default.
    Every value must lie in the range its field declares (``option(..., low=, high=)``).
    A key that is no field raises a ConfigError listing the flags there are; with
    ``cls`` None (the domain declares no options) any value does.
    """
    if cls is not None and isinstance(values, cls):
        check_bounds(values)
        return values
    values = {k: v for k, v in (values or {}).items() if v is not None}
    if cls is None:
        if values:
            raise ConfigError(f"unknown option --{_key(next(iter(values))).replace('_', '-')}.")
        return None
    by_key = {_key(flag_of(f)): f for f in fields(cls)} | {f.name: f for f in fields(cls)}
    hints = typing.get_type_hints(cls)
    out = {}
    for key, value in values.items():
        f = by_key.get(_key(key))
        if f is None:
            listed = ", ".join(flag_of(f) for f in fields(cls))
            raise ConfigError(f"unknown option --{_key(key).replace('_', '-')}; use {listed}.")
        out[f.name] = coerce(value, hints[f.name], flag_of(f), f.metadata)
    options = cls(**out)
    check_bounds(options)  # the ranges the fields declare (diffkit.domain.option), in one place
    return options


def click_options(cls: type) -> list:
    """One command-line option per field of ``cls``, each defaulting to None (not given).

    Typer builds them from a synthetic signature, so they render and parse like the
    command's own options.
    """
    import inspect

    import typer

    hints = typing.get_type_hints(cls)
    params = []
    for f in fields(cls):
        kind = optional_inner(hints[f.name]) or hints[f.name]
        help_text = f.metadata.get("help", "")
        if f.metadata.get("min") is not None or f.metadata.get("max") is not None:
            help_text += f" [range: {range_text(f.metadata)}]"
        if f.default is not None:
            help_text += f" [default: {_shown(f.default)}]"
        flag = flag_of(f)
        if kind is bool:
            decls, annotation = [f"{flag}/--no-{flag[2:]}"], bool
        else:
            annotation = kind if kind in (int, float, Path) else str
            decls = [flag]
        default = typer.Option(None, *decls, help=markup_safe(help_text), show_default=False)
        if tuple_item(kind) is not None:
            default.metavar = "LIST"
        params.append(
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=typing.Optional[annotation],  # noqa: UP045 (typer reads Optional)
            )
        )

    def command(**kwargs):  # only its signature is used
        return kwargs

    command.__signature__ = inspect.Signature(params)
    app = typer.Typer(add_completion=False)
    app.command()(command)
    return list(typer.main.get_command(app).params)


def markup_safe(text: str) -> str:
    """Help text with ``[...]`` kept literal (typer renders help as rich markup)."""
    from rich.markup import escape

    return escape(text)


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)
