"""Write a script-owned section of ``benchmarks/RESULTS.md`` between markers.

A benchmark script calls :func:`update_section` with the markdown its run produced; the text
between ``<!-- begin NAME -->`` and ``<!-- end NAME -->`` is replaced (the markers are appended
at the end of the file the first time), so tables in RESULTS.md are never pasted by hand.
"""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def replace_section(document: str, name: str, body: str) -> str:
    """``document`` with the text between NAME's markers replaced by ``body``."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    if begin in document and end in document:
        head, rest = document.split(begin, 1)
        return head + block + rest.split(end, 1)[1]
    return document.rstrip() + "\n\n" + block + "\n"


def update_section(name: str, body: str, path: Path = RESULTS) -> Path:
    """Replace section ``name`` of ``path`` (default ``benchmarks/RESULTS.md``) with ``body``."""
    path = Path(path)
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    path.write_text(replace_section(text, name, body))
    return path


def save_run(out: Path, name: str, result: dict, md: str) -> None:
    """Write a run's ``out/NAME.json`` and ``out/NAME.md`` and its section of RESULTS.md."""
    import json

    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    (out / f"{name}.md").write_text(md)
    update_section(name, md)
