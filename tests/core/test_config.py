import pytest

from diffkit.config import DiffusionConfig, TrainConfig, build, merge, parse_sets, read_toml
from diffkit.errors import ConfigError, MissingFileError


def test_build_coerces_flag_strings_and_rejects_unknown_keys_naming_the_valid_ones():
    cfg = build(TrainConfig, {"lr": "3e-4", "max_steps": "7"}, "train")
    assert cfg.lr == 3e-4 and cfg.max_steps == 7 and cfg.batch_size == TrainConfig().batch_size
    with pytest.raises(ConfigError, match=r"unknown key 'lrr' in \[train\]; valid keys: .*lr"):
        build(TrainConfig, {"lrr": 1}, "train")


@pytest.mark.parametrize(
    "values",
    [
        {"max_steps": "ten"},
        {"max_steps": 2.5},
        {"max_steps": -1},
        {"max_steps": 10**30},
        {"lr": "nan"},
        {"lr": 0},
        {"precision": "fp8"},
        {"strategy": "horovod"},
    ],
)
def test_bad_values_are_one_line_config_errors(values):
    with pytest.raises(ConfigError) as info:
        build(TrainConfig, values, "train")
    assert "\n" not in str(info.value)


def test_diffusion_config_builds_its_schedule():
    assert DiffusionConfig(schedule="cosine", T=50).build_schedule().T == 50
    assert not DiffusionConfig(schedule="vp").build_schedule().discrete
    with pytest.raises(ConfigError, match="unknown schedule"):
        DiffusionConfig(schedule="zigzag")


def test_toml_sections_merge_under_sets(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[train]\nlr = 0.01\nmax_steps = 5\n[model]\nhidden = 8\n")
    layers = merge(read_toml(path), parse_sets(["train.lr=0.5", "hidden=4"]))
    assert layers["train"] == {"lr": "0.5", "max_steps": 5} and layers["model"] == {"hidden": "4"}
    (tmp_path / "bad.toml").write_text("[trian]\nlr = 1\n")
    with pytest.raises(ConfigError, match=r"unknown section 'trian'.*train, diffusion, model"):
        read_toml(tmp_path / "bad.toml")
    (tmp_path / "broken.toml").write_bytes(b"\xff\x00[[")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_toml(tmp_path / "broken.toml")
    with pytest.raises(MissingFileError):
        read_toml(tmp_path / "none.toml")
    with pytest.raises(ConfigError, match="key=value"):
        parse_sets(["novalue"])


def test_list_keys_are_tuples_from_toml_arrays_and_comma_flags(tmp_path):
    from diffkit.domains.images.domain import ImagesConfig

    path = tmp_path / "c.toml"
    path.write_text("[model]\nchannel_mults = [1, 2, 2]\nguidance_scales = [0, 1.5]\n")
    from_toml = build(ImagesConfig, read_toml(path)["model"], "model")
    from_flags = build(ImagesConfig, {"channel_mults": "1,2,2", "guidance_scales": "0,1.5"}, "m")
    assert from_toml == from_flags
    assert from_toml.channel_mults == (1, 2, 2) and from_toml.guidance_scales == (0.0, 1.5)
    assert build(ImagesConfig, {"attention_levels": ""}, "model").attention_levels == ()
    with pytest.raises(ConfigError, match=r"model\.channel_mults must be a list of int like"):
        build(ImagesConfig, {"channel_mults": [1, "x"]}, "model")
    with pytest.raises(ConfigError, match="must be a list of float"):
        build(ImagesConfig, {"guidance_scales": {"a": 1}}, "model")


def test_a_saved_config_with_lists_round_trips_through_json():
    import json

    from diffkit.config import as_dict
    from diffkit.domains.images.domain import ImagesConfig

    config = ImagesConfig(channel_mults=(1, 2, 4), guidance_scales=(0.0, 3.0))
    again = build(ImagesConfig, json.loads(json.dumps(as_dict(config))), "model")
    assert again == config


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"schedule": "sqrt", "T": 2000}, {"name": "sqrt", "T": 2000, "s": 1e-4}),
        ({"schedule": "sqrt", "T": 50, "s": "0.01"}, {"name": "sqrt", "T": 50, "s": 0.01}),
        ({"schedule": "cosine", "T": 10, "rescale": "true"}, {"s": 0.008, "rescale": True}),
        ({"schedule": "vp", "beta_max": 10}, {"name": "vp", "beta_max": 10.0, "t_min": 1e-3}),
        ({"schedule": "ve", "sigma_max": 80, "t_min": 0.01}, {"sigma_max": 80.0, "t_min": 0.01}),
        ({"schedule": "linear", "beta_end": 0.1, "T": 100}, {"T": 100, "beta_end": 0.1}),
    ],
)
def test_diffusion_config_reaches_every_schedule_parameter(values, expected):
    got = build(DiffusionConfig, values, "diffusion").build_schedule().config()
    assert {k: got[k] for k in expected} == expected


@pytest.mark.parametrize(
    "values", [{"s": 1.5}, {"schedule": "ve", "sigma_min": 5, "sigma_max": 1}, {"max_beta": 1}]
)
def test_bad_schedule_parameters_are_config_errors(values):
    with pytest.raises(ConfigError):
        build(DiffusionConfig, values, "diffusion")


def test_optional_values_take_none_from_json_and_from_a_flag():
    assert build(DiffusionConfig, {"s": None}, "diffusion").s is None
    assert build(DiffusionConfig, {"s": "none"}, "diffusion").s is None
    assert build(DiffusionConfig, {"s": "0.002"}, "diffusion").s == 0.002
