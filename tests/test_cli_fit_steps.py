"""`diffkit fit-steps` and `--spacing fitted` through the CLI, on a tiny trained toy run."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from diffkit.checkpoint import resolve
from diffkit.cli import app, main
from tests import tiny
from tests.tiny import one_thread  # noqa: F401  (autouse)

runner = CliRunner()
toy_run = tiny.toy_run  # the trained tiny run, once for this module


def run_main(capsys, *args):
    with pytest.raises(SystemExit) as stop:
        main([*map(str, args)])
    return stop.value.code, capsys.readouterr()


def test_fitted_spacing_without_a_fit_is_one_line_naming_fit_steps(toy_run, tmp_path, capsys):
    for command in (
        ["sample", "--checkpoint", toy_run, "--spacing", "fitted", "--steps", "5",
         "--out", tmp_path / "s.npy"],
        ["evaluate", "--checkpoint", toy_run, "--spacing", "fitted", "--out", tmp_path / "m.json"],
    ):  # fmt: skip
        code, out = run_main(capsys, *command)
        assert code == 2 and out.err.count("\n") == 1, out.err
        assert out.err.startswith("error:") and "`diffkit fit-steps --checkpoint" in out.err
    assert not (tmp_path / "s.npy").exists() and not (tmp_path / "m.json").exists()


def test_fit_steps_stores_the_steps_and_sampling_uses_them(toy_run, tmp_path):
    ckpt = resolve(toy_run)
    weights = (ckpt / "model.pt").read_bytes()
    before = json.loads((ckpt / "config.json").read_text())
    result = runner.invoke(app, [
        "fit-steps", "--checkpoint", str(toy_run), "--sampler", "dpmpp_2m", "--nfe", "4",
        "--n", "64", "--reference-steps", "50", "--max-evals", "30",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "fitted 4 steps of dpmpp_2m (4 model calls)" in result.output
    after = json.loads((ckpt / "config.json").read_text())
    entry = after.pop("fitted_steps")["dpmpp_2m"]["4"]
    assert after == before and (ckpt / "model.pt").read_bytes() == weights
    assert len(entry["times"]) == 4 and entry["error"] <= min(entry["fixed"].values())
    out = tmp_path / "s.npy"
    args = ["sample", "--checkpoint", str(toy_run), "--sampler", "dpmpp_2m", "--steps", "4"]
    result = runner.invoke(app, [*args, "--spacing", "fitted", "--n", "16", "--out", str(out)])
    assert result.exit_code == 0, result.output
    fitted = np.load(out)
    result = runner.invoke(app, [*args, "--spacing", "logsnr", "--n", "16", "--out", str(out)])
    assert result.exit_code == 0 and np.isfinite(fitted).all()
    assert not np.allclose(np.load(out), fitted)  # the stored times, not a fixed spacing


def test_fit_steps_refuses_a_sampler_with_fresh_noise(toy_run, capsys):
    code, out = run_main(capsys, "fit-steps", "--checkpoint", toy_run, "--sampler", "ddpm")
    assert code == 2 and "draws fresh noise" in out.err
