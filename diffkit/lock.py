"""One trainer per run directory: a lock file holding the trainer's PID.

A second ``diffkit train`` into the same ``--out`` is refused while the first runs; a lock
left by a process that no longer exists (killed, machine restarted) is cleared.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from diffkit.errors import ConfigError

LOCK = "train.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _holder(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip() or "0")
    except (OSError, ValueError):
        return None
    return pid if pid > 0 and _alive(pid) else None


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold ``out/train.lock`` for the duration; a ConfigError if a live trainer holds it.

    A run directory this call created is removed again if the run left nothing in it (a
    data error before the first checkpoint leaves no empty folder behind).
    """
    out = Path(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK
    for _ in range(2):  # a stale lock is removed once, then taken
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            pid = _holder(path)
            if pid is not None and pid != os.getpid():
                raise ConfigError(
                    f"another training (PID {pid}) is writing to {str(out)!r}; wait for it "
                    "to end or choose another --out."
                ) from None
            path.unlink(missing_ok=True)
    else:
        raise ConfigError(f"cannot take the lock {str(path)!r}; remove it if no training runs.")
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        if created and not any(out.iterdir()):
            out.rmdir()
