"""A run killed with SIGKILL and resumed ends with the uninterrupted run's weights."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from diffkit.checkpoint import list_checkpoints, load_checkpoint

SCRIPT = """
import sys, torch
torch.set_num_threads(1)
from diffkit.runner import fit
from tests.tiny import tiny_config
fit("toy", tiny_config(train={"max_steps": 24, "checkpoint_every": 4}), out=sys.argv[1],
    resume=sys.argv[2] == "resume", quiet=True)
"""


def _run(tmp_path, out, mode, repo):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(repo)}  # for tests.tiny
    return subprocess.Popen(
        [sys.executable, str(script), str(out), mode],
        cwd=repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow  # 10 s on an idle 2-core machine, 26 s at load 5
def test_sigkill_then_resume_equals_the_uninterrupted_run(tmp_path, request):
    repo = request.config.rootpath
    whole = _run(tmp_path, tmp_path / "whole", "fresh", repo)
    assert whole.wait(timeout=300) == 0, whole.stderr.read()

    killed = _run(tmp_path, tmp_path / "killed", "fresh", repo)
    root = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 240
    while not (root / "step-00000008").is_dir() and time.time() < deadline:
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    reached = load_checkpoint(root).step
    assert 8 <= reached < 24, "the kill must land mid-run for this test to mean anything"

    resumed = _run(tmp_path, tmp_path / "killed", "resume", repo)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    a = load_checkpoint(tmp_path / "whole", with_state=True)
    b = load_checkpoint(tmp_path / "killed", with_state=True)
    assert a.step == b.step == 24
    for k in a.model:
        torch.testing.assert_close(b.model[k], a.model[k], rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(b.ema[k], a.ema[k], rtol=1e-6, atol=1e-7)
    assert b.state["scheduler"]["last_epoch"] == a.state["scheduler"]["last_epoch"]
    assert len(list_checkpoints(root)) >= 1
