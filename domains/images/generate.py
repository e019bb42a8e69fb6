"""Sampling for the images domain: class labels, classifier-free guidance and inpainting.

``diffkit sample``'s ``--class``, ``--guidance``, ``--inpaint`` and ``--mask`` are the fields
of :class:`SampleOptions`, which :func:`generate` receives as ``options``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from diffkit import sample
from diffkit.domain import option
from diffkit.errors import CheckpointError, ConfigError, ShapeError, check_choice
from diffkit.guidance import X0_CLIPS, data_range
from diffkit.reading import check_input, reading

from .data import from_array, read_image

Tensor = torch.Tensor


@dataclass(frozen=True)
class SampleOptions:
    """The images domain's flags of ``diffkit sample``."""

    class_: int | None = option(
        None, "Class label of every sample (class-conditional models).", flag="--class"
    )
    guidance: float | None = option(
        None,
        "Classifier-free guidance scale: 0 unconditional, 1 conditional, >1 guided.",
        low=-100.0,
        high=100.0,
    )
    inpaint: Path | None = option(None, "Image whose known pixels are kept.")
    mask: Path | None = option(None, "Mask for --inpaint: non-zero = known.")
    x0_clip: str | None = option(
        None,
        "Keep each x0 prediction in the data's range (pixels [-1, 1], latents their "
        "training range): static (clip), dynamic (Imagen's thresholding) or off; default "
        "the run's model.x0_clip.",
    )

    def __post_init__(self):
        if self.x0_clip is not None:
            check_choice("--x0-clip", self.x0_clip, X0_CLIPS)


def x0_transform(net, clip: str, settings: dict | None = None):
    """The x0 transform sampling uses: ``clip`` ("auto", "static", "dynamic", "off") applied
    to the range the U-Net's data lie in.

    Pixels lie in [-1, 1]; latents in ``settings["latent_range"]``, the range of the training
    latents that ``prepare`` saved (``"auto"``: static clipping for both). A latent run saved
    without that range keeps x0 as it is under ``"auto"`` and refuses the other clips.
    """
    low, high = -1.0, 1.0
    if net.autoencoder is not None:
        found = (settings or {}).get("latent_range")
        valid = isinstance(found, list) and len(found) == 2
        if valid and all(isinstance(v, float | int) for v in found) and found[0] < found[1]:
            low, high = float(found[0]), float(found[1])
        elif clip == "auto":
            clip = "off"
        elif clip != "off":
            raise ConfigError(
                f"--x0-clip {clip} needs the latents' range, which this latent run did not "
                "save; use --x0-clip off or train it again."
            )
    return data_range("static" if clip == "auto" else clip, low, high)


MAX_SIDE = 4096  # pixels per side of a sample; a checkpoint asking for more is damaged


def sample_shape(settings: dict) -> list[int]:
    """The (C, H, W) a checkpoint samples, checked: an edited ``config.json`` may say anything."""
    shape = settings.get("shape")
    fits = isinstance(shape, list) and len(shape) == 3
    if not fits or not all(type(s) is int and 1 <= s <= MAX_SIDE for s in shape):
        raise CheckpointError(
            f"the checkpoint's settings.shape {shape!r} is not (C, H, W) with sides in "
            f"1..{MAX_SIDE}; restore its config.json or use another checkpoint."
        )
    return shape


def class_labels(net, n: int, label: int | None, settings: dict) -> Tensor | None:
    """(n,) labels: ``label`` for all, else 0..K-1 cycled; None for an unconditional net.

    K is the number of classes the training data had (``settings["class_names"]``), which
    may be fewer than the network's label slots.
    """
    if net.num_classes is None:
        if label is not None:
            raise ConfigError(
                "--class needs a class-conditional model; this checkpoint is unconditional "
                "(train with --class-conditional)."
            )
        return None
    k = min(len(settings.get("class_names") or ()) or net.num_classes, net.num_classes)
    if label is not None and not 0 <= label < k:
        raise ConfigError(f"--class {label} is out of range; this model has classes 0..{k - 1}.")
    if label is not None:
        return torch.full((n,), int(label), dtype=torch.long)
    return torch.arange(n) % k  # a grid shows every class in turn


def read_picture(path: Path, what: str) -> Tensor:
    """An image file (PNG/JPEG) or .npy array as a (C, H, W) tensor in [-1, 1]."""
    path = check_input(path, what)
    if path.suffix.lower() == ".npy":
        with reading(path, what, "a numpy array", "re-save it with numpy"):
            array = np.load(path, allow_pickle=False)
        if array.ndim == 4 and array.shape[0] == 1:
            array = array[0]
        if array.ndim == 3 and array.shape[0] in (1, 3):  # (C, H, W) -> (H, W, C)
            array = array.transpose(1, 2, 0)
    else:
        array = read_image(path)
    return from_array(np.asarray(array)[None], source=str(path)).images[0]  # (C, H, W)


def inpainting(inpaint: Path, mask: Path, shape: list[int]) -> tuple[Tensor, Tensor]:
    """``(known, mask)`` of the sample shape (C, H, W); the mask is 1 where mask pixels > 0."""
    known, keep = read_picture(inpaint, "--inpaint image"), read_picture(mask, "--mask")
    c, h, w = shape
    if known.shape[1:] != (h, w) or known.shape[0] not in (1, c):
        raise ShapeError(
            f"--inpaint image is {tuple(known.shape)} (C, H, W) but the model makes "
            f"{tuple(shape)}; give an image of the training size."
        )
    if keep.shape[1:] != (h, w):
        raise ShapeError(
            f"--mask is {keep.shape[1]}x{keep.shape[2]} but the image is {h}x{w}; "
            "give a mask of the image's size."
        )
    keep = (keep.amax(0, keepdim=True) > -1.0).float()  # (1, H, W): any non-black pixel is known
    return known.expand(c, h, w), keep.expand(c, h, w)


def generate(
    net,
    schedule,
    n: int,
    *,
    config,
    settings: dict,
    sampler: str,
    steps: int | None,
    prediction: str,
    generator=None,
    options: SampleOptions | None = None,
) -> Tensor:
    """``n`` images (n, C, H, W) in [-1, 1]; ``options`` are the sample command's flags."""
    options = options or SampleOptions()
    shape = sample_shape(settings)
    device = next(net.parameters()).device
    labels = class_labels(net, n, options.class_, settings)
    extra: dict = {}
    if options.guidance is not None:
        if labels is None:
            raise ConfigError(
                "--guidance needs a class-conditional model; this checkpoint is unconditional."
            )
        extra = {"guidance_scale": options.guidance, "null_cond": {"y": net.num_classes}}
    if (options.inpaint is None) != (options.mask is None):
        raise ConfigError("inpainting needs both --inpaint IMAGE and --mask MASK; give both.")
    if options.inpaint is not None:
        if net.autoencoder is not None:
            raise ConfigError(
                "--inpaint works on pixel models; this checkpoint is latent (trained with "
                "--latent), so sample it without --inpaint."
            )
        known, mask = inpainting(options.inpaint, options.mask, shape)
        extra.update(known=known.to(device), mask=mask.to(device))
    x = sample(
        net,
        (n, *shape),
        schedule,
        sampler=sampler,
        steps=steps,
        prediction=prediction,
        cond={"y": labels.to(device)} if labels is not None else None,
        generator=generator,
        device=device,
        x0_transform=x0_transform(
            net, options.x0_clip or getattr(config, "x0_clip", "auto"), settings
        ),
        **extra,
    )
    return net.decode(x).clamp(-1.0, 1.0)
