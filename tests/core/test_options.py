"""Domain-owned command options: dataclass -> flags -> instance, and the CLI that builds them."""

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from diffkit.cli import app
from diffkit.domain import EvaluateOptions, option
from diffkit.errors import ConfigError
from diffkit.options import build_options, click_options, flag_of
from tests.tiny import SETS, one_thread  # noqa: F401  (autouse)

runner = CliRunner()


@dataclass(frozen=True)
class Opts:
    class_: int | None = option(None, "A label.", flag="--class")
    scale: float = option(1.0, "A scale.")
    image: Path | None = option(None, "A file.")
    raw: bool = option(False, "A switch.")
    levels: tuple[int, ...] = option((1, 2), "A list.")


def test_flags_are_named_after_fields_unless_the_field_names_one():
    from dataclasses import fields

    assert [flag_of(f) for f in fields(Opts)] == [
        "--class",
        "--scale",
        "--image",
        "--raw",
        "--levels",
    ]
    opts = click_options(Opts)
    assert [o.opts[0] for o in opts] == ["--class", "--scale", "--image", "--raw", "--levels"]
    assert opts[3].secondary_opts == ["--no-raw"]
    assert all(o.default is None for o in opts)  # not given: the dataclass default applies


def test_build_options_coerces_strings_by_field_or_flag_name():
    got = build_options(Opts, {"class": "3", "scale": "2.5", "image": "a.png", "levels": "4,5"})
    assert got == Opts(class_=3, scale=2.5, image=Path("a.png"), levels=(4, 5))
    assert build_options(Opts, {"class_": 3, "raw": None}) == Opts(class_=3)
    assert build_options(Opts, got) is got
    assert build_options(None, {}) is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"seed": 1}, "unknown option --seed; use --class, --scale, --image, --raw, --levels."),
        ({"scale": "inf"}, "--scale must be a finite float, got 'inf'."),
        ({"class": "1.5"}, "--class must be an int, got '1.5'."),
        ({"levels": "1,x"}, "--levels must be a list of int like 1,2,4"),
    ],
)
def test_bad_option_values_are_one_line_errors(values, message):
    with pytest.raises(ConfigError) as info:
        build_options(Opts, values)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_domain_without_options_takes_none():
    with pytest.raises(ConfigError, match="unknown option --class"):
        build_options(None, {"class": 3})


def test_evaluate_options_check_themselves_and_override_only_what_was_given():
    from diffkit.domains.toy import ToyConfig

    with pytest.raises(ConfigError, match="unknown sampler 'nope'"):
        EvaluateOptions(sampler="nope")
    with pytest.raises(ConfigError, match=r"--steps must lie in 1\.\.1000000"):
        EvaluateOptions(steps=0)
    config = ToyConfig(eval_steps=50, n_eval=100)
    moved = EvaluateOptions(steps=7).onto(config, steps="eval_steps", num_samples="n_eval")
    assert moved.eval_steps == 7 and moved.n_eval == 100


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("opts") / "toy"
    args = ["train", "--domain", "toy", "--out", str(out), "--max-steps", "4", "--quiet", *SETS]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


def test_help_lists_the_checkpoint_domains_options(toy_run):
    with_run = runner.invoke(app, ["evaluate", "--checkpoint", str(toy_run), "--help"])
    plain = runner.invoke(app, ["evaluate", "--help"])
    assert with_run.exit_code == 0 and plain.exit_code == 0
    for flag in ("--sampler", "--steps", "--num-samples"):
        whole = re.compile(re.escape(flag) + r"(?![\w-])")  # not --sampler-option
        assert whole.search(with_run.output) and not whole.search(plain.output)
    assert "Add --checkpoint RUN to list the options of its domain" in plain.output
    sample_help = runner.invoke(app, ["sample", "--checkpoint", str(toy_run), "--help"])
    assert "adds no options to sample" in sample_help.output


def test_evaluate_flags_override_what_training_saved(toy_run, tmp_path):
    import json

    def evaluate(*flags):
        out = tmp_path / f"m{len(flags)}.json"
        args = ["evaluate", "--checkpoint", str(toy_run), "--out", str(out), *flags]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        return json.loads(out.read_text())

    saved = evaluate()
    changed = evaluate("--sampler", "dpmpp_2m", "--steps", "3", "--num-samples", "64")
    assert saved["sliced_wasserstein"] != changed["sliced_wasserstein"]
    again = evaluate("--sampler", "dpmpp_2m", "--steps", "3", "--num-samples", "64")
    assert again == changed


def test_an_option_of_another_domain_names_the_domain_and_its_options(toy_run, capsys):
    from diffkit.cli import main

    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--checkpoint", str(toy_run), "--class", "3"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert "domain 'toy' does not support --class in `diffkit evaluate`" in err
    assert "--sampler, --steps, --num-samples" in err


@dataclass(frozen=True)
class Ranged:
    scale: float | None = option(None, "A scale.", low=-1.0, high=1.0)
    count: int = option(3, "A count.", low=1, high=10)
    rate: float = option(0.5, "A rate.", low=0.0, high=1.0, open_high=True)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"scale": "1e308"}, "--scale must lie in [-1.0, 1.0], got 1e+308; pass a value"),
        ({"count": "0"}, "--count must lie in 1..10, got 0"),
        ({"count": str(10**30)}, "--count must lie in 1..10, got 1000000000000000000000000000000"),
        ({"rate": "1"}, "--rate must lie in [0.0, 1.0), got 1.0"),
    ],
)
def test_a_declared_range_is_checked_once_with_one_message(values, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_options(Ranged, values)


def test_a_declared_range_holds_for_instances_and_shows_in_the_help():
    with pytest.raises(ConfigError, match=r"--count must lie in 1\.\.10, got 0"):
        build_options(Ranged, Ranged(count=0))  # an instance built in code
    edges = {"scale": "-1", "count": "10", "rate": "0"}
    assert build_options(Ranged, edges) == Ranged(-1.0, 10, 0.0)
    assert "[range: 1..10]" in click_options(Ranged)[1].help
