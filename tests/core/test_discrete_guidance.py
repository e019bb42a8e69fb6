"""Classifier-free guidance on logits and infilling for masked diffusion."""

import pytest
import torch

from diffkit import ConfigError, DataError
from diffkit.discrete import cfg, model_function, sample, schedules, toy

DISTS = [toy.random(3, 3, seed=s) for s in (1, 2, 3)]  # label 0, label 1, null (label 2)
MASK = 3


class LabelNet(torch.nn.Module):
    """The exact denoiser of DISTS[label] for each row; counts its calls."""

    def __init__(self):
        super().__init__()
        self.nets, self.calls = [d.denoiser() for d in DISTS], 0

    def forward(self, x_t, t, label):
        self.calls += 1
        out = torch.stack([net(x_t, t) for net in self.nets])  # (3, B, L, V)
        return out[label, torch.arange(len(x_t))]


def draw(net, labels, **kw):
    g = torch.Generator().manual_seed(0)
    kw = {"sampler": "ancestral", "steps": 16, "generator": g, **kw}
    return sample(
        net, (len(labels), 3), schedules.linear(), mask_id=MASK, cond={"label": labels}, **kw
    )


@pytest.mark.parametrize(("scale", "equals"), [(0.0, 2), (1.0, 0)])
def test_scale_0_and_1_are_the_unconditional_and_conditional_samplers(scale, equals):
    labels, net = torch.zeros(500, dtype=torch.long), LabelNet()
    guided = draw(net, labels, guidance_scale=scale, null_cond={"label": 2})
    assert net.calls == 16  # one batched call a step for both halves
    plain = draw(LabelNet(), torch.full((500,), equals))
    assert torch.equal(guided, plain)


def test_guided_log_probabilities_follow_the_cfg_formula():
    net, x_t = LabelNet(), torch.tensor([[MASK, 1, MASK], [MASK, MASK, MASK]])
    t, labels = torch.full((2,), 0.5), torch.zeros(2, dtype=torch.long)
    lc = torch.log_softmax(net(x_t, t, label=labels), -1).clamp(min=-1e4)
    lu = torch.log_softmax(net(x_t, t, label=labels + 2), -1).clamp(min=-1e4)
    guided = cfg(net, 3.0, {"label": 2})(x_t, t, label=labels)
    torch.testing.assert_close(guided, lc + 2 * (lc - lu))  # log p_c + (s - 1)(log p_c - log p_u)
    assert torch.isfinite(guided).all()
    logits = model_function(cfg(net, 3.0, {"label": 2}), MASK, {"label": labels})(x_t, t[0])
    torch.testing.assert_close(logits, lc + 2 * (lc - lu))  # what the samplers draw from


@pytest.mark.parametrize("name", ["ancestral", "cached", "maskgit"])
def test_infilling_keeps_known_tokens_and_samples_the_exact_conditional(name):
    dist = DISTS[0]
    known = torch.zeros(30_000, 3, dtype=torch.long)
    known[:, 1] = 2
    known_mask = torch.zeros_like(known, dtype=torch.bool)
    known_mask[:, 1] = True
    kept = []  # the front door restores known tokens at the end: check every step instead
    options = {"sampler": name, "steps": 32, "known": known, "known_mask": known_mask}
    x = sample(dist.denoiser(), (30_000, 3), schedules.cosine(), mask_id=MASK, **options,
               callback=lambda s: kept.append(bool((s["x"][:, 1] == 2).all())),
               generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert len(kept) == 32 and all(kept) and (x[:, 1] == 2).all() and (x != MASK).all()
    if name != "maskgit":  # MaskGIT's confidence order is greedy, not exact
        cond = dist.probs * (dist.sequences[:, 1] == 2)
        tv = 0.5 * float((dist.histogram(x) - cond / cond.sum()).abs().sum())
        assert tv < 0.02  # 9 outcomes: the sampling noise alone is about 0.005


def test_infilling_bad_inputs():
    net, known = DISTS[0].denoiser(), torch.zeros(2, 3, dtype=torch.long)
    s = schedules.linear()
    with pytest.raises(ConfigError, match="needs both known and known_mask"):
        sample(net, (2, 3), s, mask_id=MASK, known=known)
    with pytest.raises(DataError, match="a known token equals the mask id"):
        sample(net, (2, 3), s, mask_id=MASK, known=known + MASK, known_mask=known == 0)
    with pytest.raises(ConfigError, match="cfg needs null_cond"):
        sample(net, (2, 3), s, mask_id=MASK, guidance_scale=2.0)
