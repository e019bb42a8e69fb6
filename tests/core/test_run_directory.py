"""A run directory is never damaged by a command that fails or has nothing to do."""

import json

import pytest
from typer.testing import CliRunner

from diffkit.cli import app, main
from tests.tiny import SETS, one_thread  # noqa: F401  (autouse)

runner = CliRunner()


@pytest.fixture
def toy_run(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--domain", "toy", "--out", str(out), "--max-steps", "4", "--quiet", *SETS]
    assert runner.invoke(app, args).exit_code == 0
    return out


def snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_failed_resume_leaves_config_json_as_it_was(toy_run, capsys):
    before = snapshot(toy_run)
    args = ["train", "--domain", "toy", "--out", str(toy_run), "--resume", "--max-steps", "8"]
    with pytest.raises(SystemExit) as info:  # weights of a 16-wide MLP do not fit 32
        main([*args, *SETS, "--set=hidden=32", "--quiet"])
    assert info.value.code == 2 and "do not fit the network" in capsys.readouterr().err
    assert snapshot(toy_run) == before
    # and a plain resume still works
    assert runner.invoke(app, [*args, *SETS, "--quiet"]).exit_code == 0


def test_a_resume_with_nothing_to_do_rewrites_nothing(toy_run):
    before = snapshot(toy_run)
    args = ["train", "--domain", "toy", "--out", str(toy_run), "--resume", "--max-steps", "2"]
    result = runner.invoke(app, [*args, *SETS, "--quiet"])
    assert result.exit_code == 0 and "nothing to do" in result.output
    assert snapshot(toy_run) == before


def test_a_relative_data_path_is_stored_resolved(tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.chdir(tmp_path)
    np.save("points.npy", np.random.default_rng(0).normal(size=(200, 2)).astype("float32"))
    args = ["train", "--domain", "toy", "--data", "points.npy", "--out", "run", "--max-steps", "2"]
    assert runner.invoke(app, [*args, "--quiet", *SETS]).exit_code == 0
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["data"]
    assert saved == str(tmp_path / "points.npy")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.pop("schedule"), "has no 'schedule' entry; the checkpoint is damaged"),
        (lambda c: c.pop("prediction"), "has no 'prediction' entry"),
        (lambda c: c["model"].update(hidden="wide"), "model.hidden must be an int"),
        (lambda c: c["model"].update(colour=1), "unknown key 'colour' in [model]"),
        (lambda c: c.update(prediction="epsx"), "unknown prediction 'epsx'"),
    ],
)
def test_an_edited_checkpoint_config_is_one_checkpoint_error(toy_run, capsys, edit, message):
    step = sorted((toy_run / "checkpoints").glob("step-*"))[-1]
    config = json.loads((step / "config.json").read_text())
    edit(config)
    (step / "config.json").write_text(json.dumps(config))
    with pytest.raises(SystemExit) as info:
        main(["sample", "--checkpoint", str(step), "--n", "2", "--out", str(toy_run / "s.csv")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and message in err and err.count("\n") == 1


@pytest.mark.parametrize("how", ["sigterm", "ctrl-c"])
def test_an_interrupted_run_saves_its_step_says_where_and_exits_non_zero(tmp_path, capsys, how):
    import os
    import signal

    import lightning.pytorch as pl

    from diffkit.checkpoint import load_checkpoint
    from diffkit.errors import TrainingError
    from diffkit.runner import fit
    from tests.tiny import tiny_config

    class Stop(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if module.step == 6:
                if how == "ctrl-c":
                    raise KeyboardInterrupt
                os.kill(os.getpid(), signal.SIGTERM)

    config = tiny_config(train={"max_steps": 50, "checkpoint_every": 100})
    expected = (SystemExit,) if how == "ctrl-c" else (TrainingError,)
    with pytest.raises(expected) as info:
        fit("toy", config, out=tmp_path / "run", quiet=True, callbacks=(Stop(),))
    if how == "ctrl-c":
        assert info.value.code != 0
    else:
        assert "stopped by SIGTERM; continue it with --resume" in str(info.value)
    out = capsys.readouterr().out
    found = load_checkpoint(tmp_path / "run")
    assert found.step in (6, 7) and f"interrupted at step {found.step}: saved" in out


def test_a_second_trainer_into_a_running_run_is_refused(tmp_path):
    import subprocess
    import sys

    from diffkit.errors import ConfigError
    from diffkit.lock import LOCK, run_lock

    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        out.mkdir()
        (out / LOCK).write_text(str(holder.pid))  # as a live trainer leaves it
        refused = pytest.raises(ConfigError, match=f"another training \\(PID {holder.pid}\\)")
        with refused, run_lock(out):
            pass
        args = ["train", "--domain", "toy", "--out", str(out), "--max-steps", "2", "--quiet"]
        result = runner.invoke(app, [*args, *SETS])
        assert result.exit_code != 0 and not (out / "checkpoints").exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale, cleared, and the training runs
    result = runner.invoke(app, [*args, *SETS])
    assert result.exit_code == 0, result.output
    assert not (out / LOCK).exists()


def test_a_data_error_leaves_no_run_directory_behind_but_keeps_an_existing_one(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n")  # a header and no rows
    out = tmp_path / "new"
    args = ["train", "--domain", "timeseries", "--data", str(bad), "--max-steps", "2"]
    with pytest.raises(SystemExit) as info:
        main([*args, "--out", str(out)])
    assert info.value.code == 2 and "the table is empty" in capsys.readouterr().err
    assert not out.exists()
    kept = tmp_path / "kept"
    kept.mkdir()  # the user's own folder is never removed, even when empty
    with pytest.raises(SystemExit) as info:
        main([*args, "--out", str(kept)])
    assert info.value.code == 2 and kept.is_dir()
