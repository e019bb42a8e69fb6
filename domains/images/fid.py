"""FID with a feature network the user supplies by path (``diffkit evaluate --fid-weights``).

Nothing is downloaded: the file is a TorchScript module, such as the Inception-v3 that
StyleGAN's and clean-fid's FID use (``inception-2015-12-05.pt``), saved by ``torch.jit.save``,
or a program saved by ``torch.export.save``.
It receives (N, 3, ``size``, ``size``) float images with values in [0, 255] (their
convention; grey images are repeated over the three channels and all are resized
bilinearly) and returns (N, D) features; a module whose ``forward`` takes
``return_features`` (StyleGAN's) is called with ``return_features=True``. The FID is then
the Fréchet distance of the two feature sets (:func:`~.evaluate.frechet_distance`).
torchmetrics' ``FrechetInceptionDistance`` loads local Inception weights only through
torch-fidelity, and neither it nor torchvision is a dependency here.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from diffkit.errors import DataError
from diffkit.reading import check_input

from .evaluate import frechet_distance

INCEPTION_SIZE = 299  # the side Inception-v3 was trained at


def load_feature_network(path: Path | str):
    """The feature network in ``path`` on the CPU: a TorchScript file, or a program saved by
    ``torch.export.save``; one DataError if it is neither."""
    path = check_input(Path(path), "--fid-weights")
    try:
        with zipfile.ZipFile(path) as archive:  # both formats are zip archives
            exported = any(n.endswith("/archive_format") for n in archive.namelist())
        if exported:
            return torch.export.load(str(path)).module()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates jit
            return torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as e:  # a state dict, a pickle, a truncated file: no network
        raise DataError(
            f"--fid-weights {str(path)!r} is not a TorchScript or torch.export feature "
            f"network ({type(e).__name__}); save one with torch.jit.save, e.g. StyleGAN's "
            "inception-2015-12-05.pt."
        ) from None


def _takes_return_features(model) -> bool:
    with contextlib.suppress(Exception):  # a scripted forward has a schema, a traced may not
        return "return_features" in str(model.forward.schema)
    with contextlib.suppress(Exception):
        return "return_features" in inspect.signature(model.forward).parameters
    return False


@torch.no_grad()
def network_features(
    model, images: torch.Tensor, size: int = INCEPTION_SIZE, batch_size: int = 100
) -> np.ndarray:
    """Features (N, D) of (N, C, H, W) images in [-1, 1] as float64 numpy.

    Images are mapped to [0, 255], repeated to three channels if grey and resized to
    ``size`` x ``size`` before the network sees them.
    """
    kwargs = {"return_features": True} if _takes_return_features(model) else {}
    out = []
    for batch in images.split(batch_size):
        x = (batch.float().clamp(-1, 1) + 1) * 127.5  # (B, C, H, W) in [0, 255]
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # (B, 3, H, W)
        if x.shape[2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        feats = model(x, **kwargs)
        if not isinstance(feats, torch.Tensor) or feats.ndim != 2 or len(feats) != len(x):
            shape = tuple(feats.shape) if isinstance(feats, torch.Tensor) else type(feats)
            raise DataError(
                f"the --fid-weights network returned {shape} for {len(x)} images; it must "
                "return features (N, D)."
            )
        out.append(feats.double())
    return torch.cat(out).numpy()


def fid(model, real: torch.Tensor, fake: torch.Tensor, size: int = INCEPTION_SIZE) -> float:
    """Fréchet distance between ``real`` and ``fake`` images in ``model``'s feature space."""
    return frechet_distance(
        network_features(model, real, size), network_features(model, fake, size)
    )
