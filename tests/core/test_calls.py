"""Network-call accounting: ``calls`` matches what every sampler really does, ``nfe=`` obeys it."""

import pytest
import torch

import diffkit
from diffkit import schedules, toy
from diffkit.errors import ConfigError
from diffkit.sampling import SAMPLERS
from diffkit.sampling.calls import calls, steps_for

# options that change the number of calls per step, beside each sampler's defaults
VARIANTS = [(name, {}) for name in sorted(SAMPLERS)] + [
    ("dpm_solver", {"order": 1}),
    ("dpm_solver", {"order": 3}),
    ("pc", {"n_corrector": 3}),
    ("langevin", {"n_steps_each": 2}),
    ("repaint", {"jump_length": 2, "jump_n_sample": 3}),
]


class Counted:
    def __init__(self, net):
        self.net, self.calls = net, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.net(*args, **kwargs)


@pytest.fixture(scope="module")
def exact():
    schedule = schedules.linear()
    return toy.ring().denoiser(schedule), schedule


@pytest.mark.parametrize("sampler, options", VARIANTS)
@pytest.mark.parametrize("steps", [1, 2, 7])
def test_calls_counts_the_network_calls_each_sampler_makes(exact, sampler, options, steps):
    net, schedule = Counted(exact[0]), exact[1]
    diffkit.sample(net, (3, 2), schedule, sampler=sampler, steps=steps, **options)
    assert net.calls == calls(sampler, steps, **options)


@pytest.mark.parametrize("sampler, options", VARIANTS)
@pytest.mark.parametrize("nfe", [7, 20])
def test_nfe_buys_the_most_steps_within_the_budget(exact, sampler, options, nfe):
    if calls(sampler, 1, **options) > nfe:
        pytest.skip("one step costs more than the budget")
    net, schedule = Counted(exact[0]), exact[1]
    diffkit.sample(net, (3, 2), schedule, sampler=sampler, nfe=nfe, **options)
    steps = steps_for(sampler, nfe, **options)
    assert net.calls <= nfe < calls(sampler, steps + 1, **options)


def test_steps_for_closed_form_examples():
    assert steps_for("ddim", 10) == 10 and steps_for("heun", 10) == 5  # 9 calls
    assert steps_for("dpm_solver", 10, order=3) == 4  # 3 * 3 + 1 = 10
    assert steps_for("pc", 9, n_corrector=2) == 3 and steps_for("langevin", 11) == 2
    assert steps_for("ddim", 2000, max_steps=1000) == 1000


def test_nfe_with_the_same_seed_equals_the_matching_steps(exact):
    net, schedule = exact
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    a = diffkit.sample(net, (5, 2), schedule, sampler="heun", nfe=9, generator=g())
    b = diffkit.sample(net, (5, 2), schedule, sampler="heun", steps=5, generator=g())
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"nfe": 0}, "nfe must be a positive number"),
        ({"nfe": 2.5}, "nfe must be a positive number"),
        ({"nfe": 10, "steps": 10}, "pass one of steps, nfe or times"),
        ({"nfe": 5, "sampler": "langevin"}, "needs at least 6 network calls; raise nfe"),
    ],
)
def test_bad_nfe_is_one_clear_error(exact, kwargs, message):
    net, schedule = exact
    with pytest.raises(ConfigError, match=message):
        diffkit.sample(net, (2, 2), schedule, **kwargs)
