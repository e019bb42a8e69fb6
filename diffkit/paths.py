"""Checks of the paths a command will write, before any work is done.

One place for every command's ``--out``: a file that is a folder, a folder under a file, a
folder that cannot be written or a name too long each get one sentence naming the fix.
The policy on existing files: a file the user named is replaced; a file a command names
after it (:func:`check_side_file`) never replaces one that exists.
"""

from __future__ import annotations

import os
from pathlib import Path

from diffkit.errors import ConfigError

NAME_MAX = 255  # bytes per path component on the common file systems


def check_output_file(path: Path | str, flag: str = "--out") -> Path:
    """``path`` as a file a command may create or replace; a ConfigError otherwise."""
    path = Path(path)
    _check_names(path, flag)  # first: a name too long makes even is_dir() fail
    if path.is_dir():
        raise ConfigError(f"{flag} {str(path)!r} is a folder; name a file, e.g. {path / 'out'}.")
    _check_folder(path.parent, flag)
    return path


def check_side_file(path: Path | str, flag: str) -> Path:
    """A file a command writes beside its ``--out`` under a name the user did not give.

    A named ``--out`` may be replaced (the user chose it); a file named after it (the
    forecast's fan chart beside its table) must not replace one that exists: a ConfigError
    says to name it with ``flag``, which then may replace it, or to choose another.
    """
    path = check_output_file(path, flag)
    if path.exists():
        raise ConfigError(
            f"{str(path)!r} exists and would be replaced; pass {flag} {path} to replace it, "
            f"or {flag} with another name."
        )
    return path


def check_output_dir(path: Path | str, flag: str = "--out") -> Path:
    """``path`` as a folder a command may create or fill; a ConfigError otherwise."""
    path = Path(path)
    _check_names(path, flag)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {str(path)!r} is a file, not a folder; choose another {flag}.")
    _check_folder(path if path.exists() else path.parent, flag)
    return path


def _check_names(path: Path, flag: str) -> None:
    for part in path.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise ConfigError(
                f"{flag} has a name of {len(os.fsencode(part))} bytes; file systems allow "
                f"{NAME_MAX}, so choose a shorter one."
            )


def _check_folder(folder: Path, flag: str) -> None:
    """The nearest existing ancestor of ``folder`` must be a folder this process can write."""
    existing = folder if str(folder) else Path(".")
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            f"{flag} lies under {str(existing)!r}, which is a file; choose a path in a folder."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{flag}: the folder {str(existing)!r} is not writable; choose another location."
        )
