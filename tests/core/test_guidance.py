"""Classifier-free guidance, inpainting / imputation with RePaint, and the x0 hooks."""

import pytest
import torch

import diffkit
from diffkit import ConfigError, guidance, schedules
from diffkit.sampling.repaint import jump_schedule


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class LabelNet(torch.nn.Module):
    """eps = tanh(x) * (1 + label): conditional and unconditional (label 0) differ."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x, t, label):
        self.calls += 1
        return torch.tanh(x) * (1 + label.to(x.dtype)[:, None])


@pytest.mark.parametrize("scale", [0.0, 1.0, 3.0])
def test_cfg_interpolates_between_the_unconditional_and_conditional_model(scale):
    net, x, t = LabelNet(), torch.randn(5, 2), torch.full((5,), 10.0)
    label = torch.arange(1, 6)
    out = guidance.cfg(net, scale, {"label": 0})(x, t, label=label)
    assert net.calls == 1  # one batched call for both
    cond, uncond = net(x, t, label=label), net(x, t, label=torch.zeros(5))
    torch.testing.assert_close(out, uncond + scale * (cond - uncond))


def test_cfg_through_sample_calls_the_model_once_per_step():
    net, s = LabelNet(), schedules.linear()
    cond = {"label": torch.ones(4)}
    g = torch.Generator().manual_seed(0)
    x = diffkit.sample(
        net, (4, 2), s, steps=7, cond=cond, guidance_scale=1.0, null_cond={"label": 0}, generator=g
    )
    assert net.calls == 7
    y = diffkit.sample(LabelNet(), (4, 2), s, steps=7, cond=cond, generator=g.manual_seed(0))
    torch.testing.assert_close(x, y)
    with pytest.raises(ConfigError, match="null_cond"):
        guidance.cfg(net, 2.0, None)


rho = 0.8
COV = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=torch.float64)


def gaussian_x0(s):
    """The exact x0 prediction for N(0, COV): alpha COV (alpha^2 COV + sigma^2 I)^-1 x_t."""

    def net(x, t):
        a, sg = (c.item() for c in s.alpha_sigma(t[0]))
        m = a * COV @ torch.linalg.inv(a**2 * COV + sg**2 * torch.eye(2, dtype=torch.float64))
        return (x.double() @ m.T).to(x.dtype)

    return net


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "sde_euler", "pc", "langevin", "repaint"])
def test_inpainting_keeps_the_known_entries_exactly(sampler):
    s = schedules.linear()
    options = {"n_steps_each": 5} if sampler == "langevin" else {}
    known, mask = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 0.0])
    g = torch.Generator().manual_seed(0)
    x = diffkit.sample(
        gaussian_x0(s), (64, 2), s, sampler=sampler, steps=10, prediction="x0",
        known=known, mask=mask, generator=g, **options,
    )  # fmt: skip
    assert (x[:, 0] == 1.0).all() and torch.isfinite(x).all()


def test_repaint_imputes_the_gaussian_conditional():
    # x2 | x1 = 1 ~ N(rho, 1 - rho^2) for a unit bivariate Gaussian with correlation rho.
    s = schedules.linear()
    known, mask = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 0.0])
    x = diffkit.sample(
        gaussian_x0(s), (4000, 2), s, sampler="repaint", steps=100, prediction="x0",
        known=known, mask=mask, generator=torch.Generator().manual_seed(0),
        jump_length=10, jump_n_sample=10,
    )  # fmt: skip
    assert x[:, 1].mean().item() == pytest.approx(rho, abs=0.08)
    assert x[:, 1].var().item() == pytest.approx(1 - rho**2, abs=0.06)


def test_repaint_jump_schedule_goes_back_and_forth():
    assert jump_schedule(6, 2, 2) == [0, 1, 2, 3, 2, 1, 2, 3, 4, 5, 4, 3, 4, 5, 6]
    assert jump_schedule(4, 10, 10) == [0, 1, 2, 3, 4]  # no room to jump: plain DDPM


def test_inpainting_needs_both_known_and_mask():
    with pytest.raises(ConfigError, match="both known and mask"):
        diffkit.sample(lambda x, t: 0 * x, (2, 2), schedules.linear(), known=torch.zeros(2))


def test_dynamic_threshold_and_clamp_on_hand_made_tensors():
    x0 = torch.tensor([[0.5, -0.5, 0.25, 0.0], [4.0, -2.0, 1.0, 0.0]])
    # row 1: s = max(quantile, 1) = 1, unchanged; row 2: the median of |x0| = (0, 1, 2, 4) is
    # s = 1.5, so clamp to [-1.5, 1.5] and divide by 1.5
    out = guidance.dynamic_threshold(x0, percentile=0.5)
    torch.testing.assert_close(out[0], x0[0])
    torch.testing.assert_close(out[1], torch.tensor([1.0, -1.0, 1 / 1.5, 0.0]))
    torch.testing.assert_close(
        guidance.clamp(x0, -1, 1), torch.tensor([[0.5, -0.5, 0.25, 0], [1, -1, 1, 0]])
    )


def test_x0_transform_is_applied_with_eps_kept_consistent():
    s = schedules.linear()
    seen = []
    fn = guidance.with_x0_transform(lambda x, t: (3 * x, 0 * x), s, guidance.clamp)
    x, t = torch.full((2, 2), 0.7), torch.tensor(500.0, dtype=torch.float64)
    x0, eps = fn(x, t)
    a, sg = (c.item() for c in s.alpha_sigma(t))
    torch.testing.assert_close(x0, torch.ones(2, 2))
    torch.testing.assert_close(a * x0 + sg * eps, x)
    out = diffkit.sample(
        lambda x, t: 5 + 0 * x, (3, 2), s, steps=5, prediction="x0",
        x0_transform=guidance.clamp, callback=lambda st: seen.append(st["denoised"]),
    )  # fmt: skip
    assert all((d == 1).all() for d in seen) and (out == 1).all()
