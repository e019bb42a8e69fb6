"""The diffusion NLL bound: an unbiased estimate of the core's full T-step bound."""

import torch

from diffkit import variational_bound
from diffkit.domains.text.evaluate import diffusion_nll, per_unit
from diffkit.domains.text.network import TextDenoiser
from diffkit.schedules import sqrt

V, L = 30, 6


class Shrunk(TextDenoiser):
    """Predicts ``0.5 E(ids)`` whatever x_t is, so each KL term is deterministic."""

    ids: torch.Tensor

    def denoise(self, x_t, t, **cond):
        x0 = 0.5 * self.embed(self.ids).to(x_t)
        return x0, self.logits(x0)


def make():
    torch.manual_seed(0)
    net = Shrunk(V, embed_dim=4, width=16, depth=1, heads=2, max_length=L, dropout=0.0).eval()
    net.ids = torch.randint(0, V, (3, L), generator=torch.Generator().manual_seed(1))
    return net


def test_sampled_steps_estimate_the_cores_full_chain_bound():
    schedule, net = sqrt(T=12), make()
    g = torch.Generator().manual_seed(0)
    ours = diffusion_nll(net, schedule, net.ids, steps=3000, generator=g)

    def model(x, t):
        return net(x.float(), t.float()).double()

    x0 = net.embed(net.ids).double()
    full = variational_bound(
        model, x0, schedule, prediction="x0", times=torch.arange(12.0), decoder="gaussian"
    )
    logits = net.logits(0.5 * net.embed(net.ids))
    decoder = torch.nn.functional.cross_entropy(logits.transpose(1, 2), net.ids, reduction="none")
    expected = full.prior + full.diffusion + decoder.double().sum(1)
    torch.testing.assert_close(ours, expected, rtol=0.03, atol=0.0)


def test_a_perfect_denoiser_pays_only_the_prior_and_per_unit_is_bits():
    schedule, net = sqrt(T=50), make()
    net.denoise = lambda x_t, t, **c: (net.embed(net.ids).to(x_t),) * 2  # x0 exactly
    net.logits = lambda x: 60.0 * torch.nn.functional.one_hot(net.ids, V).float()
    nats = diffusion_nll(net, schedule, net.ids, steps=20, generator=torch.Generator())
    alpha_T = schedule.alpha_sigma(torch.tensor(49.0))[0].item()
    assert (nats < 1e-3 + alpha_T**2 * (net.embed(net.ids) ** 2).sum((1, 2))).all()
    assert (
        abs(per_unit(torch.tensor([2 * 0.6931471805599453], dtype=torch.float64), [2]) - 1) < 1e-12
    )
