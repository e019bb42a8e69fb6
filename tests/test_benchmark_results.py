"""RESULTS.md's image and time-series tables are the scripts' rendering of the saved JSON."""

import ast
import json
import sys

import pytest

from tests.reference import REPO

BENCHMARKS = REPO / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the scripts import their sibling modules by name

import images_report  # noqa: E402
import timeseries_report  # noqa: E402
from results_md import replace_section  # noqa: E402


def script_constant(script: str, name: str):
    """A literal module constant of a benchmark script, read without importing torch."""
    tree = ast.parse((BENCHMARKS / script).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", None) == name for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{script} has no constant {name}")


PRESETS = script_constant("images.py", "SETTINGS")


def section(name: str) -> str:
    text = (BENCHMARKS / "RESULTS.md").read_text()
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    assert begin in text and end in text, f"RESULTS.md has no {name} markers"
    return text.split(begin, 1)[1].split(end, 1)[0].strip()


def rendered() -> dict[str, str]:
    out = {}
    for name in ("images-quick", "images-medium", "images"):
        path = BENCHMARKS / "results" / f"{name}.json"
        if path.exists():
            out[name] = images_report.markdown(json.loads(path.read_text()), name, PRESETS)
    path = BENCHMARKS / "results" / f"{images_report.DIGITS}.json"
    if path.exists():
        out[images_report.DIGITS] = images_report.digits_markdown(json.loads(path.read_text()))
    for stem in ("timeseries-quick", "timeseries"):
        path = BENCHMARKS / "results" / f"{stem}.json"
        if path.exists():
            out[stem] = timeseries_report.markdown(json.loads(path.read_text()), stem)
    return out


@pytest.mark.parametrize("name", sorted(rendered()))
def test_each_saved_result_is_its_results_md_section_verbatim(name):
    assert section(name) == rendered()[name].strip(), (
        f"RESULTS.md's {name} section differs from its JSON; run the script with --report-only"
    )


def test_replacing_a_section_keeps_the_rest_and_is_idempotent():
    doc = "# R\n\nprose\n<!-- begin a -->\nold\n<!-- end a -->\nmore prose\n"
    once = replace_section(doc, "a", "new table")
    assert once == "# R\n\nprose\n<!-- begin a -->\nnew table\n<!-- end a -->\nmore prose\n"
    assert replace_section(once, "a", "new table") == once
    appended = replace_section(doc, "b", "x")
    assert appended.startswith(doc.rstrip()) and appended.endswith(
        "<!-- begin b -->\nx\n<!-- end b -->\n"
    )


def test_the_bench_report_becomes_a_results_section_with_its_figures_relinked():
    import bench  # benchmarks/bench.py

    report = "# diffkit bench: full suite\n\n## toy / ring: x\n\n![toy-ring.png](toy-ring.png)\n"
    out = BENCHMARKS / "results" / "bench-full"
    assert bench.results_section(report, out) == (
        "### diffkit bench: full suite\n\n#### toy / ring: x\n\n"
        "![toy-ring.png](results/bench-full/toy-ring.png)\n"
    )
