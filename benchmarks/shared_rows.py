"""Rows of a benchmark shared by processes that run side by side: one JSON file per row.

A long scoring pass (every decoding option of a model on the validation set, say) splits
over two processes when both read and write the same folder: each row is a file named by
its key, written atomically, and taken again while it is newer than the file it was
computed from (the checkpoint), so a retrained model never reuses an old row. One process
goes through the keys in order, a helper from the end, and they meet in the middle
(:func:`rows_of`): only the rows they meet on, one or two, are computed twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def row_path(folder: Path, key: dict) -> Path:
    """The file of the row keyed by ``key`` (a JSON-able dict) under ``folder``."""
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return folder / f"{digest}.json"


def cached_row(folder: Path, key: dict, since: Path) -> dict | None:
    """The row saved for ``key``, or None when there is none newer than ``since``."""
    path = row_path(folder, key)
    if not path.exists() or path.stat().st_mtime < since.stat().st_mtime:
        return None
    saved = json.loads(path.read_text())
    return saved["row"] if saved["key"] == key else None


def save_row(folder: Path, key: dict, row: dict) -> None:
    """Keep ``row`` for ``key``; a reader sees a whole file, never one being written."""
    folder.mkdir(parents=True, exist_ok=True)
    path = row_path(folder, key)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"key": key, "row": row}) + "\n")
    tmp.replace(path)


def rows_of(
    folder: Path | None,
    keys: Sequence[dict],
    compute: Callable[[dict], dict],
    since: Path | None,
    *,
    helper: bool = False,
) -> list[dict | None]:
    """``compute(key)`` for every key, in order, each taken from ``folder`` when a process
    beside this one saved it (``folder`` None: no sharing). A ``helper`` goes from the last
    key back and stops at the first one already saved; its list has None where it stopped."""
    out: list[dict | None] = [None] * len(keys)
    order = range(len(keys) - 1, -1, -1) if helper else range(len(keys))
    for i in order:
        row = None if folder is None else cached_row(folder, keys[i], since)
        if row is not None and helper:
            break
        if row is None:
            row = compute(keys[i])
            if folder is not None:
                save_row(folder, keys[i], row)
        out[i] = row
    return out


def wait_for_rows(folder: Path, keys: Sequence[dict], since: Path, poll_s: float = 10.0):
    """Every key's saved row, once all are saved (the process beside this one is on them)."""
    while True:
        rows = [cached_row(folder, key, since) for key in keys]
        if all(row is not None for row in rows):
            return rows
        time.sleep(poll_s)
