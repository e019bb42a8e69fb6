"""The contract every registered sampler passes (after diffusers' scheduler tests)."""

import pytest
import torch

import diffkit
from diffkit import SAMPLERS, ConfigError, DataError, ShapeError, get_sampler, schedules
from diffkit.sampling import model_function

SHAPES = {"image": (3, 2, 8, 8), "series": (3, 24, 5), "tokens": (3, 7, 16)}


class TinyNet(torch.nn.Module):
    """A fixed smooth function of (x_t, t) standing in for a trained eps network."""

    def forward(self, x, t):
        scale = torch.sigmoid(t / 500 - 1).reshape(-1, *([1] * (x.ndim - 1)))
        return 0.5 * torch.tanh(x) * scale


def run(name, shape, seed, schedule=None, dtype=torch.float32, **kw):
    schedule = schedule or schedules.linear()
    g = torch.Generator().manual_seed(seed)
    return diffkit.sample(
        TinyNet(), shape, schedule, sampler=name, steps=10, generator=g, dtype=dtype, **kw
    )


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_shape_dtype_and_finiteness(name, kind):
    for dtype in (torch.float32, torch.float64):
        x = run(name, SHAPES[kind], 0, dtype=dtype)
        assert x.shape == SHAPES[kind] and x.dtype == dtype
        assert torch.isfinite(x).all()


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_same_seed_same_result_other_seed_other_result(name):
    a, b, c = (run(name, SHAPES["series"], s) for s in (0, 0, 1))
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize("schedule", [schedules.linear(), schedules.cosine(), schedules.vp()])
def test_the_final_noise_level_is_reached(name, schedule):
    # A model that always predicts x0 = c must end exactly at c: the last step goes to sigma = 0.
    c = torch.tensor([0.25, -0.5])
    x = diffkit.sample(
        lambda x, t: c.expand_as(x),
        (4, 2),
        schedule,
        sampler=name,
        steps=10,
        prediction="x0",
        generator=torch.Generator().manual_seed(0),
    )
    torch.testing.assert_close(x, c.expand(4, 2))


def test_bad_sample_inputs_get_one_clear_error():
    s = schedules.linear()
    with pytest.raises(ConfigError, match=r"unknown sampler 'euler_x'; choose one of: .*ddim"):
        diffkit.sample(TinyNet(), (2, 3), s, sampler="euler_x")
    with pytest.raises(ConfigError, match="exceeds the schedule's T=1000"):
        diffkit.sample(TinyNet(), (2, 3), s, steps=1001)
    with pytest.raises(ConfigError, match="positive whole number"):
        diffkit.sample(TinyNet(), (2, 3), s, steps=0)
    with pytest.raises(ConfigError, match="outside schedule"):
        diffkit.sample(TinyNet(), (2, 3), s, times=torch.tensor([1200.0, 10.0]))
    with pytest.raises(ShapeError, match=r"model returned shape \(2, 2\) for x of shape \(2, 3\)"):
        diffkit.sample(lambda x, t: x[:, :2], (2, 3), s, steps=3)
    with pytest.raises(ConfigError, match="has no option 'eta'"):
        diffkit.sample(TinyNet(), (2, 3), s, sampler="ddpm", eta=1.0)
    with pytest.raises(ConfigError, match="choose one of: large, small"):
        diffkit.sample(TinyNet(), (2, 3), s, sampler="ddpm", variance="huge")
    with pytest.raises(DataError, match="NaN"):
        diffkit.sample(TinyNet(), torch.full((2, 3), float("nan")), s)
    with pytest.raises(ConfigError, match="cond must be a dict"):
        diffkit.sample(TinyNet(), (2, 3), s, cond=[1, 2])
    with pytest.raises(ConfigError, match="spacing"):
        diffkit.sample(TinyNet(), (2, 3), s, steps=3, spacing="karras_x")


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_no_step_reads_a_value_of_the_data(name):
    # On the meta device tensors have shapes and no values: an .item(), bool() or float() of a
    # tensor on the data's device, a host synchronisation per step on a GPU, raises there.
    # (sample() itself checks x_T and x_0 once each, so the sampler is called directly.)
    s, x = schedules.linear(), torch.empty(4, 3, device="meta")
    times = diffkit.timesteps(s, 6)
    model_fn = model_function(TinyNet(), s, "eps", None, at=times, like=x)
    out = get_sampler(name)(model_fn, x, times, s)
    assert out.device.type == "meta" and out.shape == x.shape


@pytest.mark.parametrize("name", ["ddim", "dpmpp_2m", "unipc"])
def test_a_model_returning_nan_is_one_clear_error_naming_the_sampler(name):
    def bad(x, t):  # NaN from the middle of the trajectory on
        return torch.where(t[:, None] < 500, float("nan"), 0.0) * x

    with pytest.raises(DataError, match=rf"sampler '{name}' ended with NaN or inf"):
        diffkit.sample(bad, (2, 3), schedules.linear(), sampler=name, steps=10)
