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
    ten, twenty, fifty = table_rows(text)
    assert ten[1:] == ["a: 0.4", "x (diffusers): 0.5", "0.80", "met"]  # 0.4 / 0.5 = 0.8 <= 0.8
    assert twenty[1:] == ["a: 0.3", "x (diffusers): 0.25", "1.20", "**missed**"]
    assert fifty[1:] == ["a: 0.11", "noise floor: 0.1", "1.10", "met"]


def test_a_budget_or_reference_not_run_is_said_not_judged():
    refused = row("diffusers", "x", 10, nfe_budget=10, sw1=None, error="refused")
    text = targets.markdown([*rows(diffkit_a_10=0.4, diffkit_a_50=0.5), refused], floor=0.1)
    ten, twenty, fifty = table_rows(text)
    assert ten[2:] == ["not run", "—", "—"] and twenty[2:] == ["not run", "—", "—"]
    assert fifty[-1] == "**missed**"
