"""The validation set picks the best checkpoint and stops training early (train.patience).

A one-parameter "network" w and a loss (w - y)^2 make both losses closed-form: training
batches hold y = 1, so training moves w from 0 towards 1 and the training loss falls at
every step, while the validation set holds y = -1, so its loss rises at every step. The
best checkpoint by validation is the first; by training batches it would be the last.
"""

import dataclasses

import torch
from torch.utils.data import TensorDataset

from diffkit.checkpoint import best, list_checkpoints
from diffkit.domain import DomainData
from diffkit.registry import get_domain
from diffkit.runner import fit
from tests.tiny import one_thread, tiny_config  # noqa: F401  (autouse)


class Weight(torch.nn.Module):
    def __init__(self, config=None, diffusion=None):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))


def squared_error(net, batch, schedule, **kwargs):
    y = batch[0][:, 0]  # (B,)
    return (net.w - y) ** 2


def disagreeing_domain(with_val: bool = True):
    def load_data(config, path):
        train = TensorDataset(torch.ones(64, 1))
        val = TensorDataset(-torch.ones(64, 1)) if with_val else None
        return DomainData(train, val, {"source": "test"})

    toy = get_domain("toy")
    return dataclasses.replace(toy, build_network=Weight, load_data=load_data, loss=squared_error)


def steps(root):
    return [int(p.name.split("-")[1]) for p in list_checkpoints(root)]


def run(tmp_path, domain, **train):
    cfg = tiny_config(
        train={"max_steps": 20, "checkpoint_every": 2, "keep_last": 100, "ema_max_decay": 0.0}
        | train
    )
    return fit(domain, cfg, out=tmp_path / "run", quiet=True) / "checkpoints"


def test_the_best_checkpoint_is_the_one_with_the_lowest_validation_loss(tmp_path):
    root = run(tmp_path, disagreeing_domain())
    assert steps(root)[-1] == 20  # patience 0: no early stop
    assert best(root)["name"] == "step-00000002"  # validation loss rises from the start
    # without a validation set the first training batches decide: the last step wins
    other = run(tmp_path / "b", disagreeing_domain(with_val=False))
    assert best(other)["name"] == "step-00000020"


def test_patience_stops_training_after_that_many_checkpoints_without_improvement(tmp_path, capsys):
    root = run(tmp_path, disagreeing_domain(), patience=3)
    # best at step 2, then three worse checkpoints (4, 6, 8): stop at 8 of 20
    assert steps(root) == [2, 4, 6, 8]
    assert "stopped early at step 8" in capsys.readouterr().out


def test_patience_without_a_validation_set_trains_to_the_end(tmp_path):
    root = run(tmp_path, disagreeing_domain(with_val=False), patience=1)
    assert steps(root)[-1] == 20
