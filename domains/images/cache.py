"""An on-disk cache of the models the images domain trains once per data set.

``diffkit evaluate``'s feature classifiers and ``--latent``'s autoencoder are pure functions
of their training images and settings, so each is stored under a hash of both and trained
again only when either changes. The folder is ``$DIFFKIT_CACHE`` when set, else
``$XDG_CACHE_HOME/diffkit`` or ``~/.cache/diffkit``; ``DIFFKIT_CACHE=off`` turns caching off.
An entry that cannot be read (truncated, edited, of another layout) is ignored and rebuilt;
a folder that cannot be written leaves the model uncached. Entries are written atomically
(a temporary file, then ``os.replace``), so two runs never see half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

VERSION = 1  # part of every key: a change of what an entry holds makes new keys


def cache_dir() -> Path | None:
    """The cache folder, or None when ``DIFFKIT_CACHE=off``."""
    chosen = os.environ.get("DIFFKIT_CACHE")
    if chosen is not None:
        return None if chosen.strip().lower() in ("off", "0", "") else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "diffkit"


def content_key(tensors: tuple[torch.Tensor | None, ...], settings: dict) -> str:
    """A hex digest of ``tensors``' shapes, dtypes and values and of ``settings`` (JSON)."""
    h = hashlib.sha256(json.dumps({"v": VERSION, **settings}, sort_keys=True).encode())
    for x in tensors:
        if x is None:
            h.update(b"none")
            continue
        x = x.detach().cpu().contiguous()
        h.update(f"{x.dtype}{tuple(x.shape)}".encode())
        h.update(x.numpy().tobytes())
    return h.hexdigest()[:32]


def _read(path: Path) -> dict | None:
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # truncated, not a torch file, pickled code: rebuilt by the caller
        return None
    return entry if isinstance(entry, dict) and isinstance(entry.get("state"), dict) else None


def _write(path: Path, entry: dict) -> bool:
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(entry, tmp)
        os.replace(tmp, path)
        return True
    except (OSError, RuntimeError):  # read-only or full: the model is usable, only not kept
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        return False


def cached_module(
    kind: str,
    key: str,
    empty: Callable[[], nn.Module],
    train: Callable[[], tuple[nn.Module, dict]],
    needs: tuple[str, ...] = (),
) -> tuple[nn.Module, dict, bool]:
    """``(module, extra, hit)``: the cached module of ``kind``/``key``, else a trained one.

    Parameters
    ----------
    kind : str
        The entry's family, its sub-folder (``"classifier"``, ``"autoencoder"``).
    key : str
        :func:`content_key` of what the module is a function of.
    empty : callable
        ``() -> module`` with the architecture only; the entry's weights are loaded into it.
    train : callable
        ``() -> (module, extra)`` trains it; ``extra`` is a dict of floats kept beside the
        weights (an autoencoder's latent scale).
    needs : tuple of str
        Keys of ``extra`` an entry must hold as numbers to be used.

    Returns
    -------
    tuple
        The module in eval mode, its ``extra``, and whether it came from the cache.
    """
    folder = cache_dir()
    path = folder / kind / f"{key}.pt" if folder is not None else None
    entry = _read(path) if path is not None and path.is_file() else None
    extra = entry.get("extra") if entry is not None else None
    usable = isinstance(extra, dict) and all(isinstance(extra.get(k), float) for k in needs)
    if entry is not None and usable:
        module = empty()
        try:
            module.load_state_dict(entry["state"])
            return module.eval(), dict(extra), True
        except (RuntimeError, KeyError, TypeError):
            pass  # weights of another shape under this key: rebuilt below
    module, extra = train()
    if path is not None:
        _write(path, {"state": module.state_dict(), "extra": dict(extra)})
    return module.eval(), dict(extra), False
