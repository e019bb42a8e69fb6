"""The images domain: its ``[model]`` config, data, network and sample files for the engine.

``diffkit train --domain images`` trains a U-Net on scikit-learn's 8x8 digits (or on
``--data``: an image folder, IDX files, NPZ/NPY arrays); ``--class-conditional`` adds class
labels with label dropout for classifier-free guidance; ``--latent`` first trains a KL
autoencoder (in :func:`prepare`, before the diffusion fit) and diffuses its latents.
Sampling lives in :mod:`.generate`, metrics in :mod:`.score`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from diffkit.config import merge
from diffkit.domain import Domain, DomainData, save_samples_as
from diffkit.errors import ConfigError, DataError, check_choice
from diffkit.guidance import X0_CLIPS
from diffkit.sampling import SAMPLERS

from .autoencoder import Autoencoder, AutoencoderConfig, latent_scale, train_autoencoder
from .bench import cases as bench_cases
from .cache import cached_module, content_key
from .data import ImageSet, load_images
from .evaluate import save_grid
from .generate import SampleOptions, generate
from .network import ImageDenoiser
from .recipes import RECIPES
from .score import ImagesEvaluateOptions, evaluate
from .unet import UNetConfig

Tensor = torch.Tensor


COUNTS = ("ae_steps", "classifier_steps", "bpd_steps")  # 0 turns the step off
# continuous times in [0, 1] spread over the embedding's frequencies as steps 0..999 do
CONTINUOUS_TIME_SCALE = 1000.0


@dataclass(frozen=True)
class ImagesConfig:
    """The ``[model]`` section: U-Net, conditioning, latent autoencoder, data split, metrics.

    These dataclass defaults are the ``digits8`` layout; a run from the CLI or
    :func:`diffkit.fit` starts from the domain's defaults, the ``cpu`` recipe of
    :mod:`~diffkit.domains.images.recipes`, which ``--config`` files and flags override.
    ``channels`` and ``num_classes`` must match the data; the loader says which to set when
    they do not. ``hflip`` trains on randomly mirrored images
    (pixel models; see :class:`~diffkit.domains.images.network.ImageDenoiser`).
    ``x0_clip`` keeps x0 predictions in the data's range while sampling (``auto``: static
    clipping to [-1, 1] for pixel models, to the training latents' range for latent ones;
    see :func:`diffkit.guidance.data_range`). ``ae_channels`` left empty is chosen from the
    images' size (:func:`auto_ae_channels`); ``time_scale`` 0 from the schedule (1 for
    discrete steps, 1000 for continuous times such as ``ve``'s, so that the SMLD / NCSN
    model of ``--set diffusion.schedule=ve`` embeds its times as finely as DDPM's).
    """

    class_conditional: bool = False
    latent: bool = False
    channels: int = 1
    num_classes: int = 10
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2)
    num_res_blocks: int = 1
    attention_levels: tuple[int, ...] = (1,)
    dropout: float = 0.0
    label_dropout: float = 0.1
    hflip: bool = False
    time_scale: float = 0.0  # 0: 1 for discrete schedules, 1000 for continuous ones
    latent_channels: int = 4
    ae_channels: tuple[int, ...] = ()  # chosen from the data: auto_ae_channels
    ae_steps: int = 400
    ae_kl_weight: float = 1e-3
    val_fraction: float = 0.1
    data_seed: int = 0
    n_eval: int = 256
    eval_sampler: str = "ddim"
    eval_steps: int = 20
    guidance_scales: tuple[float, ...] = (0.0, 1.0, 3.0)
    x0_clip: str = "auto"
    classifier_steps: int = 300
    bpd_steps: int = 50

    def __post_init__(self):
        for name in ("channels", "num_classes", "base_channels", "num_res_blocks"):
            if not 1 <= getattr(self, name) <= 4096:
                raise ConfigError(f"model.{name} must lie in 1..4096, got {getattr(self, name)}.")
        for low, names in ((1, ("latent_channels", "n_eval", "eval_steps")), (0, COUNTS)):
            for name in names:
                value = getattr(self, name)
                if not low <= value <= 1_000_000:
                    raise ConfigError(f"model.{name} must lie in {low}..1000000, got {value}.")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"model.val_fraction must lie in (0, 1), got {self.val_fraction}.")
        if not (0 <= self.label_dropout <= 1 and 0 <= self.dropout < 1 and self.time_scale >= 0):
            raise ConfigError(
                "model.label_dropout must lie in [0, 1], model.dropout in [0, 1) and "
                "model.time_scale must be positive (or 0: chosen from the schedule)."
            )
        if self.class_conditional and self.num_classes < 2:
            raise ConfigError("a class-conditional model needs model.num_classes of at least 2.")
        if self.hflip and self.latent:
            raise ConfigError(
                "model.hflip mirrors pixels, which latents do not follow; drop hflip with --latent."
            )
        check_choice("eval_sampler", self.eval_sampler, SAMPLERS)
        check_choice("x0_clip", self.x0_clip, ("auto", *X0_CLIPS))
        if not self.channel_mults:
            raise ConfigError("model.channel_mults must name at least one number, like 1,2.")
        self.unet()  # the U-Net's own checks, now rather than at build time
        if self.ae_channels:  # empty: chosen from the data's size by load_data
            self.autoencoder()

    def unet(self, discrete: bool = True) -> UNetConfig:
        """The U-Net this config describes (on latents in latent mode), for a discrete
        schedule or a continuous one (which sets the time scale when ``time_scale`` is 0)."""
        return UNetConfig(
            in_channels=self.latent_channels if self.latent else self.channels,
            base_channels=self.base_channels,
            channel_mults=self.channel_mults,
            num_res_blocks=self.num_res_blocks,
            attention_levels=self.attention_levels,
            mid_attention=bool(self.attention_levels),
            dropout=self.dropout,
            num_classes=self.num_classes if self.class_conditional else None,
            norm_groups=min(32, self.base_channels),
            time_scale=self.time_scale or (1.0 if discrete else CONTINUOUS_TIME_SCALE),
        )

    def autoencoder(self) -> AutoencoderConfig:
        """The KL autoencoder of latent mode (``ae_channels`` set, as load_data leaves it)."""
        if not self.ae_channels:
            raise ConfigError(
                "model.ae_channels is not set; name the autoencoder's widths, like 32,64."
            )
        return AutoencoderConfig(
            in_channels=self.channels,
            latent_channels=self.latent_channels,
            channels=self.ae_channels,
            norm_groups=min(8, *self.ae_channels),
            kl_weight=self.ae_kl_weight,
        )


class ImageDataset(Dataset):
    """Images (N, C, H, W) and their labels (N,) or None.

    Yields ``{"x": image, "y": label}`` when ``conditional``, else the image alone; the
    labels stay available to evaluation (the classifier) either way.
    """

    def __init__(self, images: Tensor, labels: Tensor | None = None, conditional: bool = False):
        self.images, self.labels = images, labels
        self.conditional = conditional and labels is not None

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int):
        if not self.conditional:
            return self.images[i]
        return {"x": self.images[i], "y": self.labels[i]}


def build_network(config: ImagesConfig, diffusion=None) -> ImageDenoiser:
    discrete = diffusion is None or diffusion.build_schedule().discrete
    return ImageDenoiser(
        config.unet(discrete),
        label_dropout=config.label_dropout if config.class_conditional else 0.0,
        hflip=config.hflip,
        seed=config.data_seed,
        autoencoder=config.autoencoder() if config.latent else None,
    )


def check_fits(data: ImageSet, config: ImagesConfig, source: str) -> None:
    """DataError when the images' channels or classes do not fit the configured network."""
    channels = data.images.shape[1]
    if channels != config.channels:
        raise DataError(
            f"{source} has {channels}-channel images but model.channels={config.channels}; "
            f"pass --set channels={channels}."
        )
    if config.class_conditional and data.num_classes > config.num_classes:
        raise DataError(
            f"{source} has {data.num_classes} classes but model.num_classes="
            f"{config.num_classes}; pass --set num_classes={data.num_classes}."
        )
    if config.latent:
        factor = config.autoencoder().factor
        if data.images.shape[2] % factor or data.images.shape[3] % factor:
            raise DataError(
                f"{source} has {tuple(data.images.shape[2:])} images whose sides are not "
                f"multiples of {factor}, the autoencoder's down-sampling; change "
                "model.ae_channels or resize the images."
            )


def split(data: ImageSet, fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """A random (train, held-out) split with ``fraction`` held out (at least one image)."""
    if len(data) < 2:
        raise DataError(f"the data hold {len(data)} image; give at least two.")
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    n_val = min(len(data) - 1, max(1, round(fraction * len(data))))
    return data.take(perm[n_val:]), data.take(perm[:n_val])


def auto_ae_channels(height: int, width: int) -> tuple[int, ...]:
    """The autoencoder's widths for ``height`` x ``width`` images when none are configured.

    Two halvings, (32, 64) (4 x 7 x 7 latents for 28x28 MNIST, LDM's f = 4), where both
    sides divide by 4 and the latents keep at least 4 pixels a side; one, (32,), otherwise
    (4 x 4 x 4 for the 8x8 digits). One halving of 28x28 makes 4 x 14 x 14 latents, as many
    numbers as the pixels, whose U-Net step costs 2.5x the 4 x 7 x 7 one's on the CPU
    (``benchmarks/images_latent.py``).
    """
    two = height % 4 == 0 and width % 4 == 0 and min(height, width) >= 16
    return (32, 64) if two else (32,)


def load_data(config: ImagesConfig, path: Path | None) -> DomainData:
    source = str(path) if path is not None else "the built-in digits"
    data = load_images(path, class_conditional=config.class_conditional)
    completed = None
    if config.latent and not config.ae_channels:
        completed = config = dataclasses.replace(
            config, ae_channels=auto_ae_channels(*data.images.shape[2:])
        )
    check_fits(data, config, source)
    train, val = split(data, config.val_fraction, config.data_seed)
    cond = config.class_conditional
    settings = {
        "source": "digits" if path is None else str(path),
        "shape": list(data.images.shape[1:]),  # of what the U-Net samples; latents in prepare
        "image_shape": list(data.images.shape[1:]),
        "levels": data.levels,
        "class_names": list(data.class_names),
    }
    return DomainData(
        ImageDataset(train.images, train.labels, cond),
        ImageDataset(val.images, val.labels, cond),
        settings,
        config=completed,
    )


def prepare(net: ImageDenoiser, data: DomainData, config: ImagesConfig) -> DomainData:
    """Latent mode: put the autoencoder into ``net`` and return the data as latents.

    Pixel mode returns ``data`` unchanged. The autoencoder's training is a pure function of
    the training images, its config, ``ae_steps`` and ``data_seed``, so it is trained once
    per data set and read back from the cache (:mod:`.cache`) by later runs; a resumed run
    then loads the checkpoint's copy over it. ``settings["latent_range"]`` is the range of
    the training latents, where a latent model's x0 predictions are clipped while sampling.
    """
    if not config.latent:
        return data
    images = data.train.images
    autoencoder, scale = cached_autoencoder(images, config)
    net.autoencoder.load_state_dict(autoencoder.state_dict())
    net.latent_scale.fill_(scale)
    train = net.encode(images)  # (N, latent_channels, H / f, W / f)
    val = net.encode(data.val.images)
    settings = {
        **data.settings,
        "shape": list(train.shape[1:]),
        "latent_range": [float(train.min()), float(train.max())],
    }
    return DomainData(
        ImageDataset(train, data.train.labels, data.train.conditional),
        ImageDataset(val, data.val.labels, data.val.conditional),
        settings,
    )


def cached_autoencoder(images: Tensor, config: ImagesConfig) -> tuple[Autoencoder, float]:
    """``(autoencoder, latent scale)`` trained on ``images`` as ``config`` says, or cached."""
    ae = config.autoencoder()
    settings = {**dataclasses.asdict(ae), "steps": config.ae_steps, "seed": config.data_seed}

    def train():
        g = torch.Generator().manual_seed(config.data_seed)
        with torch.enable_grad():
            trained = train_autoencoder(
                images, ae, steps=config.ae_steps, generator=g, batch_size=64
            )
        return trained, {"latent_scale": latent_scale(trained, images, g)}

    key = content_key((images,), {"batch_size": 64, **settings})
    model, extra, _ = cached_module(
        "autoencoder", key, lambda: Autoencoder(ae), train, needs=("latent_scale",)
    )
    return model, float(extra["latent_scale"])


def save_samples(samples: Tensor, path: Path) -> None:
    """A PNG grid (small images enlarged), or the (N, C, H, W) array as .npy or .pt."""
    save_samples_as(samples, path, ".png", _save_grid)


def _save_grid(x: Tensor, path: Path) -> None:
    save_grid(x, path, upscale=max(1, 32 // x.shape[-1]))


domain = Domain(
    name="images",
    config=ImagesConfig,
    build_network=build_network,
    load_data=load_data,
    generate=generate,
    evaluate=evaluate,
    save_samples=save_samples,
    description="U-Net image diffusion: class-conditional with guidance, inpainting, latent.",
    prepare=prepare,
    options={"sample": SampleOptions, "evaluate": ImagesEvaluateOptions},
    # the CPU recipe (see .recipes); small images train well in batches of 64, the engine's
    # 256 makes a CPU run slow
    defaults=merge(RECIPES["cpu"], {"train": {"batch_size": 64}}),
    bench=bench_cases,
)
