"""``diffkit evaluate`` for images: FD-classifier, precision/recall, class accuracy, bits/dim.

A classifier trained on the run's training split gives the feature space (see
:mod:`.evaluate`; trained once per data set and then read from the cache, :mod:`.judges`);
the FD of the training images against the held-out ones is reported next
to the samples' as the floor. Class-conditional models also get the classifier's accuracy on
their samples at each of ``model.guidance_scales``, and beside it that of a perceptron
trained independently (``class_accuracy_mlp_g3``). Pixel models get bits/dim from the core's
variational bound on uniformly dequantised held-out images; latent models get a sentence
saying why they have none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from diffkit.domain import DomainData, EvaluateOptions, option
from diffkit.likelihood import bits_per_dim, variational_bound
from diffkit.schedules import Schedule

from .data import dequantize
from .evaluate import class_accuracy, feature_metrics, noise_tiles
from .fid import fid, load_feature_network
from .generate import SampleOptions, class_labels, generate
from .judges import judge

Tensor = torch.Tensor
# what evaluate reports for a latent model instead of a number
LATENT_BPD = (
    "not defined for a latent model: it models the autoencoder's latents, and the "
    "autoencoder, trained on squared error, gives no likelihood of the pixels"
)


@dataclass(frozen=True)
class ImagesEvaluateOptions(EvaluateOptions):
    """``diffkit evaluate``'s flags for images: the core's, and FID by a network on disk."""

    fid_weights: Path | None = option(
        None,
        "TorchScript feature network for FID (e.g. StyleGAN's inception-2015-12-05.pt); "
        "reported beside the classifier FD, never downloaded.",
    )


def bound_times(schedule: Schedule, steps: int) -> Tensor:
    """``steps`` ascending times spread over the schedule (whole steps for a discrete one).

    The bound over a sub-chain of the steps is still a bound, looser than over all T.
    """
    times = torch.linspace(schedule.t_min, schedule.t_max, steps, dtype=torch.float64)
    return torch.unique(times.round()) if schedule.discrete else times


def held_out_bits_per_dim(
    net, schedule: Schedule, images: Tensor, *, levels: int, steps: int, prediction: str, generator
) -> float:
    """Mean bits/dim of ``levels``-level images, dequantised, from the variational bound."""
    x = dequantize(images, levels, generator)

    def float_net(x_t: Tensor, t: Tensor, **cond) -> Tensor:
        return net(x_t.float(), t.float(), **cond).double()  # the bound runs in float64

    bound = variational_bound(
        float_net,
        x,
        schedule,
        prediction=prediction,
        times=bound_times(schedule, steps),
        # the forward step's variance: on a strided chain the posterior's ("small") is far
        # tighter than the model's error and the bound explodes (digits, 50 times: 29 vs 3.1)
        variance="large",
        decoder="gaussian",
        generator=generator,
    )
    # the density is over [-1, 1]: a bin of width 2 / levels holds each discrete value
    return float(bits_per_dim(bound.total, x[0].numel(), bins=levels, width=2.0).mean())


def _sample(net, schedule, n, config, settings, prediction, generator, guidance=None) -> Tensor:
    x = generate(
        net,
        schedule,
        n,
        config=config,
        settings=settings,
        sampler=config.eval_sampler,
        steps=config.eval_steps,
        prediction=prediction,
        generator=generator,
        options=SampleOptions(guidance=guidance),
    )
    return x.cpu()  # the classifier scores on the CPU


def evaluate(
    net,
    schedule: Schedule,
    data: DomainData,
    *,
    config,
    settings: dict,
    prediction: str,
    generator=None,
    options: EvaluateOptions | None = None,
) -> dict[str, float]:
    """The metrics above as a flat dict (``class_accuracy_g3`` is accuracy at guidance 3);
    ``noise_tiles`` is the fraction of samples rougher than any training image
    (:func:`~diffkit.domains.images.evaluate.noise_tiles`).

    ``options`` (``--sampler``, ``--steps``, ``--num-samples``) override the run's
    ``eval_sampler``, ``eval_steps`` and ``n_eval``; with ``--fid-weights`` the FID of the
    samples and its floor (training against held-out images) in that network's features
    are added as ``fid`` and ``fid_floor`` (:mod:`.fid`).
    """
    weights = getattr(options, "fid_weights", None)
    inception = load_feature_network(weights) if weights is not None else None  # fail early
    if options is not None:
        config = options.onto(
            config, sampler="eval_sampler", steps="eval_steps", num_samples="n_eval"
        )
    train, val = data.train, data.val if data.val is not None else data.train
    n = config.n_eval
    out: dict[str, float] = {"n_samples": n, "held_out": len(val)}
    conditional = net.num_classes is not None
    samples = _sample(net, schedule, n, config, settings, prediction, generator)
    out["noise_tiles"] = float(noise_tiles(samples, train.images).float().mean())
    if inception is not None:
        out["fid"] = fid(inception, val.images, samples)
        out["fid_floor"] = fid(inception, val.images, train.images[:n])
    if train.labels is not None:  # unlabelled data have no classifier to measure with
        clf = judge(train.images, train.labels, steps=config.classifier_steps)
        reference = train.images[:n]
        out.update(feature_metrics(clf, val.images, samples))
        out["fd_floor"] = feature_metrics(clf, val.images, reference)["fd"]
        if conditional:
            mlp = judge(train.images, train.labels, arch="mlp", steps=config.classifier_steps)
            for scale in config.guidance_scales:
                x = _sample(
                    net, schedule, n, config, settings, prediction, generator, guidance=scale
                )
                wanted = class_labels(net, n, None, settings)
                out[f"class_accuracy_g{scale:g}"] = class_accuracy(clf, x, wanted)
                out[f"class_accuracy_mlp_g{scale:g}"] = class_accuracy(mlp, x, wanted)
    if net.autoencoder is not None:
        out["bits_per_dim"] = LATENT_BPD
    elif config.bpd_steps >= 2 and settings.get("levels"):
        out["bits_per_dim"] = held_out_bits_per_dim(
            net,
            schedule,
            val.images[:n].to(next(net.parameters()).device),
            levels=int(settings["levels"]),
            steps=config.bpd_steps,
            prediction=prediction,
            generator=generator,
        )
    return out
