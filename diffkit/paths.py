"""Checks of the paths a command will write, before any work is done.

One place for every command's ``--out``: a file that is a folder, a folder under a file, a
folder that cannot be written or a name too long each get one sentence naming the fix.
The policy on existing files: ``sample`` and ``evaluate`` replace the one file the user
names; ``forecast`` and ``impute``, which also write a chart named after ``--out``, replace
neither without ``--overwrite`` (:func:`check_new_outputs`).
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


def check_new_outputs(paths: list[Path], overwrite: bool, flag: str = "--out") -> None:
    """Refuse to replace any of ``paths`` (a table and the chart beside it) that exists.

    A command that writes a set of files named after ``--out`` replaces them only with
    ``--overwrite``, so a chart or table the user keeps is never replaced without a word.
    """
    existing = [Path(p) for p in paths if Path(p).exists()]
    if existing and not overwrite:
        raise ConfigError(
            f"{str(existing[0])!r} exists; pass --overwrite to replace it or choose another {flag}."
        )


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
