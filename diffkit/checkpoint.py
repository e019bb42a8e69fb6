"""Checkpoints as directories, written atomically and loaded without executing pickles.

A run directory holds ``config.json`` (the resolved run config) and ``checkpoints/``, where
each checkpoint is a directory ``step-00001000/`` with

- ``config.json``: diffkit version, format version, domain, the run config (model, train,
  diffusion sections), the schedule, the prediction type, the domain's data settings, step;
- ``model.pt`` and ``ema.pt``: state dicts of the network and its EMA;
- ``state.pt``: optimizer, scheduler and step, for resuming.

Each checkpoint is written into a temporary directory beside it, every file fsynced, then
renamed into place, so a kill at any moment leaves the previous checkpoints whole.
``best.json`` names the checkpoint with the lowest validation loss; pruning keeps it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from diffkit.errors import CheckpointError, MissingFileError
from diffkit.version import __version__

FORMAT_VERSION = 1
FILES = ("config.json", "model.pt", "ema.pt", "state.pt")
PREFIX = "step-"


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: its directory, config, weights and (optional) training state."""

    path: Path
    config: dict[str, Any]
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor]
    state: dict[str, Any] | None

    @property
    def domain(self) -> str:
        return self.config["domain"]

    @property
    def step(self) -> int:
        return int(self.config.get("step", 0))


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tensor_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON to ``path`` through a fsynced temporary file and ``os.replace``."""
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    _fsync_write(tmp, json.dumps(data, indent=2, sort_keys=True).encode())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def save_checkpoint(
    root: Path, step: int, config: dict, model: dict, ema: dict, state: dict | None = None
) -> Path:
    """Write ``root/step-NNNNNNNN/`` atomically and return its path.

    ``config`` is JSON-ready and gains ``diffkit_version``, ``format_version`` and ``step``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step:08d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    meta = {
        **config,
        "diffkit_version": __version__,
        "format_version": FORMAT_VERSION,
        "step": step,
    }
    _fsync_write(tmp / "model.pt", _tensor_bytes(model))
    _fsync_write(tmp / "ema.pt", _tensor_bytes(ema))
    if state is not None:
        _fsync_write(tmp / "state.pt", _tensor_bytes(state))
    # config.json last: a directory without it was never finished
    _fsync_write(tmp / "config.json", json.dumps(meta, indent=2, sort_keys=True).encode())
    _fsync_dir(tmp)
    if final.exists():  # the same step written twice (a resumed run re-saving): replace it
        old = root / f".old-{final.name}-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    _fsync_dir(root)
    return final


def list_checkpoints(root: Path) -> list[Path]:
    """Finished checkpoint directories under ``root``, oldest first (temporaries skipped)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX)]
    return sorted(found, key=lambda p: p.name)


def mark_best(root: Path, path: Path, val_loss: float) -> None:
    """Record ``path`` as the best checkpoint so far."""
    write_json_atomic(Path(root) / "best.json", {"name": path.name, "val_loss": val_loss})


def best(root: Path) -> dict | None:
    """``{"name", "val_loss"}`` of the best checkpoint, or None."""
    try:
        return json.loads((Path(root) / "best.json").read_text())
    except (OSError, ValueError):
        return None


def prune(root: Path, keep_last: int) -> None:
    """Delete all but the last ``keep_last`` checkpoints, the best one and stale temporaries."""
    ckpts = list_checkpoints(root)
    keep = {p.name for p in ckpts[-keep_last:]}
    b = best(root)
    if b:
        keep.add(b["name"])
    for p in ckpts:
        if p.name not in keep:
            shutil.rmtree(p, ignore_errors=True)
    for p in Path(root).glob(".tmp-step-*"):
        if not p.name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(p, ignore_errors=True)


def resolve(path: Path, which: str = "latest") -> Path:
    """The checkpoint directory ``path`` names: itself, or the latest/best one below it.

    ``path`` may be a checkpoint directory, a ``checkpoints/`` folder or a run directory.
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(
            f"checkpoint {str(path)!r} does not exist; pass a run directory "
            "or one of its checkpoints/step-* directories."
        )
    if not path.is_dir():
        raise CheckpointError(
            f"{str(path)!r} is a file; a checkpoint is a directory "
            "(a run directory or checkpoints/step-*)."
        )
    if (path / "config.json").is_file() and path.name.startswith(PREFIX):
        return path
    root = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    if which == "best" and (b := best(root)) and (root / b["name"]).is_dir():
        return root / b["name"]
    ckpts = list_checkpoints(root)
    if not ckpts:
        raise CheckpointError(
            f"no checkpoint found in {str(path)!r}; train first or pass a "
            "checkpoints/step-* directory."
        )
    return ckpts[-1]


def describe(path: Path, which: str = "best") -> str:
    """One line naming the checkpoint :func:`resolve` picks for ``path`` and why."""
    chosen = resolve(path, which)
    if chosen == Path(path):
        return f"loaded {chosen} (named directly)"
    root, b = chosen.parent, best(chosen.parent)
    latest = list_checkpoints(root)[-1].name
    if which == "best" and b and b["name"] == chosen.name:
        why = f"the best by validation loss, {b['val_loss']:.6g}"
        why += "; it is also the latest" if latest == chosen.name else f"; the latest is {latest}"
    else:
        why = "the latest" + ("" if b or which != "best" else "; the run has no best.json")
    return f"loaded {chosen} ({why})"


def _load_tensors(path: Path) -> dict:
    if not path.is_file():
        raise MissingFileError(
            f"checkpoint file {str(path)!r} is missing; the checkpoint is "
            "incomplete, use an earlier one."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, wrong magic, pickled code: all unusable
        raise CheckpointError(
            f"{str(path)!r} is truncated or not a diffkit weights file "
            f"({type(e).__name__}); use an earlier checkpoint."
        ) from None


def read_config(ckpt_dir: Path) -> dict:
    """A checkpoint's ``config.json``, with its format version checked."""
    path = Path(ckpt_dir) / "config.json"
    if not path.is_file():
        raise MissingFileError(
            f"{str(path)!r} is missing; {str(ckpt_dir)!r} is not a finished diffkit checkpoint."
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError(
            f"{str(path)!r} is truncated or not JSON; use an earlier checkpoint."
        ) from None
    if not isinstance(config, dict) or "domain" not in config:
        raise CheckpointError(f"{str(path)!r} is not a diffkit checkpoint config (no domain).")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{str(ckpt_dir)!r} has checkpoint format {version!r}, newer than this diffkit "
            f"({__version__}) reads (format {FORMAT_VERSION}); upgrade diffkit."
        )
    return config


def load_checkpoint(
    path: Path, *, domain: str | None = None, which: str = "latest", with_state: bool = False
) -> Checkpoint:
    """Load the checkpoint ``path`` names (see :func:`resolve`).

    Parameters
    ----------
    domain
        If given, a checkpoint of another domain raises a CheckpointError.
    which
        ``"latest"`` or ``"best"`` (by validation loss) when ``path`` is a run directory.
    with_state
        Also load the optimizer/scheduler state needed to resume.
    """
    ckpt_dir = resolve(path, which)
    config = read_config(ckpt_dir)
    if domain is not None and config["domain"] != domain:
        raise CheckpointError(
            f"{str(ckpt_dir)!r} is a {config['domain']!r} checkpoint, not "
            f"{domain!r}; pass --domain {config['domain']} or another run."
        )
    model = _load_tensors(ckpt_dir / "model.pt")
    ema = _load_tensors(ckpt_dir / "ema.pt")
    state = _load_tensors(ckpt_dir / "state.pt") if with_state else None
    return Checkpoint(ckpt_dir, config, model, ema, state)
