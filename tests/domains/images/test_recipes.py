"""The images recipes: the domain's default layers, and each one's round trip through TOML."""

import json

import pytest

from diffkit.config import as_dict, build, read_toml
from diffkit.domains.images.domain import ImagesConfig
from diffkit.domains.images.recipes import RECIPES, recipe, recipe_toml
from diffkit.errors import ConfigError
from diffkit.registry import get_domain
from diffkit.runner import resolve_config


def test_the_cpu_recipe_is_what_a_plain_run_gets():
    run = resolve_config(get_domain("images"), {})
    cpu = RECIPES["cpu"]
    for key, value in cpu["model"].items():
        assert getattr(run.model, key) == value
    for key, value in cpu["train"].items():
        assert getattr(run.train, key) == value
    assert (run.diffusion.prediction, run.diffusion.weighting) == ("v", "min_snr")
    assert run.train.batch_size == 64  # the domain's own default stays


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_a_recipe_round_trips_through_toml_and_the_saved_config(tmp_path, name):
    path = recipe_toml(name, tmp_path / f"{name}.toml")
    run = resolve_config(get_domain("images"), read_toml(path))
    for section, values in RECIPES[name].items():
        for key, value in values.items():
            assert getattr(getattr(run, section), key) == value, (section, key)
    saved = json.loads(json.dumps(as_dict(run.model)))  # what config.json holds
    assert build(ImagesConfig, saved, "model") == run.model


def test_flags_override_a_recipe():
    layers = recipe("ddpm", lr=5e-4)
    layers["model"]["base_channels"] = 16
    run = resolve_config(get_domain("images"), layers)
    assert (run.train.lr, run.model.base_channels, run.model.num_res_blocks) == (5e-4, 16, 2)
    assert RECIPES["ddpm"]["model"]["base_channels"] == 32  # recipe() copied, never mutated


def test_an_unknown_recipe_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown images recipe 'fast'; choose one of: cpu"):
        recipe("fast")
    with pytest.raises(ConfigError, match="images recipe"):
        recipe_toml("fast", tmp_path / "x.toml")
