"""The images domain's benchmark: FD-classifier and class accuracy against NFE per sampler.

A class-conditional U-Net is trained briefly on the built-in 8x8 digits (MNIST from
``--data-dir`` in the full suite); then every sampler at every budget draws the same number
of images per class, and diffusers' counterpart schedulers draw from the *same* network
(reading the noise level from their own tables; the network gets the matching fractional
time). Metrics are :mod:`.evaluate`'s, in the feature space of a small classifier trained
on the training split: the Fréchet distance to the held-out images, and the fraction of
samples the classifier assigns to the class they were drawn for. The floor is the same
for real training images against the held-out ones.
"""

from __future__ import annotations

import math
import time
from functools import partial

import torch

import diffkit
from diffkit.bench import (
    NOT_INSTALLED,
    Case,
    Context,
    Counted,
    Skip,
    fitted,
    result,
    row,
    steps_for,
)
from diffkit.bench import diffusers_ref as ref
from diffkit.config import DiffusionConfig
from diffkit.process import convert

from .evaluate import class_accuracy, feature_metrics, train_classifier
from .recipes import RECIPES

# suite -> training steps, U-Net width, samples per point, classifier steps
BUDGETS = {
    "smoke": {"steps": 300, "width": 16, "samples": 100, "classifier": 200},
    "quick": {"steps": 400, "width": 32, "samples": 150, "classifier": 300},
    "full": {"steps": 4000, "width": 32, "samples": 1000, "classifier": 500},
}
# MNIST (full suite only) costs about 10x the digits per step and per sample (28x28 px), so
# its fit (a FIT entry) spends a third of the sampling runs on a 100-step reference
MNIST = {"steps": 800, "width": 32, "samples": 120, "classifier": 300, "fit": ((10,), 200, 10, 100)}
UNIT = "FD-classifier to held-out images (feature units²)"
# suite -> budgets whose steps are fitted (of those the run asks for), calibration samples
# (at most a quarter of the scored ones), sampling runs per fitted step, reference steps
FIT = {"smoke": ((10,), 20, 2, 20), "quick": ((10,), 50, 8, 100), "full": ((10,), 200, 30, 200)}


def scores(clf, val_images, x, labels) -> dict[str, float]:
    """FD-classifier against the held-out images and class accuracy of ``x``."""
    fd = feature_metrics(clf, val_images, x)["fd"]
    return {"fd": fd, "class_accuracy": class_accuracy(clf, x, labels)}


def run_images(path_of, b: dict, context: Context) -> dict:
    """Train on the images ``path_of(context)`` names (None: digits), then every point."""
    from .domain import ImagesConfig, domain  # it imports this module

    path = path_of(context)
    cpu = RECIPES["cpu"]  # the domain's default recipe, at the suite's width
    config = ImagesConfig(class_conditional=True, **{**cpu["model"], "base_channels": b["width"]})
    data = domain.load_data(config, path)
    diffusion = DiffusionConfig(**cpu["diffusion"])
    from diffkit.bench.train import train

    trained = train(
        domain,
        config,
        data,
        diffusion,
        steps=b["steps"],
        batch_size=64,
        lr=cpu["train"]["lr"],
        seed=context.seed,
        device=context.device,
    )
    net, schedule, device = trained.net, trained.schedule, context.device
    train_set, val = data.train, data.val
    g = torch.Generator().manual_seed(context.seed)
    with torch.enable_grad():
        clf = train_classifier(
            train_set.images, train_set.labels, steps=b["classifier"], generator=g
        )
    n, shape = b["samples"], tuple(train_set.images.shape[1:])
    labels = torch.arange(n) % config.num_classes
    x_T = torch.randn(n, *shape, generator=torch.Generator().manual_seed(context.seed + 1))
    cond = {"y": labels.to(device)}
    have_ref, rows = ref.installed(), []
    for sampler in context.samplers:
        for nfe in context.nfes:
            steps = steps_for(sampler, nfe, schedule.T)
            counted, t0 = Counted(net), time.perf_counter()
            x = diffkit.sample(
                counted,
                x_T.to(device),
                schedule,
                sampler=sampler,
                steps=steps,
                prediction=diffusion.prediction,
                cond=cond,
                generator=_generator(context),
            )
            wall = time.perf_counter() - t0
            x = net.decode(x).clamp(-1, 1).cpu()
            rows.append(
                row(
                    "diffkit",
                    sampler,
                    counted.calls,
                    nfe_budget=nfe,
                    steps=steps,
                    wall_s=wall,
                    **scores(clf, val.images, x, labels),
                )
            )
            if have_ref and sampler in ref.COUNTERPARTS:
                rows.append(
                    reference_row(
                        sampler,
                        nfe,
                        net,
                        diffusion.prediction,
                        schedule,
                        x_T,
                        cond,
                        clf,
                        val,
                        labels,
                        context,
                    )
                )
            context.advance()
    floor_x = train_set.images[torch.randperm(len(train_set), generator=g)[:n]]
    floor = {
        "fd": feature_metrics(clf, val.images, floor_x)["fd"],
        "class_accuracy": class_accuracy(clf, val.images, val.labels),
    }
    references = {"diffusers": "ok" if have_ref else NOT_INSTALLED, "real images": "ok"}
    notes = [throughput_note(config, train_set, have_ref, context)]
    notes += fitted_rows(rows, net, diffusion.prediction, schedule, x_T, cond, clf, val, context,
                         b.get("fit"))  # fmt: skip
    setup = (
        f"Class-conditional U-Net ({trained.summary()['params']} parameters, width "
        f"{b['width']}) trained {b['steps']} steps on {len(train_set)} {shape} images; "
        f"{n} samples per point ({n // config.num_classes} per class), linear schedule "
        f"T={schedule.T}, the domain's cpu recipe (v-prediction, min-SNR-5 weighting, one "
        "residual block per level), no guidance and no x0 clip in either library (one "
        "network for both: a sampler comparison; diffusers gets the eps it expects); "
        f"classifier {b['classifier']} steps. Floor: real "
        "training images (FD) and the classifier's held-out accuracy."
    )
    return result(
        rows,
        references,
        floor=floor,
        curve=trained.curve,
        setup=setup,
        floor_label="real images",
        train=trained.summary(),
        notes=notes,
    )


def fitted_rows(
    rows, net, prediction, schedule, x_T, cond, clf, val, context, budget=None
) -> list[str]:
    """Add every fixed spacing's and the fitted steps' rows of :data:`fitted.SAMPLER` at
    the budgets of ``budget`` (a :data:`FIT` entry; default the suite's) to ``rows`` (the
    fit on its own calibration noise and labels); returns the notes."""
    sampler, device, n = fitted.SAMPLER, context.device, len(x_T)
    if sampler not in context.samplers:
        return []
    nfes, size, evals, reference_steps = budget or FIT[context.suite]
    size = min(size, n // 4)
    g = torch.Generator().manual_seed(context.seed + fitted.CALIBRATION_SEED)
    calibration = torch.randn(size, *x_T.shape[1:], generator=g).to(device)
    calibration_cond = {"y": cond["y"][:size]}  # the classes in turn, as the scored ones

    def evaluate(spacing, steps, name=sampler):
        counted = Counted(net)
        with torch.no_grad():
            x = diffkit.sample(counted, x_T.to(device), schedule, sampler=name, steps=steps,
                               spacing=spacing, prediction=prediction, cond=cond,
                               generator=_generator(context))  # fmt: skip
        x = net.decode(x).clamp(-1, 1).cpu()
        return counted.calls, scores(clf, val.images, x, cond["y"].cpu())

    notes = []
    for nfe in (k for k in nfes if k in context.nfes):
        steps = steps_for(sampler, nfe, schedule.T)
        fit = fitted.fit(net, schedule, sampler=sampler, nfe=nfe, x_T=calibration,
                         cond=calibration_cond, prediction=prediction, seed=context.seed + 2,
                         reference_steps=reference_steps, max_evals=evals * steps)  # fmt: skip
        target = schedule if context.suite != "smoke" else None  # smoke: no time for it
        rows += fitted.compare(evaluate, fit, rows, sampler=sampler, nfe=nfe, steps=steps,
                               target=target)  # fmt: skip
        notes.append(fitted.note(rows, "fd", sampler=sampler, nfe=nfe))
    return notes


def throughput_note(config, train_set, have_ref: bool, context: Context) -> str:
    """Training images/s of diffkit's U-Net and diffusers' UNet2DModel, same layout."""
    if not have_ref:
        return f"Training throughput beside diffusers' UNet2DModel: {NOT_INSTALLED}."
    from .throughput import compare

    batch = train_set.images[:64]
    labels = train_set.labels[:64] if config.class_conditional else None
    c = compare(config.unet(), batch, labels, steps=5, seed=context.seed)
    ours, theirs = c["diffkit"], c["diffusers UNet2DModel"]
    return (
        f"Training throughput, batch {c['batch']}, {c['steps']} steps, same layout: diffkit "
        f"{ours['images_per_s']:.0f} images/s ({ours['params']:,} parameters), diffusers "
        f"UNet2DModel {theirs['images_per_s']:.0f} images/s ({theirs['params']:,} parameters)."
    )


def _generator(context: Context) -> torch.Generator:
    return torch.Generator(device=context.device).manual_seed(context.seed + 2)


def reference_row(
    sampler, nfe, net, prediction, schedule, x_T, cond, clf, val, labels, context
) -> dict:
    """diffusers' counterpart of ``sampler`` driving the same network from the same noise.

    The network's ``prediction`` is converted to the eps diffusers' schedulers expect.
    """
    steps = ref.steps_for(sampler, nfe)

    def eps_at(x, alpha, sigma):
        t = schedule.t_of_log_snr(torch.tensor(2 * math.log(alpha / sigma)))
        out = net(x, t.float().to(x.device).expand(x.shape[0]), **cond)
        return convert(out, x, alpha, sigma, prediction, "eps")

    counted, t0 = Counted(eps_at), time.perf_counter()
    with torch.no_grad():
        x = ref.sample(
            sampler,
            counted,
            x_T.to(context.device),
            schedule.alphas_cumprod,
            steps,
            generator=_generator(context),
        )
    wall = time.perf_counter() - t0
    x = net.decode(x).clamp(-1, 1).cpu()
    return row(
        "diffusers",
        sampler,
        counted.calls,
        nfe_budget=nfe,
        steps=steps,
        scheduler=ref.COUNTERPARTS[sampler][0],
        wall_s=wall,
        **scores(clf, val.images, x, labels),
    )


def _digits(context: Context):
    return None


def _mnist(context: Context):
    folder = context.data_dir / "mnist" if context.data_dir else None
    if folder is None or not folder.is_dir():
        raise Skip("MNIST needs --data-dir holding mnist/ (the IDX files).")
    return folder


def cases(suite: str) -> list[Case]:
    """The built-in digits in every suite; MNIST from ``--data-dir`` in the full suite."""
    common = dict(
        domain="images",
        metric="fd",
        unit=UNIT,
        metrics=("class_accuracy",),
        higher_better=("class_accuracy",),
        labels={"class_accuracy": "class accuracy (fraction of samples, classifier)"},
        references=("diffusers", "real images"),
    )
    out = [
        Case(
            name="digits",
            title="class-conditional U-Net on the built-in 8x8 digits",
            run=partial(run_images, _digits, BUDGETS[suite]),
            **common,
        )
    ]
    if suite == "full":
        out.append(
            Case(
                name="mnist",
                title="class-conditional U-Net on MNIST",
                run=partial(run_images, _mnist, MNIST),
                **common,
            )
        )
    return out
