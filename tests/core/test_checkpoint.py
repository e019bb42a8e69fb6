import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from diffkit.checkpoint import (
    FORMAT_VERSION,
    best,
    describe,
    list_checkpoints,
    load_checkpoint,
    mark_best,
    prune,
    save_checkpoint,
)
from diffkit.errors import CheckpointError, MissingFileError


def _save(root, step, domain="toy"):
    net = torch.nn.Linear(4, 3)
    state = {
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
        "scheduler": {"last_epoch": step},
        "step": step,
    }
    path = save_checkpoint(
        root, step, {"domain": domain}, net.state_dict(), net.state_dict(), state
    )
    return path, net


def test_round_trip_keeps_weights_config_and_state(tmp_path):
    path, net = _save(tmp_path, 7)
    ck = load_checkpoint(path, domain="toy", with_state=True)
    assert ck.path == path and ck.step == 7 and ck.config["format_version"] == FORMAT_VERSION
    assert "diffkit_version" in ck.config and ck.state["scheduler"]["last_epoch"] == 7
    for k, v in net.state_dict().items():
        torch.testing.assert_close(ck.model[k], v)
        torch.testing.assert_close(ck.ema[k], v)
    assert not list(tmp_path.glob(".tmp-*"))  # the temporary directory was renamed


def test_a_run_directory_resolves_to_its_latest_or_best_checkpoint(tmp_path):
    root = tmp_path / "checkpoints"
    p1, _ = _save(root, 1)
    _save(root, 2)
    mark_best(root, p1, 0.5)
    assert load_checkpoint(tmp_path).step == 2
    assert load_checkpoint(tmp_path, which="best").step == 1


def test_describe_names_the_chosen_checkpoint_and_why(tmp_path):
    root = tmp_path / "checkpoints"
    p1, _ = _save(root, 1)
    p2, _ = _save(root, 2)
    assert describe(tmp_path) == f"loaded {p2} (the latest; the run has no best.json)"
    mark_best(root, p1, 0.5)
    assert (
        describe(tmp_path)
        == f"loaded {p1} (the best by validation loss, 0.5; the latest is {p2.name})"
    )
    assert describe(tmp_path, which="latest") == f"loaded {p2} (the latest)"
    assert describe(p2) == f"loaded {p2} (named directly)"
    mark_best(root, p2, 0.25)
    assert (
        describe(root) == f"loaded {p2} (the best by validation loss, 0.25; it is also the latest)"
    )


def test_prune_keeps_the_last_n_and_the_best(tmp_path):
    paths = [_save(tmp_path, s)[0] for s in range(1, 6)]
    mark_best(tmp_path, paths[0], 0.1)
    prune(tmp_path, keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "step-00000001",
        "step-00000004",
        "step-00000005",
    ]
    assert best(tmp_path)["name"] == "step-00000001"


def test_another_domain_is_refused(tmp_path):
    path, _ = _save(tmp_path, 1, domain="images")
    with pytest.raises(CheckpointError, match=r"'images' checkpoint, not 'toy'"):
        load_checkpoint(path, domain="toy")


def test_a_newer_format_is_refused(tmp_path):
    path, _ = _save(tmp_path, 1)
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(CheckpointError, match=r"newer.*upgrade diffkit"):
        load_checkpoint(path)


def test_missing_truncated_and_pickled_files_each_give_one_clear_error(tmp_path):
    path, _ = _save(tmp_path, 1)
    (path / "ema.pt").unlink()
    with pytest.raises(MissingFileError, match=r"ema.pt.*missing"):
        load_checkpoint(path)
    path, _ = _save(tmp_path, 2)
    data = (path / "model.pt").read_bytes()
    (path / "model.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model.pt.*truncated"):
        load_checkpoint(path)
    path, _ = _save(tmp_path, 3)
    torch.save({"evil": print}, path / "model.pt")  # code, not tensors: weights_only refuses
    with pytest.raises(CheckpointError, match=r"model.pt"):
        load_checkpoint(path)
    path, _ = _save(tmp_path, 4)
    (path / "config.json").write_text('{"domain": "to')
    with pytest.raises(CheckpointError, match=r"config.json.*truncated"):
        load_checkpoint(path)
    with pytest.raises(MissingFileError):
        load_checkpoint(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"no checkpoint"):
        load_checkpoint(tmp_path / "empty")


WRITER = """
import sys, torch
from diffkit.checkpoint import save_checkpoint
root = sys.argv[1]
big = {"w": torch.randn(512, 512)}  # ~1 MB per file, so kills land mid-write
step = 0
print("ready", flush=True)
while True:
    step += 1
    save_checkpoint(root, step, {"domain": "toy"}, big, big, {"step": step})
"""


def test_a_kill_at_any_moment_leaves_every_finished_checkpoint_whole(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    root = tmp_path / "ckpts"
    for delay in (0.05, 0.17, 0.31):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(root)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finished = list_checkpoints(root)
    assert finished, "the writer never finished a checkpoint; the test proves nothing"
    for path in finished:
        ck = load_checkpoint(path)
        assert ck.model["w"].shape == (512, 512)
    assert load_checkpoint(root).path == finished[-1]
