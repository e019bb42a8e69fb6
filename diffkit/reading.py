"""Checks of the paths a command reads: one guard for every reader of user and run files.

Every data file a user names (``--data``, ``--config``, ``--inpaint``) and every path a run
directory names (the data path and ``settings.source`` in ``config.json``) is opened only as
a regular, non-empty file of bounded size: a folder where a file is needed, a device
(``/dev/zero``), a pipe or socket, an empty file or a file too large each get one sentence
naming the fix, and "does not exist" is said only of a path that does not exist.
:func:`reading` turns what a parser raises on a file it cannot read (binary bytes given as
CSV, a truncated ``.gz``) into the same kind of sentence, naming the exception's type but
never quoting the file; :func:`from_run` keeps a run-named file's content out of messages.
"""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from diffkit.errors import CheckpointError, DataError, MissingFileError, UserError

# Larger files are refused before reading (set DIFFKIT_MAX_INPUT_BYTES to allow them).
MAX_INPUT_BYTES = 16 * 2**30
# the path check_input saw last: what a reader's error is about (see from_run)
_LAST_INPUT: ContextVar[str | None] = ContextVar("last_input", default=None)


def max_input_bytes() -> int:
    """The largest file a reader opens: ``$DIFFKIT_MAX_INPUT_BYTES`` or 16 GiB."""
    try:
        return int(os.environ.get("DIFFKIT_MAX_INPUT_BYTES", MAX_INPUT_BYTES))
    except ValueError:
        return MAX_INPUT_BYTES


def check_input(path: Path | str, what: str = "--data", *, folder: bool = False) -> Path:
    """``path`` as a regular file a reader may open (or a folder, where ``folder``).

    Parameters
    ----------
    path
        The path as given (``~`` is expanded).
    what
        How messages name it: ``"--data"``, ``"config file"``.
    folder
        Accept a folder too (a reader of folders of images checks the files in it).

    Raises
    ------
    MissingFileError
        Only when nothing exists at ``path``.
    DataError
        A folder (unless ``folder``), a device, pipe or socket, an empty or too large file,
        or one this process may not read.
    """
    path = Path(path).expanduser()
    _LAST_INPUT.set(os.path.realpath(path))
    shown = f"{what} {str(path)!r}"
    try:
        info = path.stat()  # follows links: a link to /dev/zero is a device
    except FileNotFoundError:
        raise MissingFileError(f"{shown} does not exist; check the path.") from None
    except OSError as e:  # a name too long, a loop of links, a file where a folder is
        raise DataError(f"{shown} cannot be opened ({_reason(e)}); check the path.") from None
    if stat.S_ISDIR(info.st_mode):
        if folder:
            return path
        raise DataError(f"{shown} is a folder; pass a file inside it.")
    if not stat.S_ISREG(info.st_mode):
        raise DataError(
            f"{shown} is not a regular file (a device, pipe or socket); pass a data file."
        )
    if info.st_size == 0:
        raise DataError(f"{shown} is empty; pass a file with data in it.")
    if info.st_size > max_input_bytes():
        raise DataError(
            f"{shown} holds {info.st_size} bytes, more than the {max_input_bytes()} diffkit "
            "reads; pass a smaller file or raise DIFFKIT_MAX_INPUT_BYTES."
        )
    if not os.access(path, os.R_OK):
        raise DataError(f"{shown} is not readable by this user; fix its permissions.")
    return path


def read_bytes(path: Path | str, what: str = "--data") -> bytes:
    """The bytes of the regular file ``path`` (checked by :func:`check_input`)."""
    path = check_input(path, what)
    with reading(path, what, "a file"):
        return path.read_bytes()


@contextmanager
def reading(
    path: Path | str, what: str, expected: str, fix: str = "check its format"
) -> Iterator[None]:
    """Turn a parser's failure on ``path`` into one DataError naming ``expected``.

    ``with reading(path, "--data", "a CSV table"): frame = pd.read_csv(path)``: undecodable
    bytes, a parse error, a truncated or corrupt ``.gz`` or an I/O error become "cannot
    read --data 'x.csv' as a CSV table (UnicodeDecodeError); ...". The message names the
    exception's type, never its text, which may quote the file; ``fix`` ends the sentence
    unless the file is truncated. Errors users cause pass unchanged.
    """
    try:
        yield
    except UserError:
        raise
    except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile) as e:
        truncated = isinstance(e, EOFError) or "gzip" in type(e).__name__.lower()
        hint = "it is truncated or corrupt, restore it" if truncated else fix
        raise DataError(
            f"cannot read {what} {str(path)!r} as {expected} ({type(e).__name__}); {hint}."
        ) from None


@contextmanager
def from_run(path: str | None, where: str) -> Iterator[None]:
    """Read data a run directory names without letting its content reach a message.

    A run's ``config.json`` may be edited to name any file (``/etc/passwd``): a DataError
    raised while it is read (the class that may quote cells or column names) becomes one
    CheckpointError naming the path and ``where``, not the content; a missing file is said
    to be named by ``where`` (the user gave no ``--data``). Only errors about that file
    change: the last path :func:`check_input` saw must be it, so an error about a file the
    user named while the run's data is in use (``--inpaint``) keeps its own message.
    """
    if path is None or not is_path(path):
        yield  # built-in data, or a file the user named: its messages may quote it
        return
    try:
        yield
    except (MissingFileError, DataError) as e:
        if _LAST_INPUT.get() != os.path.realpath(path):
            raise  # about another file (one the user named, like --inpaint)
        if not isinstance(e, MissingFileError):
            raise CheckpointError(
                f"{where} names the data {path!r}, which this run cannot use "
                f"({type(e).__name__}); pass --data FILE or restore the run's config.json."
            ) from None
        raise MissingFileError(
            f"{where} names the data {path!r}, which does not exist; pass --data FILE or "
            "put the file back."
        ) from None


def check_run_path(value, where: str) -> str | None:
    """A path a run's ``config.json`` names, checked as :func:`check_input` does.

    ``value`` may be None, a built-in data name (no path separator: ``"ring"``,
    ``"synthetic"``) or a path that no longer exists (a command that needs it says so when
    it reads it), which pass unchanged; anything else must be a regular file or a folder,
    else a CheckpointError naming ``where`` (never its content).
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise CheckpointError(f"{where} holds a data path that is not text; restore it.")
    if not is_path(value) or not os.path.lexists(value):
        return value  # a built-in data set's name, or a file moved away: said when it is read
    try:
        check_input(value, "the run's data", folder=True)
    except UserError as e:
        raise CheckpointError(f"{where}: {e}") from None
    return value


def is_path(value) -> bool:
    """Whether a run's data entry names a file or folder, not a built-in set ("ring")."""
    return isinstance(value, str) and (os.sep in value or bool(Path(value).suffix))


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__
