import dataclasses
import itertools
import math

import pytest
import torch

from diffkit.checkpoint import list_checkpoints, load_checkpoint
from diffkit.errors import TrainingError
from diffkit.inference import sample_checkpoint
from diffkit.registry import get_domain
from diffkit.runner import fit, total_steps
from diffkit.training import StepBatches, ema_decay, ema_update, lr_factor
from tests.tiny import one_thread, tiny_config  # noqa: F401  (autouse)


def test_lr_warms_up_linearly_then_follows_a_cosine_to_the_floor():
    f = [lr_factor(s, warmup=10, total=110, min_ratio=0.1) for s in range(111)]
    assert f[0] == pytest.approx(0.1) and f[4] == pytest.approx(0.5) and f[9] == 1.0
    assert f[10] == 1.0 and f[60] == pytest.approx(0.1 + 0.9 * 0.5)
    assert f[110] == pytest.approx(0.1)
    assert all(a >= b for a, b in itertools.pairwise(f[10:]))  # decays monotonically
    assert lr_factor(500, 10, 110, 0.1) == pytest.approx(0.1)  # past the end: stays at floor


def test_ema_decay_warms_up_and_caps():
    assert ema_decay(0, 0.999) == pytest.approx(0.1)
    assert ema_decay(10, 0.999) == pytest.approx(11 / 20)
    assert ema_decay(10**6, 0.999) == 0.999


def test_ema_update_moves_toward_the_weights_by_one_minus_decay():
    net = torch.nn.Linear(3, 2)
    ema = torch.nn.Linear(3, 2)
    with torch.no_grad():
        ema.weight.zero_(), ema.bias.zero_()
    ema_update(ema, net, decay=0.75)
    torch.testing.assert_close(ema.weight, 0.25 * net.weight.detach())
    ema_update(ema, net, decay=0.0)
    torch.testing.assert_close(ema.bias, net.bias.detach())


def test_step_batches_depend_only_on_their_index_and_split_across_ranks():
    whole = list(StepBatches(100, 4, seed=1, start=0, stop=6))
    assert list(StepBatches(100, 4, seed=1, start=3, stop=6)) == whole[3:]
    assert whole != list(StepBatches(100, 4, seed=2, start=0, stop=6))
    both = list(StepBatches(100, 4, seed=1, start=0, stop=2, world=2))
    r1 = list(StepBatches(100, 4, seed=1, start=0, stop=2, rank=1, world=2))
    assert len(both[0]) == 4 and both[0] != r1[0]


def test_epochs_count_steps_over_the_data():
    cfg = tiny_config(train={"epochs": 2, "batch_size": 32, "accumulate": 2})
    assert total_steps(cfg.train, 256) == math.ceil(2 * 256 / 64)


def test_fit_trains_saves_checkpoints_and_the_ema_differs_from_the_weights(tmp_path):
    out = fit("toy", tiny_config(train={"keep_last": 2}), out=tmp_path / "run", quiet=True)
    names = [p.name for p in list_checkpoints(out / "checkpoints")]
    assert names[-2:] == ["step-00000008", "step-00000012"]  # keep_last=2 (+ best, if older)
    ck = load_checkpoint(out, with_state=True)
    assert ck.step == 12 and ck.domain == "toy" and ck.state["step"] == 12
    assert ck.config["schedule"]["name"] == "linear" and ck.config["model"]["hidden"] == 16
    assert (out / "config.json").is_file() and (out / "logs" / "run" / "metrics.csv").is_file()
    diff = sum((ck.model[k] - ck.ema[k]).abs().sum() for k in ck.model)
    assert diff > 0
    # sampling uses the EMA by default: same seed, other weights, other samples
    ema_x = sample_checkpoint(out, 4, steps=3, seed=1)
    assert torch.equal(ema_x, sample_checkpoint(out, 4, steps=3, seed=1, ema=True))
    assert not torch.equal(ema_x, sample_checkpoint(out, 4, steps=3, seed=1, ema=False))
    first = torch.nn.utils.parameters_to_vector(
        get_domain("toy").build_network(tiny_config().model, None).parameters()
    )
    assert not torch.equal(first, torch.cat([v.flatten() for v in ck.model.values()]))


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    cfg = tiny_config(train={"max_steps": 4})
    a = load_checkpoint(fit("toy", cfg, out=tmp_path / "a", quiet=True)).model
    b = load_checkpoint(fit("toy", cfg, out=tmp_path / "b", quiet=True)).model
    other = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=7))
    c = load_checkpoint(fit("toy", other, out=tmp_path / "c", quiet=True)).model
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_a_nan_loss_stops_training_naming_the_step_and_keeps_the_last_checkpoint(tmp_path):
    toy = get_domain("toy")

    class Poisoned(torch.nn.Module):
        """Returns NaN from its 11th training call on (step 11 with accumulate=1)."""

        def __init__(self, config, diffusion):
            super().__init__()
            self.inner, self.calls = toy.build_network(config, diffusion), 0

        def forward(self, x, t):
            if self.training:
                self.calls += 1
            out = self.inner(x, t)
            return out * float("nan") if self.calls >= 11 else out

    domain = dataclasses.replace(toy, build_network=Poisoned)
    with pytest.raises(TrainingError, match=r"at step 11.*step-00000008"):
        fit(domain, tiny_config(), out=tmp_path / "run", quiet=True)
    ck = load_checkpoint(tmp_path / "run")
    assert ck.step == 8
    assert all(torch.isfinite(v).all() for v in ck.model.values())


@pytest.mark.parametrize("train", [{"accumulate": 2}, {"precision": "bf16"}])
def test_accumulation_counts_optimizer_steps_and_bf16_autocast_trains(tmp_path, train):
    out = fit("toy", tiny_config(train={"max_steps": 4, **train}), out=tmp_path / "r", quiet=True)
    ck = load_checkpoint(out, with_state=True)
    assert ck.step == 4 and ck.state["scheduler"]["last_epoch"] == 4
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in ck.model.values())


def test_a_domain_loss_with_terms_optimises_loss_and_logs_each_term(tmp_path):
    import csv

    from diffkit.training import batch_loss

    def loss_with_terms(net, batch, schedule, **kwargs):
        main = batch_loss(net, batch, schedule, **kwargs)
        return {"loss": main, "half": 0.5 * main.detach(), "zero": torch.zeros_like(main)}

    toy = dataclasses.replace(get_domain("toy"), loss=loss_with_terms)
    out = fit(toy, tiny_config(train={"max_steps": 8, "log_every": 1}), out=tmp_path, quiet=True)
    rows = list(csv.DictReader((out / "logs" / "run" / "metrics.csv").read_text().splitlines()))
    logged = [r for r in rows if r.get("loss")]
    assert len(logged) == 8
    for row in logged:
        assert float(row["loss/half"]) == pytest.approx(0.5 * float(row["loss"]), rel=1e-5)
        assert float(row["loss/zero"]) == 0.0
