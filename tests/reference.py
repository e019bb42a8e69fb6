"""Where the tests find the reference data sets, and skipping when a file is absent.

``$DIFFKIT_DATA`` names the folder when set; set it empty (``DIFFKIT_DATA= pytest``) to run
as a clone without the data would. Unset, the folder is ``../shared/data`` beside the project.
"""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """``$DIFFKIT_DATA`` when set (empty: no data), else ``../shared/data``, if it is a folder."""
    value = os.environ.get("DIFFKIT_DATA")
    if value == "":
        return None
    folder = Path(value) if value else REPO.parent / "shared" / "data"
    return folder if folder.is_dir() else None


def reference_file(relative: str) -> Path:
    """The reference file at ``relative`` inside the data folder, or skip saying where to put it."""
    folder = shared_data_dir()
    if folder is None or not (folder / relative).exists():
        where = folder or "$DIFFKIT_DATA or ../shared/data"
        pytest.skip(f"reference file {relative} not found in {where}; set DIFFKIT_DATA to it")
    return folder / relative
