"""diffkit's samplers beside diffusers' schedulers on the exact Gaussian mixture: a thin caller.

    python benchmarks/samplers.py --suite full --results   # RESULTS.md's sampler sections
    python benchmarks/samplers.py --suite quick --out /tmp/samplers

Runs the toy domain's bench cases with ``diffkit bench --domains toy`` (the cases live in
``diffkit/domains/toy/``: the 2-D ring and the 16-D mixture with their accuracy targets,
``bench.py`` and ``targets.py``; the per-step overhead, ``overhead.py``) into ``--out``
(default ``benchmarks/results/samplers-SUITE``). Toy results that ``benchmarks/bench.py``
already cached for the same suite and settings in ``benchmarks/results/bench-SUITE`` are
copied in first and reused, not rerun. ``--results`` writes the report's toy sections into
``benchmarks/RESULTS.md``: ``samplers`` (accuracy) and ``samplers-overhead``. Other options
go to ``diffkit bench`` (``--samplers``, ``--nfe``, ``--threads``; one thread by default).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from bench import results_section
from bench import run as run_bench
from results_md import RESULTS, update_section

from diffkit.bench import SUITES
from diffkit.bench import report as report_md

RESULTS_DIR = RESULTS.parent / "results"
# RESULTS.md section -> the toy cases it shows
SECTIONS = {"samplers": ("ring", "mixture16"), "samplers-overhead": ("overhead",)}


def reuse_cache(source: Path, out: Path) -> list[str]:
    """Copy the toy cases cached in ``source`` that ``out`` lacks; the runner reuses them only
    where their settings match. Returns the file names copied."""
    copied = []
    for path in sorted((source / "cases").glob("toy-*.json")):
        target = out / "cases" / path.name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            copied.append(path.name)
    return copied


def sections(report: dict, out: Path) -> dict[str, str]:
    """RESULTS.md's sampler sections from a bench report: its toy cases' markdown, by name."""
    found = {}
    for name, wanted in SECTIONS.items():
        cases = [c for c in report["cases"] if c["domain"] == "toy" and c["name"] in wanted]
        if cases:
            found[name] = results_section(
                report_md.markdown(report["header"], cases, report["figures"]), out
            )
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--suite", default="quick", choices=SUITES)
    parser.add_argument("--out", type=Path, default=None, help="default results/samplers-SUITE")
    parser.add_argument("--results", action="store_true", help="write RESULTS.md's sections")
    args, rest = parser.parse_known_args(argv)
    out = args.out or Path(os.path.relpath(RESULTS_DIR / f"samplers-{args.suite}"))
    for name in reuse_cache(RESULTS_DIR / f"bench-{args.suite}", out):
        print(f"reusing bench-{args.suite}'s cached {name} if its settings match")
    if not any(a == "--threads" or a.startswith("--threads=") for a in rest):
        rest += ["--threads", "1"]
    code = run_bench(["--suite", args.suite, "--domains", "toy", "--out", str(out), *rest])
    if code != 0:
        return code
    found = sections(json.loads((out / "report.json").read_text()), out)
    for name, body in found.items():
        if args.results:
            print(f"updated {update_section(name, body)} (section {name})")
        else:
            print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
