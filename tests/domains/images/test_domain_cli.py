"""The images domain through the CLI: train -> sample -> evaluate on the built-in digits,
class labels, guidance, inpainting, the latent variant, and one-line errors for bad input."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from diffkit.checkpoint import load_checkpoint
from diffkit.cli import app, main
from diffkit.domains.images import judges
from diffkit.domains.images.data import load_digits_set
from diffkit.inference import load_model
from tests.tiny import SETS as TOY_SETS

from .files import write_idx

runner = CliRunner()
# A U-Net of ~60k parameters and cheap metrics, so each command runs in seconds.
SMALL = {
    "base_channels": 16,
    "attention_levels": "",
    "n_eval": 40,
    "eval_steps": 4,
    "classifier_steps": 30,
    "bpd_steps": 4,
    "guidance_scales": "0,3",
    "ae_steps": 60,
    "train.batch_size": 32,
    "train.warmup_steps": 5,
    "train.checkpoint_every": 100,
    "train.log_every": 5,
    "train.accelerator": "cpu",
}
SETS = [f"--set={k}={v}" for k, v in SMALL.items()]


def train(out, *flags, steps=25):
    args = ["train", "--domain", "images", "--out", str(out), "--max-steps", str(steps)]
    result = runner.invoke(app, [*args, "--quiet", *flags, *SETS])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def cond_run(tmp_path_factory):
    return train(tmp_path_factory.mktemp("images") / "cond", "--class-conditional")


@pytest.fixture(scope="module")
def latent_run(tmp_path_factory):
    return train(tmp_path_factory.mktemp("images") / "latent", "--latent", steps=10)


def sample(run, out, *flags):
    args = ["sample", "--checkpoint", str(run), "--steps", "4", "--out", str(out), *flags]
    result = runner.invoke(app, [*map(str, args)])
    assert result.exit_code == 0, result.output
    return np.load(out) if str(out).endswith(".npy") else out


def run_main(capsys, *args) -> tuple[int, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    return info.value.code, capsys.readouterr().err


def test_train_sample_evaluate_on_the_built_in_digits(cond_run, tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFKIT_CACHE", str(tmp_path / "cache"))
    trained = []
    real = judges.train_classifier
    monkeypatch.setattr(
        judges, "train_classifier", lambda *a, **k: trained.append(k["arch"]) or real(*a, **k)
    )
    saved = json.loads((cond_run / "config.json").read_text())
    assert saved["domain"] == "images" and saved["model"]["class_conditional"] is True
    x = sample(cond_run, tmp_path / "s.npy", "--n", "6")
    assert x.shape == (6, 1, 8, 8) and np.isfinite(x).all() and np.abs(x).max() <= 1
    grid = Image.open(sample(cond_run, tmp_path / "g.png", "--n", "6"))
    assert grid.format == "PNG" and grid.size[0] > 8 * 3  # small digits are enlarged
    result = runner.invoke(
        app, ["evaluate", "--checkpoint", str(cond_run), "--out", str(tmp_path / "m.json")]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    keys = {"fd", "fd_floor", "precision", "recall", "bits_per_dim"}
    accuracy = {f"class_accuracy{by}_g{s}" for by in ("", "_mlp") for s in (0, 3)}
    assert keys | accuracy <= set(metrics)
    assert all(np.isfinite(metrics[k]) for k in keys) and metrics["fd"] > 0
    assert 0 <= metrics["precision"] <= 1 and metrics["bits_per_dim"] > 0
    assert sorted(trained) == ["cnn", "mlp"]
    # Seeded end to end (samples, classifier, dequantisation): a second evaluate repeats it,
    # with both classifiers read from the cache instead of trained again.
    again = runner.invoke(
        app, ["evaluate", "--checkpoint", str(cond_run), "--out", str(tmp_path / "m2.json")]
    )
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "m2.json").read_text()) == metrics
    assert sorted(trained) == ["cnn", "mlp"]


def test_evaluate_reports_fid_in_a_user_supplied_network(cond_run, tmp_path, capsys):
    from .test_fid import StandIn, saved

    weights = saved(StandIn(), tmp_path / "inception.pt")
    out = tmp_path / "m.json"
    code, err = run_main(capsys, "evaluate", "--checkpoint", cond_run, "--fid-weights", weights,
                         "--num-samples", 20, "--out", out)  # fmt: skip
    assert code in (0, None), err
    metrics = json.loads(out.read_text())
    assert metrics["fid"] > 0 and metrics["fid_floor"] >= 0 and np.isfinite(metrics["fd"])
    torch.save({"w": torch.zeros(1)}, tmp_path / "state.pt")
    for bad in (tmp_path / "state.pt", tmp_path / "missing.pt"):
        code, err = run_main(capsys, "evaluate", "--checkpoint", cond_run, "--fid-weights", bad)
        assert code == 2 and err.startswith("error:") and err.count("\n") == 1


def test_class_and_guidance_change_the_samples_and_the_seed_fixes_them(cond_run, tmp_path):
    seven = sample(cond_run, tmp_path / "a.npy", "--n", "4", "--class", "7", "--guidance", "3")
    again = sample(cond_run, tmp_path / "b.npy", "--n", "4", "--class", "7", "--guidance", "3")
    two = sample(cond_run, tmp_path / "c.npy", "--n", "4", "--class", "2", "--guidance", "3")
    plain = sample(cond_run, tmp_path / "d.npy", "--n", "4", "--class", "7")
    np.testing.assert_array_equal(seven, again)
    assert np.abs(seven - two).max() > 1e-3 and np.abs(seven - plain).max() > 1e-3


def write_png(path, array):
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


def test_inpainting_keeps_the_known_pixels_exactly(cond_run, tmp_path):
    digit = load_digits_set().images[0, 0]  # (8, 8) in [-1, 1]
    pixels = ((digit + 1) * 127.5).round().numpy()
    mask = np.zeros((8, 8))
    mask[:, :4] = 255  # the left half is known
    image, mask_png = write_png(tmp_path / "d.png", pixels), write_png(tmp_path / "m.png", mask)
    x = sample(cond_run, tmp_path / "s.npy", "--n", "3", "--inpaint", image, "--mask", mask_png)
    known = pixels / 255.0 * 2 - 1
    np.testing.assert_array_equal(x[:, 0, :, :4], np.broadcast_to(known[:, :4], (3, 8, 4)))
    assert np.abs(x[:, 0, :, 4:] - known[:, 4:]).max() > 0.05  # the rest is sampled


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--class", "10"], "--class 10 is out of range; this model has classes 0..9"),
        (["--class", "-1"], "out of range"),
        (["--inpaint", "MISSING_MASK"], "needs both --inpaint IMAGE and --mask MASK"),
        (["--inpaint", "IMAGE", "--mask", "BIG_MASK"], "--mask is 9x9 but the image is 8x8"),
        (["--inpaint", "BIG_MASK", "--mask", "IMAGE"], "give an image of the training size"),
    ],
)
def test_bad_sampling_options_are_one_error_line(cond_run, tmp_path, capsys, flags, message):
    image = write_png(tmp_path / "i.png", np.full((8, 8), 200))
    big = write_png(tmp_path / "b.png", np.full((9, 9), 255))
    names = {"IMAGE": image, "BIG_MASK": big, "MISSING_MASK": image}
    flags = [names.get(f, f) for f in flags]
    args = (
        "sample",
        "--checkpoint",
        cond_run,
        "--n",
        "2",
        "--steps",
        "2",
        "--out",
        tmp_path / "s.npy",
    )
    code, err = run_main(capsys, *args, *flags)
    assert code == 2 and err.startswith("error:") and message in err and err.count("\n") == 1


def test_conditioning_options_on_an_unconditional_model_are_errors(latent_run, tmp_path, capsys):
    args = ("sample", "--checkpoint", latent_run, "--n", "2", "--steps", "2")
    for flag, value in (("--class", "3"), ("--guidance", "2")):
        code, err = run_main(capsys, *args, flag, value)
        assert code == 2 and err.startswith("error:") and "unconditional" in err, err


def test_a_domain_without_sampling_options_refuses_them(tmp_path, capsys):
    out = tmp_path / "toy"
    args = ["train", "--domain", "toy", "--out", str(out), "--max-steps", "2", "--quiet"]
    assert runner.invoke(app, [*args, *TOY_SETS]).exit_code == 0
    code, err = run_main(capsys, "sample", "--checkpoint", out, "--steps", "2", "--class", "7")
    assert code == 2 and "domain 'toy' does not support --class" in err
    code, err = run_main(capsys, "train", "--domain", "toy", "--latent", "--out", tmp_path / "x")
    assert code == 2 and "unknown option '--latent' for this domain" in err


def test_a_single_class_folder_cannot_train_class_conditional(tmp_path, capsys):
    (tmp_path / "data" / "only").mkdir(parents=True)
    for i in range(3):
        write_png(tmp_path / "data" / "only" / f"{i}.png", np.full((8, 8), 50 * i))
    args = ("train", "--domain", "images", "--data", tmp_path / "data", "--class-conditional")
    code, err = run_main(capsys, *args, "--out", tmp_path / "run")
    assert code == 2 and "needs at least two classes" in err and err.count("\n") == 1


def test_latent_run_holds_its_trained_autoencoder_and_decodes_samples(latent_run, tmp_path):
    found = load_checkpoint(latent_run)
    assert any(k.startswith("autoencoder.") for k in found.model)
    assert found.config["settings"]["shape"] == [4, 4, 4]  # latents of the 8x8 digits
    _, net, _, _ = load_model(latent_run)
    assert float(net.latent_scale) != 1.0
    digits = load_digits_set().images[:200]
    with torch.no_grad():
        trained = torch.nn.functional.mse_loss(net.decode(net.encode(digits)), digits)
        net.autoencoder.load_state_dict(type(net.autoencoder)(net.autoencoder.config).state_dict())
        untrained = torch.nn.functional.mse_loss(net.decode(net.encode(digits)), digits)
    assert trained < 0.5 * untrained
    x = sample(latent_run, tmp_path / "s.npy", "--n", "5")
    assert x.shape == (5, 1, 8, 8) and np.isfinite(x).all()
    out = tmp_path / "m.json"
    result = runner.invoke(app, ["evaluate", "--checkpoint", str(latent_run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())  # image-space metrics; no pixel likelihood
    assert np.isfinite(metrics["fd"]) and metrics["bits_per_dim"].startswith("not defined")
    assert "bits_per_dim: not defined for a latent model" in result.output


def test_the_autoencoder_halves_mnist_twice_and_small_digits_once():
    from diffkit.domains.images.domain import auto_ae_channels

    assert auto_ae_channels(28, 28) == (32, 64) and auto_ae_channels(32, 32) == (32, 64)
    assert auto_ae_channels(8, 8) == (32,) and auto_ae_channels(30, 30) == (32,)


def test_a_second_latent_run_on_the_same_data_reuses_the_autoencoder(
    latent_run, tmp_path, monkeypatch
):
    from diffkit.domains.images import domain

    calls = []
    real = domain.train_autoencoder
    monkeypatch.setattr(
        domain, "train_autoencoder", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    again = train(tmp_path / "again", "--latent", steps=2)  # latent_run trained it already
    first, second = load_checkpoint(latent_run).model, load_checkpoint(again).model
    assert calls == [] and torch.equal(first["latent_scale"], second["latent_scale"])
    assert all(torch.equal(first[k], second[k]) for k in first if k.startswith("autoencoder."))
    saved = load_checkpoint(again).config
    low, high = saved["settings"]["latent_range"]
    assert saved["model"]["ae_channels"] == [32] and low < 0 < high  # 8x8: one halving
    train(tmp_path / "other", "--latent", "--set=ae_kl_weight=0.002", steps=2)  # other settings
    assert calls == [1]


@pytest.mark.parametrize(
    "sets, message",
    [
        (["channel_mults=1,x"], "model.channel_mults must be a list of int like 1,2,4"),
        (["channels=3"], "has 1-channel images but model.channels=3; pass --set channels=1"),
        (["latent=true", "ae_channels=32,32,32,32"], "not multiples of 16"),
        (["latent=true", "hflip=true"], "drop hflip with --latent"),
    ],
)
def test_bad_model_settings_are_one_error_line(tmp_path, capsys, sets, message):
    args = ["train", "--domain", "images", "--out", tmp_path / "run", "--max-steps", "1"]
    code, err = run_main(capsys, *args, *(f"--set={s}" for s in sets))
    assert code == 2 and err.startswith("error:") and message in err and err.count("\n") == 1


def test_a_latent_run_resumes_with_its_autoencoder(latent_run, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(latent_run, out)
    before = load_checkpoint(out).model
    args = ["train", "--domain", "images", "--out", str(out), "--resume", "--max-steps", "12"]
    result = runner.invoke(app, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    after = load_checkpoint(out)
    assert after.step == 12 and after.config["settings"]["shape"] == [4, 4, 4]
    for key in ("latent_scale", "autoencoder.decoder.0.weight"):
        torch.testing.assert_close(after.model[key], before[key])  # frozen through the resume


def test_sampling_options_are_the_domains_dataclass_and_unknown_ones_are_named():
    from diffkit.domains.images.domain import ImagesConfig, build_network
    from diffkit.domains.images.domain import domain as images
    from diffkit.domains.images.generate import SampleOptions, generate
    from diffkit.errors import ConfigError
    from diffkit.inference import command_options
    from diffkit.schedules import linear

    with pytest.raises(ConfigError, match="unknown option --seed; use --class, --guidance"):
        command_options(images, "sample", {"seed": 3})
    chosen = command_options(images, "sample", {"class": "7", "guidance": "2.5"})
    assert chosen == SampleOptions(class_=7, guidance=2.5)
    with pytest.raises(ConfigError, match="--guidance must be a finite float"):
        command_options(images, "sample", {"guidance": "nan"})
    net = build_network(ImagesConfig(base_channels=16, attention_levels=()))
    kwargs = {"config": None, "settings": {"shape": [1, 8, 8]}, "sampler": "ddim", "steps": 2}
    x = generate(net, linear(), 2, prediction="eps", **kwargs)
    assert x.shape == (2, 1, 8, 8)


def test_a_class_folder_trains_and_bounds_class_by_its_classes(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(6):
            write_png(tmp_path / "data" / name / f"{i}.png", rng.integers(0, 256, (8, 8)))
    run = train(tmp_path / "run", "--data", str(tmp_path / "data"), "--class-conditional", steps=3)
    x = sample(run, tmp_path / "s.npy", "--n", "3", "--class", "2")
    assert x.shape == (3, 1, 8, 8)
    code, err = run_main(capsys, "sample", "--checkpoint", run, "--n", "2", "--class", "3")
    assert code == 2 and "--class 3 is out of range; this model has classes 0..2" in err


@pytest.fixture(params=["synthetic", "real"])
def idx_folder(request, tmp_path):
    """A folder of MNIST-style IDX files: 64 random digits written here, or the real MNIST."""
    if request.param == "real":
        return request.getfixturevalue("mnist_dir")
    rng = np.random.default_rng(0)
    folder = tmp_path / "idx"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte", rng.integers(0, 256, (64, 28, 28)))
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(64) % 10)
    return folder


def test_an_idx_folder_trains_class_conditional_and_samples_at_its_size(idx_folder, tmp_path):
    run = train(tmp_path / "run", "--data", str(idx_folder), "--class-conditional", steps=2)
    settings = load_checkpoint(run).config["settings"]
    assert settings["shape"] == [1, 28, 28] and settings["levels"] == 256
    assert settings["class_names"] == [str(c) for c in range(10)]
    x = sample(run, tmp_path / "s.npy", "--n", "2", "--class", "9")
    assert x.shape == (2, 1, 28, 28) and np.isfinite(x).all()


def test_an_smld_model_trains_on_the_ve_schedule_and_samples_by_langevin_and_pc(tmp_path):
    from diffkit.config import DiffusionConfig
    from diffkit.domains.images.domain import ImagesConfig, build_network

    ve = ["--set=diffusion.schedule=ve", "--set=diffusion.prediction=eps"]
    run = train(tmp_path / "ve", "--class-conditional", *ve, steps=6)
    _, net, schedule, _ = load_model(run)
    # continuous times in [0, 1] are embedded as finely as DDPM's steps 0..999
    assert not schedule.discrete and net.unet.config.time_scale == 1000.0
    assert build_network(ImagesConfig(), DiffusionConfig()).unet.config.time_scale == 1.0
    assert build_network(ImagesConfig(time_scale=3.0), None).unet.config.time_scale == 3.0
    for sampler in ("langevin", "pc"):
        x = sample(run, tmp_path / f"{sampler}.npy", "--n", "3", "--sampler", sampler,
                   "--class", "3", "--guidance", "1")  # fmt: skip
        assert x.shape == (3, 1, 8, 8) and np.isfinite(x).all() and np.abs(x).max() <= 1
