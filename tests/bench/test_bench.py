"""`diffkit bench`: the smoke report's structure and the invariants its numbers must hold."""

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from diffkit.bench import (
    CALLS,
    NOT_INSTALLED,
    Case,
    Context,
    diffusers_ref,
    result,
    row,
    runner,
    steps_for,
)
from diffkit.cli import app, main
from diffkit.errors import ConfigError

SAMPLERS = ("ddim", "heun", "dpmpp_2m")
NFES = (5, 10, 20, 50)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The toy smoke report, run twice into the same folder (the second reads the cache)."""
    out = tmp_path_factory.mktemp("bench") / "report"
    args = ["bench", "--suite", "smoke", "--domains", "toy", "--samplers", ",".join(SAMPLERS)]
    args += ["--nfe", ",".join(map(str, NFES)), "--threads", "1", "--out", str(out)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    cache = out / "cases" / "toy-ring.json"
    stamp = cache.stat().st_mtime_ns
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    return {"out": out, "second": second.output, "stamp": stamp, "cache": cache}


def report(smoke) -> dict:
    return json.loads((smoke["out"] / "report.json").read_text())


def curve(case: dict, library: str, method: str) -> list[tuple[int, float]]:
    rows = [r for r in case["rows"] if (r["library"], r["method"]) == (library, method)]
    return sorted((r["nfe_budget"], r["sw1"]) for r in rows)


def test_report_has_header_tables_and_figures(smoke):
    rep, text = report(smoke), (smoke["out"] / "report.md").read_text()
    assert set(rep["header"]) >= {"machine", "versions", "seeds", "command", "suite"}
    assert rep["header"]["versions"]["torch"] == torch.__version__
    assert [c["case"] for c in rep["cases"]] == ["toy-ring"]
    assert rep["cases"][0]["cpu_s"] > 0 and "s of CPU" in text
    assert (
        "## toy / ring" in text
        and "| sampler | library | NFE 5 | NFE 10 | NFE 20 | NFE 50 |" in text
    )
    for sampler in SAMPLERS:
        assert f"| {sampler} | diffkit |" in text
    for name in rep["figures"]["toy-ring"]:
        png = smoke["out"] / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert f"![{name}]({name})" in text


def test_every_number_is_finite_and_every_case_lists_its_references(smoke):
    case = report(smoke)["cases"][0]
    assert case["declared_references"] == ["diffusers", "exact samples"]
    assert set(case["references"]) == set(case["declared_references"])
    for r in case["rows"]:
        assert math.isfinite(r["sw1"]) and math.isfinite(r["mode_tv"]) and r["sw1"] > 0, r
    assert all(math.isfinite(v) and v > 0 for v in case["floor"].values())
    if diffusers_ref.installed():  # each diffkit sampler has its diffusers row at every NFE
        assert case["references"]["diffusers"] == "ok"
        for sampler in SAMPLERS:
            assert [n for n, _ in curve(case, "diffusers", sampler)] == list(NFES)


def test_error_shrinks_with_nfe_on_the_exact_mixture(smoke):
    case = report(smoke)["cases"][0]
    floor = case["floor"]["sw1"]
    for sampler in ("ddim", "dpmpp_2m"):
        sw = [v for _, v in curve(case, "diffkit", sampler)]
        assert sw[-1] < sw[0] / 3, (sampler, sw)  # 50 calls vs 5
        assert sw[-1] < 1.5 * floor, (sampler, sw, floor)
    # the converged second-order solver reaches the floor within sampling noise
    assert abs(curve(case, "diffkit", "dpmpp_2m")[-1][1] - floor) < 0.5 * floor


def test_rows_are_indexed_by_counted_network_calls(smoke):
    for r in report(smoke)["cases"][0]["rows"]:
        assert r["nfe"] <= r["nfe_budget"]
        if r["library"] == "diffkit":
            assert r["nfe"] == CALLS[r["method"].split(" ")[0]](r["steps"])
    heun = [r for r in report(smoke)["cases"][0]["rows"] if r["method"] == "heun"]
    assert {r["nfe_budget"]: r["nfe"] for r in heun if r["library"] == "diffkit"} == {
        5: 5,
        10: 9,
        20: 19,
        50: 49,
    }


def test_the_report_has_the_fitted_rows_and_their_notes(smoke):
    case, text = report(smoke)["cases"][0], (smoke["out"] / "report.md").read_text()
    fits = {r["nfe_budget"]: r for r in case["rows"] if r["method"] == "dpmpp_2m fitted"}
    assert set(fits) == {5, 10}  # the toy case fits at NFE 5 and 10, of those asked for
    for nfe, r in fits.items():
        assert r["fit_cpu_s"] > 0 and r["nfe"] == nfe and len(r["times"]) == nfe
        assert f"Fitted steps, dpmpp_2m at NFE {nfe}: sw1" in text
        for spacing in ("leading", "linspace", "logsnr", "karras"):
            assert [x for x in case["rows"] if x["method"] == f"dpmpp_2m ({spacing})"]
    assert "| dpmpp_2m fitted | diffkit |" in text


def test_second_run_reads_the_cache(smoke):
    assert "toy-ring: cached" in smoke["second"]
    assert smoke["cache"].stat().st_mtime_ns == smoke["stamp"]
    assert report(smoke)["cases"][0]["cached"] is True


def test_bench_steps_for_refuses_a_sampler_it_does_not_run():
    assert steps_for("heun", 10) == 5 and steps_for("ddim", 2000, max_steps=1000) == 1000
    with pytest.raises(ConfigError, match="no call count"):
        steps_for("repaint", 10)


def test_a_missing_reference_is_reported_not_fatal(monkeypatch):
    from diffkit.domains.toy import bench as toy_bench

    monkeypatch.setattr(diffusers_ref, "installed", lambda: False)
    case = toy_bench.cases("smoke")[0]
    res = runner.run_case(case, Context(samplers=("ddim",), nfes=(5,)))
    assert res["references"]["diffusers"] == NOT_INSTALLED
    assert {r["library"] for r in res["rows"]} == {"diffkit"}


def test_an_interrupted_run_resumes_with_the_unfinished_case(tmp_path):
    calls = []

    def make(name, fail=False):
        def run(context):
            calls.append(name)
            if fail:
                raise KeyboardInterrupt
            return result([row("diffkit", "ddim", 5, nfe_budget=5, score=1.0)], {"x": "ok"})

        return Case("fake", name, name, "score", "score (units)", ("x",), run)

    context = Context(samplers=("ddim",), nfes=(5,))
    with pytest.raises(KeyboardInterrupt):
        runner.run([make("a"), make("b", fail=True)], context, tmp_path, progress=False)
    assert (tmp_path / "cases" / "fake-a.json").is_file()
    assert not (tmp_path / "cases" / "fake-b.json").exists()
    results = runner.run([make("a"), make("b")], context, tmp_path, progress=False)
    assert calls == ["a", "b", "b"] and [r["cached"] for r in results] == [True, False]
    other = Context(samplers=("ddim",), nfes=(10,))  # other settings: the cache does not apply
    assert not runner.run([make("a")], other, tmp_path, progress=False)[0]["cached"]
    # --report-only: the cached case is read, the new one is reported as not run, none runs
    calls.clear()
    results = runner.run([make("a"), make("c")], other, tmp_path, report_only=True, progress=False)
    assert calls == [] and results[0]["cached"] and "not run yet" in results[1]["skipped"]
    assert not (tmp_path / "cases" / "fake-c.json").exists()  # a later run still runs it


@pytest.mark.parametrize(
    "args, message",
    [
        (["--suite", "huge"], "unknown suite 'huge'"),
        (["--samplers", "nope"], "unknown sampler 'nope'"),
        (["--nfe", "5,x"], "--nfe must be whole numbers"),
        (["--nfe", "0"], "--nfe budgets must lie in 1..1000"),
        (["--domains", "nope"], "unknown domain 'nope'"),
        (["--fresh", "--report-only"], "--fresh reruns every case and --report-only runs none"),
    ],
)
def test_bad_bench_options_are_one_line_errors(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["bench", "--domains", "toy", *args, "--out", str(tmp_path)])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_diffkit_matches_its_diffusers_counterpart_on_the_exact_mixture(smoke):
    if not diffusers_ref.installed():
        pytest.skip("diffusers is not installed")
    case = report(smoke)["cases"][0]
    for sampler in SAMPLERS:  # same steps, same start noise, same step placement
        ours, theirs = curve(case, "diffkit", sampler), curve(case, "diffusers", sampler)
        for (n, a), (_, b) in zip(ours, theirs, strict=True):
            assert abs(a - b) <= 0.05 * b, (sampler, n, a, b)


def test_a_case_without_its_data_is_skipped_with_the_reason(tmp_path):
    from diffkit.bench import collect
    from diffkit.bench.report import markdown

    cases = {c.id: c for c in collect(["timeseries", "images"], "full")}
    assert {"timeseries-var", "timeseries-exchange", "images-digits", "images-mnist"} <= set(cases)
    for name in ("timeseries-exchange", "images-mnist"):
        res = runner.run_case(cases[name], Context(suite="full", data_dir=tmp_path))
        assert "--data-dir" in res["skipped"] and res["rows"] == []
    header = {"suite": "full", "command": "diffkit bench", "date": "now", "seeds": {"bench": 0},
              "machine": {k: 0 for k in ("platform", "processor", "cpu_cores", "torch_threads",
                                          "device", "load_average_1m")},
              "versions": {}, "samplers": ["ddim"], "nfes": [5]}  # fmt: skip
    assert "Skipped: MNIST needs --data-dir" in markdown(header, [res], {})


def test_training_lines_for_one_model_and_for_several():
    from diffkit.bench.report import training_lines

    one = {"steps": 100, "seconds": 4.0, "params": 7, "final_loss": 0.5}
    assert training_lines(one) == [
        "Training: 100 steps in 4.0 s (25.0 steps/s, 7 parameters, final loss 0.5)."
    ]
    lines = training_lines({"ar": one, "masked": one | {"steps": 50}})
    assert lines[0].startswith("- Training ar: 100 steps") and "12.5 steps/s" in lines[1]
