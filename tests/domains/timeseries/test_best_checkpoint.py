"""`diffkit evaluate` and `forecast` read a run at the checkpoint its validation loss chose."""

import shutil

import pytest

from diffkit.checkpoint import best, list_checkpoints, mark_best

from .test_domain import run, run_dir  # noqa: F401  (the tiny run, a fixture)


@pytest.fixture(scope="module")
def early_best(run_dir, tmp_path_factory):  # noqa: F811
    """A copy of the tiny run (checkpoints at steps 3 and 6) whose best.json names step 3."""
    out = tmp_path_factory.mktemp("ts-best") / "run"
    shutil.copytree(run_dir, out)
    root = out / "checkpoints"
    first, last = list_checkpoints(root)
    assert (first.name, last.name) == ("step-00000003", "step-00000006")
    mark_best(root, first, 0.25)  # as if the validation loss had risen after step 3
    return out


def test_evaluate_scores_the_best_checkpoint_and_says_so(early_best, tmp_path, capsys):
    out = tmp_path / "m.json"
    code, text, err = run(capsys, "evaluate", "--checkpoint", early_best, "--out", out)
    assert code == 0, err
    assert "step: 3" in text.splitlines()
    assert "step-00000003 (the best by validation loss, 0.25; the latest is step-00000006)" in text


def test_forecast_draws_from_the_best_checkpoint(early_best, tmp_path, capsys):
    def forecast(checkpoint, name):
        out = tmp_path / name
        args = ["forecast", "--checkpoint", checkpoint, "--out", out, "--num-samples", "8"]
        code, text, err = run(capsys, *args, "--sampler", "dpmpp_2m", "--steps", "3")
        assert code == 0, err
        return out.read_text(), text

    table, text = forecast(early_best, "run.csv")
    assert "the best by validation loss" in text
    root = early_best / "checkpoints"
    assert table == forecast(root / "step-00000003", "best.csv")[0]  # the same draws
    assert table != forecast(root / "step-00000006", "last.csv")[0]
    assert "(named directly)" in forecast(root / "step-00000006", "again.csv")[1]


def test_a_run_without_best_json_is_read_at_its_latest(early_best, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(early_best, copy)
    (copy / "checkpoints" / "best.json").unlink()
    assert best(copy / "checkpoints") is None
    code, text, err = run(capsys, "evaluate", "--checkpoint", copy, "--out", tmp_path / "m.json")
    assert code == 0, err
    assert "step: 6" in text.splitlines() and "(the latest; the run has no best.json)" in text
