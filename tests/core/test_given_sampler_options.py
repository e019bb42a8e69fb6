"""Sampler options given from the command line (``--sampler-option K=V``) reach the sampler
through both front doors, typed by the option's default; code's own options win."""

import subprocess
import sys

import pytest
import torch

import diffkit
from diffkit import ConfigError, schedules, toy
from diffkit.discrete import sample as masked_sample
from diffkit.discrete import schedules as masked_schedules
from diffkit.discrete import toy as masked_toy
from diffkit.sampling.given import given_options, split_pairs

RING, LINEAR = toy.ring(), schedules.linear()


def ddim(**options):
    g = torch.Generator().manual_seed(0)
    return diffkit.sample(RING.denoiser(LINEAR), (256, 2), LINEAR, sampler="ddim", steps=10,
                          generator=g, **options)  # fmt: skip


def test_a_given_option_is_the_same_as_passing_it_and_code_wins():
    with given_options(["eta=1"]):
        given = ddim()
        overridden = ddim(eta=0.0)
    torch.testing.assert_close(given, ddim(eta=1.0), atol=0, rtol=0)
    torch.testing.assert_close(overridden, ddim(), atol=0, rtol=0)
    assert not torch.equal(given, ddim())  # eta = 1 draws fresh noise: a different result
    assert torch.equal(ddim(), ddim(eta=0.0))  # and no eta is left behind after the block


def test_values_take_the_type_of_the_options_default():
    calls = []

    def net(x, t):
        calls.append(1)
        return torch.zeros_like(x)

    with given_options(["n_steps_each=3", "step_lr=1e-4"]):  # an int, and a float (default None)
        diffkit.sample(net, (2, 2), schedules.ve(), sampler="langevin", steps=4)
    assert len(calls) == 4 * 3 + 1
    for pairs, message in [
        (["n_steps_each=2.5"], "n_steps_each must be an int, got '2.5'"),
        (["step_lr=fast"], "step_lr must be a float"),
        (["bogus=1"], "has no option 'bogus'; its options: n_steps_each, step_lr"),
    ]:
        with given_options(pairs), pytest.raises(ConfigError, match=message):
            diffkit.sample(net, (2, 2), schedules.ve(), sampler="langevin", steps=4)


def test_the_masked_front_door_reads_them_too():
    net = masked_toy.factorised(torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])).denoiser()

    def draw(**options):
        return masked_sample(net, (64, 2), masked_schedules.linear(), mask_id=3,
                             sampler="maskgit", steps=2,
                             generator=torch.Generator().manual_seed(0), **options)  # fmt: skip

    with given_options(["confidence_noise=4.5"]):
        given = draw()
    assert torch.equal(given, draw(confidence_noise=4.5)) and not torch.equal(given, draw())


@pytest.mark.parametrize("pair", ["eta", "=1", "eta="])
def test_a_pair_without_key_and_value_is_one_error(pair):
    with pytest.raises(ConfigError, match="--sampler-option takes key=value"):
        split_pairs([pair])


def test_the_sample_command_passes_them_and_says_what_is_wrong_in_one_line(tmp_path):
    run = tmp_path / "run"

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "diffkit.cli", *args], capture_output=True,
                              text=True, timeout=300)  # fmt: skip

    assert cli("train", "--domain", "toy", "--max-steps", "2", "--out", str(run),
               "--quiet").returncode == 0  # fmt: skip
    base = ["sample", "--checkpoint", str(run), "--sampler", "langevin", "--steps", "3", "--n", "4"]
    ok = cli(*base, "--out", str(tmp_path / "a.csv"), "--sampler-option", "n_steps_each=2")
    assert ok.returncode == 0, ok.stderr
    bad = cli(*base, "--out", str(tmp_path / "b.csv"), "--sampler-option", "eta=1")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == (
        "error: sampler 'langevin' has no option 'eta'; its options: n_steps_each, step_lr."
    )
    assert not (tmp_path / "b.csv").exists()
