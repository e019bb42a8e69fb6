"""The Diffusion-LM and CDCD losses, through the core's process."""

import pytest
import torch

from diffkit.domains.text.loss import (
    TimeWarp,
    cdcd_loss,
    condition,
    diffusion_lm_loss,
    text_loss,
)
from diffkit.domains.text.network import TextDenoiser
from diffkit.errors import ConfigError
from diffkit.schedules import sqrt

V, L, E = 60, 8, 16
SCHEDULE = sqrt(2000)


class Oracle(TextDenoiser):
    """A denoiser that knows the answer: x0 = E(ids), logits peaked on ids."""

    ids: torch.Tensor

    def denoise(self, x_t, t, **cond):
        x0 = self.embed(self.ids[: len(x_t)])
        if self.mode == "cdcd":
            logits = 50.0 * torch.nn.functional.one_hot(self.ids[: len(x_t)], V).float()
            return logits.softmax(-1) @ self.table(), logits
        return x0, self.logits(x0)


def batch(b=6, cond=False):
    g = torch.Generator().manual_seed(1)
    out = {"ids": torch.randint(0, V, (b, L), generator=g), "pad": torch.ones(b, L, dtype=bool)}
    if cond:
        out |= {"cond_ids": torch.randint(0, V, (b, 5), generator=g)}
        out |= {"cond_pad": torch.ones(b, 5, dtype=bool)}
    return out


def make(cls=TextDenoiser, **kw):
    torch.manual_seed(0)
    args = dict(embed_dim=E, width=32, depth=2, heads=4, max_length=L, dropout=0.0)
    return cls(V, **{**args, **kw})


@pytest.mark.parametrize("self_conditioning", [False, True])
def test_the_true_x0_has_zero_x0_and_anchor_loss_and_near_zero_rounding(self_conditioning):
    data = batch()
    net = make(Oracle, self_conditioning=self_conditioning)
    net.ids = data["ids"]
    out = diffusion_lm_loss(net, data, SCHEDULE, generator=torch.Generator().manual_seed(0))
    assert set(out) == {"loss", "x0", "anchor", "rounding", "prior"}
    assert all(v.shape == (6,) for v in out.values())
    assert out["x0"].abs().max() < 1e-10 and out["anchor"].abs().max() < 1e-10
    assert out["rounding"].max() < 1e-3
    # alpha_T of the sqrt schedule is 4.5e-4: the prior term is tiny for unit embeddings
    alpha_T = SCHEDULE.alpha_sigma(torch.tensor(1999.0))[0].item()
    expected = (alpha_T * net.embed(data["ids"])) ** 2
    torch.testing.assert_close(out["prior"], expected.flatten(1).mean(1), rtol=1e-4, atol=0)
    total = out["x0"] + out["anchor"] + out["rounding"] + out["prior"]
    torch.testing.assert_close(out["loss"], total)


def test_a_random_network_has_positive_terms_and_grads_reach_the_embedding():
    net = make()
    out = diffusion_lm_loss(net, batch(), SCHEDULE, generator=torch.Generator().manual_seed(0))
    assert (out["x0"] > 0).all() and (out["rounding"] > 0.1).all()
    out["loss"].mean().backward()
    assert net.embedding.weight.grad.abs().sum() > 0


def test_the_x0_term_is_the_cores_x0_loss_at_the_same_noise():
    from diffkit import diffusion_loss
    from diffkit.losses import sample_t

    net, data = make().eval(), batch()
    g = torch.Generator().manual_seed(3)
    out = diffusion_lm_loss(net, data, SCHEDULE, generator=g)
    g = torch.Generator().manual_seed(3)
    x0 = net.embed(data["ids"])
    t = sample_t(SCHEDULE, 6, generator=g)
    noise = torch.randn(x0.shape, generator=g)
    core = diffusion_loss(net, x0, SCHEDULE, prediction="x0", t=t, noise=noise)
    torch.testing.assert_close(out["x0"], core)


def test_cdcd_loss_is_the_cross_entropy_and_the_oracle_has_near_zero_loss():
    data = batch()
    net = make(Oracle, mode="cdcd")
    net.ids = data["ids"]
    out = cdcd_loss(net, data, SCHEDULE, generator=torch.Generator().manual_seed(0))
    assert set(out) == {"loss", "x0", "rounding"}
    assert out["loss"].max() < 1e-3 and out["x0"].max() < 1e-6
    random = text_loss(make(mode="cdcd"), data, SCHEDULE, generator=torch.Generator())
    assert random["loss"].min() > 1.0  # log(60) = 4.1 at random


def test_condition_dropout_replaces_the_whole_condition_by_the_null_one():
    data = batch(cond=True)
    net = make(cond_vocab_size=V, cond_dropout=1.0).train()
    dropped = condition(net, data, torch.Generator().manual_seed(0))
    assert (dropped["cond_ids"] == net.null_cond_id).all()
    net.cond_dropout = 0.0
    assert torch.equal(condition(net, data)["cond_ids"], data["cond_ids"])
    net.cond_dropout = 1.0
    assert torch.equal(condition(net.eval(), data)["cond_ids"], data["cond_ids"])  # eval: kept
    net.cond_dropout = 0.5
    share = (condition(net.train(), batch(2000, cond=True))["cond_ids"][:, 0] == V).float().mean()
    assert 0.45 < share < 0.55


def test_a_prediction_other_than_x0_is_refused():
    with pytest.raises(ConfigError, match="prediction=x0"):
        text_loss(make(), batch(), SCHEDULE, prediction="eps")


def test_time_warp_samples_where_the_loss_changes():
    warp = TimeWarp(bins=10, momentum=0.0)
    t = torch.arange(0, 2000, 50).double()  # every bin
    ce = torch.where(t < 1000, torch.zeros_like(t), torch.ones_like(t))  # a step at mid-time
    warp.update(SCHEDULE, t, ce)
    draws = warp.sample(SCHEDULE, 4000, generator=torch.Generator().manual_seed(0))
    assert draws.min() >= 0 and draws.max() <= 1999 and torch.equal(draws, draws.floor())
    near = ((draws >= 1000) & (draws < 1200)).float().mean()  # the bin where CE jumps
    assert near > 0.8


def test_cdcd_with_time_warp_updates_the_warp_in_training_only():
    net = make(mode="cdcd")
    net.time_warp = TimeWarp(bins=4)
    before = net.time_warp.ce.clone()
    cdcd_loss(net.eval(), batch(), SCHEDULE, generator=torch.Generator().manual_seed(0))
    assert torch.equal(net.time_warp.ce, before)
    cdcd_loss(net.train(), batch(), SCHEDULE, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(net.time_warp.ce, before)
