"""Errors a user can cause, each carrying one sentence that names the problem and the fix.

The CLI prints ``str(error)`` for any :class:`UserError` and exits with code 2; everything
else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Base of every error caused by input the user controls."""


class ConfigError(UserError, ValueError):
    """An unknown name, an option out of range, or options that do not fit together."""


class ShapeError(UserError, ValueError):
    """A tensor or table whose shape does not match what was asked for."""


class DataError(UserError, ValueError):
    """Data that cannot be used as given (NaN where none may be, too short, wrong columns)."""


class MissingFileError(UserError, FileNotFoundError):
    """A path the user gave that does not exist."""


class CheckpointError(UserError, ValueError):
    """A checkpoint that is truncated, of another domain, or of a newer format."""


def check_choice(what: str, value: str, choices) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ConfigError listing them."""
    if value not in choices:
        valid = ", ".join(sorted(str(c) for c in choices))
        raise ConfigError(f"unknown {what} {value!r}; choose one of: {valid}.")
    return value


def build_by_name(what: str, table: dict, name: str, params: dict):
    """``table[name](**params)``; an unknown name or keyword is a ConfigError naming ``what``."""
    check_choice(what, name, table)
    try:
        return table[name](**params)
    except TypeError as e:  # an unknown keyword
        raise ConfigError(f"{what} {name!r} got an unknown parameter ({e}).") from None


class TrainingError(UserError, ArithmeticError):
    """Training that cannot go on as configured (a NaN or inf loss)."""
