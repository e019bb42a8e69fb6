"""Two DDP processes on CPU (gloo) end with identical weights on both ranks."""

import os
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
