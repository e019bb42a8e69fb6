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


def scores(fd: float, cnn: float, mlp: float) -> dict:
    return {"fd": fd, "precision": 0.5, "recall": 0.5, "class_accuracy": cnn,
            "class_accuracy_mlp": mlp, "noise_tiles": 0, "seconds": 1.0}  # fmt: skip


def with_targets() -> dict:
    """A saved quick run with the keys the targets table reads, at chosen values."""
    r = json.loads((BENCHMARKS / "results" / "images-quick.json").read_text())
    r["pixel"]["by_guidance"] = {
        "0": scores(90, 0.5, 0.5), "1": scores(80, 0.9, 0.9), "2": scores(70, 0.97, 0.96),
        "3": scores(75, 0.99, 0.94),
    }  # fmt: skip
    r["latent"]["by_guidance"] = {k: scores(35, 0.9, 0.8) for k in ("0", "1", "2", "3")}
    r["pixel"]["samplers"]["DPM-Solver++ 20"]["fd"] = (
        1.05 * r["pixel"]["samplers"]["ancestral 100"]["fd"]
    )
    r["fd_floor_at_samples"] = {"n": 300, "fd": 20.0}
    r["held_out_error"] = {
        "steps": 300, "batch": 64, "lr": 1e-3, "times": [50, 150],
        "diffkit": {"params": 10, "images_per_s": 60.0, "held_out_mse": 0.05},
        "diffusers UNet2DModel": {"params": 10, "images_per_s": 50.0, "held_out_mse": 0.04},
    }  # fmt: skip
    return r


def test_the_targets_table_judges_each_target_at_the_scale_it_names():
    import images_targets

    r = with_targets()
    assert images_targets.best_guidance(r["pixel"]["by_guidance"]) == "2"  # min(.97, .96) best
    assert images_targets.best_guidance(r["latent"]["by_guidance"]) == "0"  # a tie: the lowest
    table = images_targets.markdown(r).splitlines()
    verdicts = {line.split(" | ")[0][2:]: line.rsplit(" | ", 1)[1][:-2] for line in table[4:]}
    assert verdicts == {
        "pixel: class accuracy >= 0.95 (CNN judge)": "met",
        "pixel: class accuracy >= 0.95 (MLP judge)": "met",
        "latent: class accuracy >= 0.95 (CNN judge)": "**missed**",
        "latent: class accuracy >= 0.95 (MLP judge)": "**missed**",
        "pixel: FD <= 3x floor": "**missed**",  # 70 > 3 x 20: at guidance 2, the lowest FD
        "latent: FD <= 2x floor": "met",
        "pixel: DPM-Solver++(2M) 20 FD <= 1.1x ancestral 100": "met",
        "throughput >= diffusers' (recipe layout, 300 equal steps, batch 64)": "met",
        f"throughput >= diffusers' (DDPM layout, best of {r['settings']['timed']} steps)": (
            "met" if r["throughput"]["ratio"] >= 1 else "**missed**"
        ),
        "held-out eps MSE <= diffusers' (300 equal steps, batch 64)": "**missed**",
    }
    md = images_report.markdown(r, "images-quick", PRESETS)
    assert "| guidance | pixel FD |" in md and "| target | figure |" in md
    assert "| floor: 300 training vs held-out images | 20.0 |" in md


def tune_row(candidate: str, val: float, steps: int = 1000, windows: int | None = 28) -> dict:
    return {"candidate": candidate, "steps": steps, "val_windows": windows, "val_crps_sum": val}


def test_the_tune_choice_compares_only_rows_of_the_same_budget_and_windows():
    import timeseries_tune

    rows = [
        tune_row("seasonal", 0.11, windows=7),  # one week: not comparable with four
        tune_row("seasonal", 0.12, windows=None),  # saved before the count was recorded
        tune_row("level", 0.05, steps=300),
        tune_row("level", 0.196),
        tune_row("difference", 0.199),
    ]
    assert timeseries_tune._tuned(rows, 1000, 28)["chosen"] == "level"
    assert timeseries_tune._tuned(rows, 1000, 7)["chosen"] == "seasonal"


def test_a_tune_run_saving_keeps_the_rows_another_run_saved_meanwhile():
    import timeseries_tune

    a, b, c = tune_row("level", 0.2), tune_row("difference", 0.19), tune_row("level-wide", 0.18)
    other = {"rows": [tune_row("difference", 0.008)], "chosen": "difference"}
    saved = {"etth1": {"rows": [a, c], "chosen": "level-wide"}, "exchange": other}
    mine = {"etth1": {"rows": [a, b], "chosen": "difference"}, "exchange": {"rows": []}}
    out = timeseries_tune.merged(saved, mine, ["etth1"])
    assert out["etth1"] == {"rows": [a, b, c], "chosen": "difference"}
    assert out["exchange"] == other  # a data set this run does not tune stays as saved
