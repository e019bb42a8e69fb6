"""The toy accuracy targets: ratios and verdicts computed from rows with known scores."""

from diffkit.bench import row
from diffkit.domains.toy import targets


def rows(**sw1) -> list[dict]:
    """Rows named LIBRARY_METHOD_NFE=score."""
    out = []
    for name, value in sw1.items():
        library, method, nfe = name.split("_")
        out.append(row(library, method, int(nfe), nfe_budget=int(nfe), sw1=value))
    return out


def table_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()[4:]]


def test_each_target_takes_the_best_rows_and_judges_the_ratio():
    scores = {"diffkit_a_10": 0.4, "diffkit_b_10": 0.7, "diffusers_x_10": 0.5,
              "diffusers_y_10": 0.9, "diffkit_a_20": 0.3, "diffusers_x_20": 0.25,
              "diffkit_a_50": 0.11, "diffkit_b_50": 0.2}  # fmt: skip
    text = targets.markdown(rows(**scores), floor=0.1)
    ten, twenty, fifty, *fitted = table_rows(text)
    assert all(r[2:] == ["not run", "—", "—"] for r in fitted)  # no fitted rows were run
    assert ten[1:] == ["a: 0.4", "x (diffusers): 0.5", "0.80", "met"]  # 0.4 / 0.5 = 0.8 <= 0.8
    assert twenty[1:] == ["a: 0.3", "x (diffusers): 0.25", "1.20", "**missed**"]
    assert fifty[1:] == ["a: 0.11", "noise floor: 0.1", "1.10", "met"]


def test_a_budget_or_reference_not_run_is_said_not_judged():
    refused = row("diffusers", "x", 10, nfe_budget=10, sw1=None, error="refused")
    text = targets.markdown([*rows(diffkit_a_10=0.4, diffkit_a_50=0.5), refused], floor=0.1)
    ten, twenty, fifty, *_ = table_rows(text)
    assert ten[2:] == ["not run", "—", "—"] and twenty[2:] == ["not run", "—", "—"]
    assert fifty[-1] == "**missed**"


def test_the_fitted_targets_compare_the_fitted_rows_with_diffusers_and_the_fixed_ones():
    scores = [("diffkit", "dpmpp_2m fitted", 5, 0.1), ("diffkit", "dpmpp_2m", 5, 0.2),
              ("diffkit", "ddim", 5, 0.12), ("diffusers", "x", 5, 0.3),
              ("diffkit", "dpmpp_2m fitted", 10, 0.05), ("diffkit", "unipc", 10, 0.06),
              ("diffusers", "x", 10, 0.09)]  # fmt: skip
    given = [row(lib, m, n, nfe_budget=n, sw1=v) for lib, m, n, v in scores]
    table = table_rows(targets.markdown(given, floor=0.01))
    five_d, five_f, ten_d, ten_f = table[3:]
    assert five_d[1:] == ["dpmpp_2m fitted: 0.1", "x (diffusers): 0.3", "0.33", "met"]
    # diffkit's best fixed row is ddim's (0.12), not the fitted sampler's own (0.2)
    assert five_f[1:] == ["dpmpp_2m fitted: 0.1", "ddim (fixed): 0.12", "0.83", "**missed**"]
    assert ten_d[-2:] == ["0.56", "**missed**"] and ten_f[-2:] == ["0.83", "**missed**"]
    # the fitted row also counts as diffkit's best for the 10-NFE target: 0.05 / 0.09
    assert table[0][1:] == ["dpmpp_2m fitted: 0.05", "x (diffusers): 0.09", "0.56", "met"]
