"""Two DDP processes on CPU (gloo) end with identical weights on both ranks, and a NaN loss
on one rank stops both with the same error instead of leaving the other waiting."""

import os
import re
import signal
import subprocess
import sys

import pytest
import torch

from diffkit.checkpoint import load_checkpoint

SCRIPT = """
import sys, torch
import lightning.pytorch as pl
torch.set_num_threads(1)
from diffkit.runner import fit
from tests.tiny import tiny_config

class Dump(pl.Callback):
    def on_train_end(self, trainer, module):
        torch.save({"net": module.net.state_dict(), "ema": module.ema.state_dict(),
                    "world": trainer.world_size},
                   f"{sys.argv[1]}/rank{trainer.global_rank}.pt")

cfg = tiny_config(train={"max_steps": 6, "devices": 2, "strategy": "ddp"})
fit("toy", cfg, out=f"{sys.argv[1]}/run", quiet=True, callbacks=(Dump(),))
"""


@pytest.mark.slow  # 9 s on an idle 2-core machine, 20 s at load 5
def test_two_ddp_ranks_hold_identical_weights(tmp_path, request):
    script = tmp_path / "ddp.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(request.config.rootpath)}
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["world"] == r1["world"] == 2
    for part in ("net", "ema"):
        for k in r0[part]:
            torch.testing.assert_close(r0[part][k], r1[part][k], rtol=0, atol=0)
    ck = load_checkpoint(tmp_path / "run")
    assert ck.step == 6
    for k in ck.model:
        torch.testing.assert_close(ck.model[k], r0["net"][k], rtol=0, atol=0)


NAN_SCRIPT = """
import sys, torch
import lightning.pytorch as pl
torch.set_num_threads(1)
from diffkit.errors import TrainingError
from diffkit.runner import fit
from tests.tiny import tiny_config

class NanOnRankOne(pl.Callback):
    # the loss of rank 1 only is NaN at step 4, the step of the first finiteness check
    # (log_every 4): without the collective check rank 1 stops there and rank 0 waits in the
    # next gradient all-reduce for ever
    def on_train_start(self, trainer, module):
        if trainer.global_rank == 1:
            loss_fn = module.loss_fn
            def nan_at_step_4(*args, **kwargs):
                loss = loss_fn(*args, **kwargs)
                return loss * float("nan") if module.step == 3 else loss
            module.loss_fn = nan_at_step_4

cfg = tiny_config(train={"max_steps": 8, "devices": 2, "strategy": "ddp", "log_every": 4})
try:
    fit("toy", cfg, out=f"{sys.argv[1]}/run", quiet=True, callbacks=(NanOnRankOne(),))
except TrainingError as e:
    print(f"rank {torch.distributed.get_rank()}: {e}", flush=True)
    sys.exit(3)
"""


@pytest.mark.slow  # about 10 s on an idle 2-core machine
def test_a_nan_loss_on_one_rank_stops_every_rank_with_one_error(tmp_path, request):
    script = tmp_path / "nan.py"
    script.write_text(NAN_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(request.config.rootpath)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the ranks it started go with it
        proc.communicate()
        pytest.fail("a rank hung after a NaN loss on the other rank")
    assert proc.returncode == 3, err[-3000:]
    ranks = re.findall(r"rank (\d): the loss became NaN or inf at step 4; training stopped", out)
    assert sorted(ranks) == ["0", "1"], out + err[-3000:]  # the two ranks print concurrently
    assert not list((tmp_path / "run").rglob("step-*")), "no checkpoint of NaN weights"
