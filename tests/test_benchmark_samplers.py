"""benchmarks/samplers.py: the toy bench cases' report, cut into RESULTS.md's sampler sections."""

import json
import sys

import pytest

from tests.reference import REPO

sys.path.insert(0, str(REPO / "benchmarks"))  # the scripts import their sibling modules by name

import samplers

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # numpy 2 in diffusers


def fake_case(name: str) -> dict:
    return {"case": f"toy-{name}", "domain": "toy", "name": name, "title": name, "rows": [],
            "metric": "sw1", "metrics": [], "declared_references": [], "nfe_label": "NFE",
            "wall_s": 1.0}  # fmt: skip


def test_each_section_holds_its_own_cases_with_the_figures_relinked():
    header = {"suite": "full", "command": "diffkit bench --suite full", "date": "d",
              "machine": {"platform": "p", "processor": "x", "cpu_cores": 2, "torch_threads": 1,
                          "device": "cpu", "load_average_1m": 1.0},
              "versions": {}, "seeds": {}, "samplers": ["ddim"], "nfes": [5]}  # fmt: skip
    cases = [fake_case(n) for n in ("ring", "mixture16", "overhead")]
    cases.append({**fake_case("ring"), "domain": "images"})  # another domain's: left out
    report = {"header": header, "cases": cases, "figures": {"toy-overhead": ["toy-overhead.png"]}}
    out = samplers.RESULTS_DIR / "samplers-full"
    found = samplers.sections(report, out)
    assert set(found) == {"samplers", "samplers-overhead"}
    assert "#### toy / ring" in found["samplers"] and "#### toy / mixture16" in found["samplers"]
    assert "overhead" not in found["samplers"] and "images" not in found["samplers"]
    assert found["samplers"].startswith("### diffkit bench: full suite")
    assert (
        "![toy-overhead.png](results/samplers-full/toy-overhead.png)"
        in (found["samplers-overhead"])
    )


def test_the_thin_path_runs_the_toy_cases_and_prints_their_section(tmp_path, capsys):
    code = samplers.main(
        ["--suite", "smoke", "--out", str(tmp_path), "--samplers", "ddim", "--nfe", "5"]
    )
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert [c["case"] for c in report["cases"]] == ["toy-ring"]
    printed = capsys.readouterr().out
    assert "#### toy / ring" in printed and "Targets (sw1" in printed


def test_the_bench_command_gets_the_toy_domain_one_thread_and_the_other_options(
    monkeypatch, tmp_path
):
    seen, o = [], str(tmp_path)
    monkeypatch.setattr(samplers, "run_bench", lambda argv: seen.append(argv) or 1)
    assert samplers.main(["--suite", "full", "--out", o, "--nfe", "10"]) == 1
    assert samplers.main(["--out", o, "--threads=2"]) == 1
    assert seen == [
        ["--suite", "full", "--domains", "toy", "--out", o, "--nfe", "10", "--threads", "1"],
        ["--suite", "quick", "--domains", "toy", "--out", o, "--threads=2"],
    ]


def test_a_bad_option_is_the_bench_commands_error_not_a_traceback(tmp_path, capsys):
    assert samplers.main(["--suite", "smoke", "--out", str(tmp_path), "--nfe", "x"]) == 2
    assert not (tmp_path / "report.json").exists()


def test_cached_toy_cases_of_the_suite_are_copied_once_and_others_left(tmp_path):
    source, out = tmp_path / "bench", tmp_path / "samplers"
    (source / "cases").mkdir(parents=True)
    for name in ("toy-ring", "images-mnist"):
        (source / "cases" / f"{name}.json").write_text(json.dumps({"name": name}))
    assert samplers.reuse_cache(source, out) == ["toy-ring.json"]
    (out / "cases" / "toy-ring.json").write_text("{}")  # a result of its own is kept
    assert samplers.reuse_cache(source, out) == []
    assert (out / "cases" / "toy-ring.json").read_text() == "{}"
    assert samplers.reuse_cache(tmp_path / "absent", out) == []
