"""The toy overhead case: finite µs per step on both sides, their quotient, no diffusers."""

import dataclasses
import math
from functools import partial

import pytest

from diffkit.bench import NOT_INSTALLED, Context, diffusers_ref, runner
from diffkit.bench.report import section
from diffkit.domains.toy import bench, overhead

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # numpy 2 in diffusers
TINY = Context(samplers=("ddim", "heun"), nfes=(3, 5))


def tiny(batches=(1, 4)) -> dict:
    return overhead.run_overhead(2, TINY, batches)


@pytest.mark.skipif(not diffusers_ref.installed(), reason="reference not installed")
def test_both_libraries_get_finite_times_and_the_ratio_is_their_quotient():
    res = tiny()
    assert res["references"] == {"diffusers": "ok"}
    rows = {(r["library"], r["method"], r["nfe_budget"]): r for r in res["rows"]}
    assert set(rows) == {(lib, s, n) for lib in ("diffkit", "diffusers") for s in TINY.samplers
                         for n in TINY.nfes}  # fmt: skip
    for (library, method, nfe), r in rows.items():
        for b in (1, 4):
            assert math.isfinite(r[f"us_per_step_b{b}"]) and r[f"us_per_step_b{b}"] > 0, r
            assert len(r[f"all_us_b{b}"]) == 2
        assert r["nfe"] <= nfe and r["steps"] >= 1
        if library == "diffkit":
            theirs = rows[("diffusers", method, nfe)]
            for b in (1, 4):
                quotient = r[f"us_per_step_b{b}"] / theirs[f"us_per_step_b{b}"]
                assert r[f"ratio_b{b}"] == pytest.approx(quotient, rel=1e-12)
    # Heun takes two calls a step on both sides: a budget of 5 calls is 3 steps
    assert rows[("diffkit", "heun", 5)]["steps"] == rows[("diffusers", "heun", 5)]["steps"] == 3
    assert rows[("diffkit", "heun", 5)]["nfe"] == rows[("diffusers", "heun", 5)]["nfe"] == 5
    assert "| 4 | heun | HeunDiscreteScheduler |" in res["notes"][0]


def test_without_diffusers_only_diffkit_is_timed_and_the_reference_says_why(monkeypatch):
    monkeypatch.setattr(diffusers_ref, "installed", lambda: False)
    res = overhead.run_overhead(1, Context(samplers=("ddim",), nfes=(3,)), (1,))
    assert res["references"] == {"diffusers": NOT_INSTALLED}
    assert [r["library"] for r in res["rows"]] == ["diffkit"]
    assert "ratio_b1" not in res["rows"][0] and res["notes"] == []
    assert math.isfinite(res["rows"][0]["us_per_step_b1"])


def test_samplers_without_a_diffusers_counterpart_are_left_out():
    res = overhead.run_overhead(1, Context(samplers=("pc", "ddim"), nfes=(3,)), (1,))
    assert {r["method"] for r in res["rows"]} == {"ddim"}


def test_the_case_is_in_quick_and_full_not_smoke_and_its_report_section_renders():
    assert [c.id for c in bench.cases("smoke")] == ["toy-ring"]
    for suite in ("quick", "full"):
        assert [c.id for c in bench.cases(suite)][-1] == "toy-overhead"
    case = dataclasses.replace(bench.cases("quick")[-1], run=partial(overhead.run_overhead, 1))
    res = runner.run_case(case, Context(samplers=("ddim",), nfes=(3,)))
    text = "\n".join(section(res, []))
    assert "## toy / overhead" in text and "| ddim | diffkit |" in text
    assert "CPU µs per sampling step, batch 64" in text
