"""Image metrics in the feature space of a small classifier diffkit trains itself.

Where Inception weights cannot be downloaded, the standard remedy is a classifier trained on
the data set's own training split: its penultimate layer gives the features for the Fréchet
distance ("FD-classifier") and for k-NN precision/recall, and its predictions score the class
accuracy of class-conditional samples. Sample grids are written as PNG with Pillow.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from diffkit.errors import DataError, ShapeError, check_choice


class _Judge(nn.Module):
    """``body`` gives the features, ``head`` the class logits."""

    body: nn.Module
    head: nn.Module

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features (B, feature_dim)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class Classifier(_Judge):
    """Small CNN for (B, C, H, W) images of any size >= 2x2; ``features`` is its penultimate layer.

    Two conv blocks (the second after a 2x max-pool), adaptive average pooling to 4x4, then a
    ``feature_dim``-wide ReLU layer and the class logits.
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 32, feature_dim: int = 128):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),  # (B, 2 * width * 16)
            nn.Linear(2 * width * 16, feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)


class MLPClassifier(_Judge):
    """A two-hidden-layer perceptron on the flattened pixels: the second judge of samples.

    It shares no layer type with :class:`Classifier` (no convolution, no pooling), so the
    two make different mistakes and a sample both assign to its class is more likely a
    digit than an adversarial texture one of them happens to accept. ``features`` is its
    second hidden layer, ``feature_dim`` wide.
    """

    def __init__(self, in_features: int, num_classes: int, width: int = 32, feature_dim: int = 128):
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(),  # (B, C * H * W), C * H * W = in_features
            nn.Linear(in_features, 8 * width),
            nn.ReLU(),
            nn.Linear(8 * width, feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)


ARCHS = {"cnn": Classifier, "mlp": MLPClassifier}


def build_classifier(arch: str, image_shape, num_classes: int, width: int = 32) -> nn.Module:
    """An untrained classifier ``arch`` ("cnn" or "mlp") for (C, H, W) images."""
    check_choice("classifier", arch, ARCHS)
    c, h, w = image_shape
    if arch == "cnn":
        return Classifier(c, num_classes, width=width)
    return MLPClassifier(c * h * w, num_classes, width=width)


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    steps: int = 300,
    generator: torch.Generator | None = None,
    batch_size: int = 128,
    lr: float = 2e-3,
    width: int = 32,
    arch: str = "cnn",
) -> nn.Module:
    """Train a classifier (``arch``: :class:`Classifier` "cnn" or :class:`MLPClassifier`
    "mlp") on (images, labels) with Adam and return it in eval mode.

    A pure function of its arguments: the initial weights and the batches come from
    ``generator`` only (global RNG state is left as it was).

    Parameters
    ----------
    images : torch.Tensor
        Training images (N, C, H, W) in [-1, 1].
    labels : torch.Tensor
        Long class labels (N,).
    steps : int
        Optimiser steps.
    generator : torch.Generator, optional
        Source of all randomness; a fresh one seeded 0 when omitted.
    batch_size, lr, width : int, float, int
        Mini-batch size, Adam learning rate, channel width of the first conv block (the
        MLP's first layer is 8x as wide).
    arch : str
        "cnn" or "mlp".

    Returns
    -------
    nn.Module
    """
    if images.ndim != 4 or labels.shape != (images.shape[0],):
        raise ShapeError(
            f"need images (N, C, H, W) and labels (N,), got {tuple(images.shape)} and "
            f"{tuple(labels.shape)}; pass one label per image."
        )
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    num_classes = int(labels.max()) + 1
    seed = int(torch.randint(2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_classifier(arch, images.shape[1:], num_classes, width=width)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1))
    for _ in range(steps):
        index = torch.randint(images.shape[0], (batch_size,), generator=generator)
        loss = F.cross_entropy(model(images[index]), labels[index])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


@torch.no_grad()
def features(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """Penultimate features (N, D) of ``images`` as float64 numpy, computed in batches."""
    chunks = [model.features(b) for b in images.split(batch_size)]
    return torch.cat(chunks).double().numpy()


@torch.no_grad()
def class_accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512
) -> float:
    """Fraction of ``images`` that ``model`` assigns to the class in ``labels``."""
    preds = torch.cat([model(b).argmax(-1) for b in images.split(batch_size)])
    return float((preds == labels.to(preds.device)).float().mean())


def _stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise DataError(
            f"Fréchet distance needs at least 2 feature vectors (N, D), got {feats.shape}; "
            "pass more samples."
        )
    return feats.mean(0), np.cov(feats, rowvar=False)


def frechet_distance_from_stats(
    mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray
) -> float:
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2).

    ``|mu1 - mu2|^2 + tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2))``. The trace of the square root
    is taken as ``tr((cov1^(1/2) cov2 cov1^(1/2))^(1/2))``, whose argument is symmetric
    positive semi-definite, so eigen-decompositions give it real and stable even for the
    singular covariances (fewer samples than dimensions) where ``scipy.linalg.sqrtm(cov1 @
    cov2)`` returns spurious imaginary parts.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    w, v = np.linalg.eigh((cov1 + cov1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T  # cov1^(1/2), symmetric
    inner = root1 @ cov2 @ root1
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    trace_sqrt = np.sqrt(np.clip(eig, 0.0, None)).sum()
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt, 0.0))


def frechet_distance(feats1: np.ndarray, feats2: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N1, D) and (N2, D)."""
    return frechet_distance_from_stats(*_stats(np.asarray(feats1)), *_stats(np.asarray(feats2)))


def _kth_radius(x: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Distance from each row of ``x`` to its k-th nearest other row, (N,)."""
    return torch.cat([torch.cdist(c, x).kthvalue(k + 1, dim=1).values for c in x.split(chunk)])


def _coverage(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int):
    """Fraction of ``points`` inside at least one ball (centre, radius)."""
    inside = [(torch.cdist(c, centres) <= radii[None]).any(dim=1) for c in points.split(chunk)]
    return float(torch.cat(inside).float().mean())


def precision_recall(
    real: np.ndarray, fake: np.ndarray, k: int = 3, chunk: int = 1024
) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) between feature sets.

    Each set's manifold is the union of balls around its points reaching their k-th nearest
    neighbour. Precision is the fraction of ``fake`` inside the real manifold (fidelity),
    recall the fraction of ``real`` inside the fake manifold (coverage).

    Parameters
    ----------
    real, fake : np.ndarray
        Features (N_real, D) and (N_fake, D).
    k : int
        Neighbour defining each ball's radius; the paper uses 3.
    chunk : int
        Rows per pairwise-distance block (memory ``chunk * N`` floats).

    Returns
    -------
    tuple of float
        (precision, recall), each in [0, 1].
    """
    r = torch.as_tensor(np.asarray(real), dtype=torch.float64)
    f = torch.as_tensor(np.asarray(fake), dtype=torch.float64)
    if min(len(r), len(f)) <= k:
        raise DataError(
            f"precision/recall with k={k} needs more than {k} points per set, got "
            f"{len(r)} and {len(f)}; pass more samples or lower k."
        )
    precision = _coverage(f, r, _kth_radius(r, k, chunk), chunk)
    recall = _coverage(r, f, _kth_radius(f, k, chunk), chunk)
    return precision, recall


def feature_metrics(
    model: nn.Module, real: torch.Tensor, fake: torch.Tensor, k: int = 3
) -> dict[str, float]:
    """FD-classifier, precision and recall of ``fake`` against ``real`` images."""
    fr, ff = features(model, real), features(model, fake)
    precision, recall = precision_recall(fr, ff, k=k)
    return {"fd": frechet_distance(fr, ff), "precision": precision, "recall": recall}


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels, per image (N,).

    Of images in [-1, 1] (clipped first, as a grid shows them): the mean over the vertical
    and the horizontal neighbour pairs, summed. Salt-and-pepper noise scores about 1.33
    (two uniform values in [-1, 1] differ by 2/3 on average), a flat image 0.
    """
    if images.ndim != 4 or min(images.shape[2:]) < 2:
        raise ShapeError(
            f"total variation needs (N, C, H, W) images of at least 2x2, got {tuple(images.shape)}."
        )
    x = images.detach().float().clamp(-1, 1)
    dh = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).mean(1)
    dw = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).mean(1)
    return dh + dw


def noise_tiles(samples: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Which samples are noise, (N,) bool: a total variation above every reference image's.

    No image of the data is that rough, so such a tile is not a digit drawn badly but the
    salt-and-pepper texture of a trajectory that left the data (see
    :func:`diffkit.guidance.data_range`).
    """
    return total_variation(samples) > total_variation(reference).max()


def make_grid(
    images: torch.Tensor, nrow: int | None = None, padding: int = 2, upscale: int = 1
) -> np.ndarray:
    """Tile (N, C, H, W) images in [-1, 1] into one uint8 array (H', W') or (H', W', 3).

    ``nrow`` images per row (default ``ceil(sqrt(N))``), ``padding`` white pixels between
    them, each pixel repeated ``upscale`` times per side (8x8 digits are tiny otherwise).
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ShapeError(
            f"a grid needs (N, 1 or 3, H, W) images, got {tuple(images.shape)}; decode latents "
            "before saving."
        )
    x = images.detach().float().cpu().clamp(-1, 1)
    if upscale > 1:
        x = x.repeat_interleave(upscale, dim=2).repeat_interleave(upscale, dim=3)
    n, c, h, w = x.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    grid = torch.ones(c, padding + ncol * (h + padding), padding + nrow * (w + padding))
    for i in range(n):
        top, left = padding + (i // nrow) * (h + padding), padding + (i % nrow) * (w + padding)
        grid[:, top : top + h, left : left + w] = x[i]
    pixels = ((grid + 1) * 127.5).round().to(torch.uint8)  # (C, H', W')
    return pixels[0].numpy() if c == 1 else pixels.permute(1, 2, 0).numpy()  # (H', W'[, 3])


def save_grid(
    images: torch.Tensor,
    path: str | Path,
    nrow: int | None = None,
    padding: int = 2,
    upscale: int = 1,
) -> Path:
    """Write :func:`make_grid` of ``images`` to ``path`` as PNG and return the path."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(make_grid(images, nrow, padding, upscale)).save(path, format="PNG")
    return path
