"""train, sample, evaluate and bench through the CLI, in-process and as a subprocess."""

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from diffkit.checkpoint import load_checkpoint
from diffkit.cli import app, main
from tests.tiny import SETS, one_thread  # noqa: F401  (autouse)

runner = CliRunner()


def cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "diffkit.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    result = runner.invoke(
        app,
        [
            "train",
            "--domain",
            "toy",
            "--out",
            str(out),
            "--max-steps",
            "8",
            "--seed",
            "5",
            "--quiet",
            *SETS,
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"trained 8 steps; checkpoints in {out / 'checkpoints'}" in result.output
    return out


def test_train_saves_the_resolved_config_with_flags_over_sets(run_dir):
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["domain"] == "toy" and saved["train"]["max_steps"] == 8
    assert saved["train"]["seed"] == 5 and saved["model"]["hidden"] == 16
    assert load_checkpoint(run_dir).step == 8


def test_sample_writes_the_requested_number_of_points(run_dir, tmp_path):
    out = tmp_path / "s.npy"
    result = runner.invoke(
        app, ["sample", "--checkpoint", str(run_dir), "--n", "7", "--steps", "5", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert np.load(out).shape == (7, 2) and f"saved 7 samples to {out}" in result.output


def test_evaluate_prints_and_writes_metrics(run_dir, tmp_path):
    out = tmp_path / "m.json"
    result = runner.invoke(app, ["evaluate", "--checkpoint", str(run_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert {"sliced_wasserstein", "noise_floor", "mode_tv", "step"} <= set(metrics)
    assert metrics["step"] == 8 and 0 <= metrics["mode_tv"] <= 1
    printed = dict(line.split(": ", 1) for line in result.output.splitlines() if ": " in line)
    for key in ("sliced_wasserstein", "noise_floor", "mode_tv"):
        assert float(printed[key]) == pytest.approx(metrics[key], rel=1e-5), key
    # Seeded: evaluating again draws the same samples and reference sets.
    again = tmp_path / "again.json"
    runner.invoke(app, ["evaluate", "--checkpoint", str(run_dir), "--out", str(again)])
    assert json.loads(again.read_text()) == metrics


def test_resume_extends_a_finished_run_from_its_own_config(run_dir, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(run_dir, out)
    result = runner.invoke(
        app,
        ["train", "--domain", "toy", "--out", str(out), "--resume", "--max-steps", "12", "--quiet"],
    )
    assert result.exit_code == 0, result.output
    assert "resuming from" in result.output and load_checkpoint(out).step == 12
    assert json.loads((out / "config.json").read_text())["model"]["hidden"] == 16


def test_train_help_lists_the_domains_options(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--domain", "toy", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for key in ("--set hidden=<int>", "--set train.lr=<float>", "[model]", "Domain toy"):
        assert key in text


def run_main(capsys, *args) -> tuple[int, str]:
    """``main`` in-process (a subprocess costs seconds of imports): exit code and stderr."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    return info.value.code, capsys.readouterr().err


def test_bench_refuses_an_unknown_suite(tmp_path, capsys):
    # the report itself is tested in tests/bench
    code, err = run_main(capsys, "bench", "--suite", "nope", "--out", tmp_path)
    assert code == 2 and "unknown suite 'nope'" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--domain", "nope"], "unknown domain 'nope'"),
        (["train", "--domain", "toy", "--max-steps", "-3"], "max_steps must lie in 1..1000000000"),
        (["train", "--domain", "toy", "--set", "hiddn=3"], "unknown key 'hiddn' in [model]"),
        (["train", "--domain", "toy", "--data", "missing.csv"], "does not exist"),
        (["train", "--domain", "toy", "--config", "missing.toml"], "does not exist"),
        (["sample", "--checkpoint", "nowhere"], "does not exist"),
        (["evaluate", "--checkpoint", "."], "no checkpoint found"),
    ],
)
def test_user_errors_are_one_line_exit_2(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, err = run_main(capsys, *args)
    assert code == 2, err
    assert err.startswith("error:") and message in err and err.count("\n") == 1


def test_a_run_that_exists_is_not_overwritten(run_dir, capsys):
    code, err = run_main(capsys, "train", "--domain", "toy", "--out", run_dir)
    assert code == 2 and "--resume" in err


def test_sample_refuses_an_unknown_output_type(run_dir, tmp_path, capsys):
    args = ("sample", "--checkpoint", run_dir, "--n", "2", "--steps", "2")
    code, err = run_main(capsys, *args, "--out", tmp_path / "s.gif")
    assert code == 2 and ".csv, .npy or .pt" in err


def test_a_subprocess_prints_one_line_without_traceback_and_debug_shows_it(tmp_path):
    (tmp_path / "c.toml").write_text("[train]\nfoo = 1\n")
    result = cli("train", "--domain", "toy", "--config", "c.toml", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: unknown key 'foo' in [train]; valid keys:")
    result = cli("train", "--domain", "nope", "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_resuming_with_another_network_is_a_clear_error(run_dir, tmp_path, capsys):
    import shutil

    shutil.copytree(run_dir, tmp_path / "run")
    code, err = run_main(
        capsys,
        "train",
        "--domain",
        "toy",
        "--out",
        tmp_path / "run",
        "--resume",
        "--set",
        "hidden=8",
        "--quiet",
    )
    assert code == 2 and "do not fit the network" in err
