"""The cross-domain benchmark of ``diffkit bench``, from a checkout: a thin caller.

    python benchmarks/bench.py --suite smoke --out benchmarks/results/bench-smoke
    python benchmarks/bench.py --suite full --out benchmarks/results/bench-full --results

Every option is ``diffkit bench``'s (``diffkit bench --help``); the cases live beside each
domain (``diffkit/domains/*/bench.py``) and the runner in ``diffkit.bench``. ``--results``
also writes the report into ``benchmarks/RESULTS.md`` as the section ``bench-SUITE``
(figure links made relative to ``benchmarks/``), so those tables are generated, not pasted.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from results_md import RESULTS, update_section

from diffkit.cli import main
from diffkit.commands import value_of


def results_section(report_md: str, out: Path, results: Path = RESULTS) -> str:
    """``report.md`` as a RESULTS.md section: headings one level down, figures re-linked."""
    rel = Path(os.path.relpath(out.resolve(), results.resolve().parent)).as_posix()
    body = re.sub(r"^(#+) ", r"\1## ", report_md, flags=re.MULTILINE)
    return re.sub(r"!\[([^\]]*)\]\(([^)/]+)\)", rf"![\1]({rel}/\2)", body)


def run(argv: list[str]) -> int:
    results = "--results" in argv
    argv = [a for a in argv if a != "--results"]
    try:
        main(["bench", *argv])
        code = 0
    except SystemExit as e:  # click ends every command with sys.exit
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    if code == 0 and results:
        out = Path(value_of(argv, "--out") or "report")
        suite = value_of(argv, "--suite") or "smoke"
        body = results_section((out / "report.md").read_text(), out)
        print(f"updated {update_section(f'bench-{suite}', body)} (section bench-{suite})")
    return code


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
