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
