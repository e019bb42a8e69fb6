"""The toy bench's trained-MLP case: the network diffusers reads is the one diffkit samples."""

import torch

from diffkit import schedules, toy
from diffkit.bench import Context
from diffkit.domains.toy import bench, trained


def test_the_trained_case_is_in_quick_and_full_only():
    assert "ring-mlp" not in [c.name for c in bench.cases("smoke")]
    for suite in ("quick", "full"):
        case = {c.name: c for c in bench.cases(suite)}["ring-mlp"]
        assert f"trained {trained.STEPS[suite]} steps" in case.title


def test_eps_at_a_schedulers_noise_level_is_the_network_at_that_time():
    schedule = schedules.linear()
    net, eps_at, extra = trained.mlp(20, toy.ring(), schedule, Context(suite="quick"))
    assert extra["train"]["steps"] == 20 and len(extra["curve"]) > 0
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    for t in (10, 500, 990):
        alpha, sigma = (float(v) for v in schedule.alpha_sigma(torch.tensor(float(t))))
        with torch.no_grad():
            want = net(x, torch.full((16,), float(t)))
            got = eps_at(x, alpha, sigma)
        torch.testing.assert_close(got, want, atol=1e-3, rtol=1e-3)
        # a different noise level reads a different eps: the time is not ignored
        with torch.no_grad():
            other = net(x, torch.full((16,), float(t + 300 if t < 600 else t - 300)))
        assert (other - want).abs().max() > 1e-4
