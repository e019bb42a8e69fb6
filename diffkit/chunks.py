"""Large requests in chunks: ``draw(k)`` called for at most ``chunk`` items at a time, the
parts gathered on the CPU, and a request refused before it can exhaust the machine.

``diffkit sample`` (through :func:`diffkit.inference.sample_checkpoint`) and ``diffkit
forecast`` (through the time-series domain's sample paths) share :func:`draw_in_chunks`, so
a device holds one chunk's working memory at a time, and ``--n 10000000`` images is one
clear sentence after a first small chunk instead of the kernel's OOM killer.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from diffkit.errors import ConfigError

Tensor = torch.Tensor

CHUNK = 256  # items per chunk: bounds a device's working memory, not the result
PROBE = 16  # the first chunk of a request larger than one chunk, which prices an item
COPIES = 3  # the parts, their concatenation, one copy to save them


def available_memory() -> int | None:
    """Bytes this process may still allocate, or None where nothing says.

    Linux: ``MemAvailable`` of /proc/meminfo, capped by a cgroup v2 ``memory.max`` (a
    container's limit, less its ``memory.current``); elsewhere psutil when installed, else
    ``os.sysconf`` free pages.
    """
    found = _meminfo_available()
    if found is None:
        try:
            import psutil

            found = int(psutil.virtual_memory().available)
        except ImportError:
            try:
                found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            except (AttributeError, OSError, ValueError):
                return None
    limit = _cgroup_left()
    return found if limit is None else min(found, limit)


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_left() -> int | None:
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(int(limit) - int((root / "memory.current").read_text()), 0)
    except (OSError, ValueError):
        return None


def nbytes(x: Tensor) -> int:
    """Bytes of a tensor's elements."""
    return x.numel() * x.element_size()


def draw_in_chunks(
    draw: Callable[[int], Tensor],
    n: int,
    *,
    chunk: int = CHUNK,
    what: str = "samples",
    copies: int = COPIES,
    available: Callable[[], int | None] | None = None,
) -> Tensor:
    """``draw(k)`` (k, ...) for chunks of ``n`` items, concatenated along dim 0 on the CPU.

    A request of at most ``chunk`` items is one call. A larger one first draws ``PROBE``
    items, estimates the request's memory from them (``copies`` times their bytes per item
    times ``n``) and raises a ConfigError if that exceeds the memory available; then draws
    the rest ``chunk`` at a time. Chunks whose trailing sizes differ (zero-padded texts)
    are zero-padded to the largest. Random state flows through ``draw``'s own generator,
    so a seed gives one result for a given ``n`` and ``chunk``.
    """
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ConfigError(f"chunk must be a whole number >= 1, got {chunk!r}.")
    if n <= chunk:
        return draw(n).cpu()
    parts = [draw(PROBE).cpu()]
    free = (available or available_memory)()  # default: the machine's, looked up now
    check_memory(nbytes(parts[0]) / PROBE, n, what=what, copies=copies, available=free)
    done = PROBE
    while done < n:
        k = min(chunk, n - done)
        parts.append(draw(k).cpu())
        done += k
    return concat(parts)


def check_memory(per_item: float, n: int, *, what: str, copies: int, available: int | None):
    """A ConfigError if ``n`` items of ``per_item`` bytes, ``copies`` times, need more than
    ``available`` bytes (None: unknown, no check)."""
    need = per_item * n * copies
    if available is None or need <= available:
        return
    most = max(int(available / (per_item * copies)), 1)
    raise ConfigError(
        f"{n} {what} need about {_size(need)} of memory ({_size(per_item)} each, {copies} "
        f"copies while gathered and saved), more than the {_size(available)} available; "
        f"ask for at most {most} at a time."
    )


def concat(parts: list[Tensor]) -> Tensor:
    """``torch.cat`` along dim 0, zero-padding trailing sizes that differ to the largest."""
    shape = [max(p.shape[d] for p in parts) for d in range(1, parts[0].ndim)]
    if any(list(p.shape[1:]) != shape for p in parts):
        padded = []
        for p in parts:
            out = p.new_zeros((p.shape[0], *shape))
            out[(slice(None), *(slice(0, s) for s in p.shape[1:]))] = p
            padded.append(out)
        parts = padded
    return torch.cat(parts)


def _size(b: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if b < 1000 or unit == "TB":
            return f"{b:.0f} {unit}" if unit == "bytes" else f"{b:.1f} {unit}"
        b /= 1000
    return f"{b:.1f} TB"
