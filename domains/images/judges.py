"""The classifiers that judge samples, trained once per data set and read back after.

``diffkit evaluate`` scores samples with a CNN (:class:`~.evaluate.Classifier`: its features
give the FD, its predictions the class accuracy) and a perceptron of another architecture
(:class:`~.evaluate.MLPClassifier`), trained independently, whose accuracy is reported
beside the CNN's. Each is a pure function of the training images, labels and settings, so
it is kept in the cache (:mod:`.cache`) under their hash: a second evaluation of the same
data reads it back instead of training it again.
"""

from __future__ import annotations

import torch
from torch import nn

from .cache import cached_module, content_key
from .evaluate import build_classifier, train_classifier

JUDGES = ("cnn", "mlp")  # the first gives the features (FD, precision/recall)


def judge(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    arch: str = "cnn",
    steps: int = 300,
    seed: int = 0,
    batch_size: int = 128,
    lr: float = 2e-3,
    width: int = 32,
) -> nn.Module:
    """:func:`~.evaluate.train_classifier` of these arguments, from the cache when it holds it.

    The generator is ``torch.Generator().manual_seed(seed)``, so a cached and a freshly
    trained classifier have the same weights.
    """
    settings = {
        "arch": arch,
        "steps": steps,
        "seed": seed,
        "batch_size": batch_size,
        "lr": lr,
        "width": width,
    }
    num_classes = int(labels.max()) + 1

    def train():
        g = torch.Generator().manual_seed(seed)
        with torch.enable_grad():  # the engine evaluates under no_grad
            model = train_classifier(
                images, labels, steps=steps, generator=g, batch_size=batch_size, lr=lr,
                width=width, arch=arch,
            )  # fmt: skip
        return model, {}

    model, _, _ = cached_module(
        "classifier",
        content_key((images, labels), settings),
        lambda: build_classifier(arch, images.shape[1:], num_classes, width=width),
        train,
    )
    return model


def judges(images: torch.Tensor, labels: torch.Tensor, steps: int = 300) -> dict[str, nn.Module]:
    """Both judges by name (``"cnn"``, ``"mlp"``), each trained on (images, labels) or cached.

    For the benchmarks: ``class_accuracy(judges(x, y)["mlp"], samples, wanted)`` is the
    second classifier's score.
    """
    return {arch: judge(images, labels, arch=arch, steps=steps) for arch in JUDGES}
