"""diffkit's image U-Net on MNIST: issue 18's targets (throughput and held-out error against
diffusers, sample quality judged by two classifiers) in one run.

    python benchmarks/images.py --quick    # about 6 min on a shared 2-core CPU: a smoke run
    python benchmarks/images.py            # issue 18's protocol: ~2 h of one core (below)
    python benchmarks/images.py --quick --budget 600   # quick settings, 10-min models: ~25 min
    python benchmarks/images.py --medium --threads 2   # 15-min pixel model, 200 samples, ~45 min
    python benchmarks/images.py --digits-cli           # the README's digits CLI commands, timed
    python benchmarks/images.py --report-only          # re-render RESULTS.md from results/*.json
    python benchmarks/images.py --comparison-only      # steps 1-2 again into images.json, ~10 min

Data: the MNIST test split from ``../shared/data/mnist`` (``--data``), its first 8,000 images
for training and the last 2,000 held out. Steps:

1. Throughput (images/s, forward + backward + AdamW step) of diffkit's class-conditional
   U-Net against diffusers' ``UNet2DModel`` + ``DDPMScheduler`` training loop with the same
   layout (32/64/64 channels, two blocks per level, attention at 7x7, scale-shift time
   conditioning; parameter counts within 0.1%) at the same batch size, interleaved repeats,
   best of each; beside them ``UNet2DModel`` with its default additive time conditioning,
   7% smaller.
2. Held-out noise-prediction error at equal steps: diffkit's U-Net of the recipe's layout and
   a ``UNet2DModel`` of the same layout (within 0.1% in parameters) trained interleaved on the
   same batches, times and noise (eps loss, AdamW 1e-3), then scored on the held-out images
   at fixed times with the same noise; the images/s of both in the same loop
   (:func:`diffkit.domains.images.throughput.held_out_error`).
3. Two judges trained on the 8,000 training images (:mod:`diffkit.domains.images.judges`,
   cached): the CNN, whose features give FD-classifier and precision/recall and whose
   predictions the class accuracy, and an MLP of another architecture, whose class accuracy
   is reported beside it. "Floor" is the FD of training images against the held-out ones,
   for 2,000 of them and for as many as samples per row (the targets use the latter).
4. The pixel model trained by the engine (``diffkit.fit``, as ``diffkit train`` does: AdamW,
   warm-up + cosine decay, EMA) with ``--recipe`` (default ``cpu``, see
   :mod:`diffkit.domains.images.recipes`) for a wall-clock budget (its throughput is probed
   and the cosine schedule set to the steps the budget buys), then FD-classifier /
   precision / recall / class accuracy / noise tiles of its samples, drawn through the
   domain's ``generate`` (the sample command's path, x0 clipped to the pixel range), against
   the held-out images with ancestral (DDPM), DDIM 50, DPM-Solver++(2M) 20 and 10; the same
   for DPM-Solver++(2M) 20 at guidance 0, 1, 2 and 3 (1 is the plain conditional draw,
   reused); bits/dim from the variational bound on dequantised held-out images.
5. The latent variant as ``diffkit train --latent`` runs it: the KL autoencoder (4x7x7
   latents) trained in the domain's ``prepare``, then a smaller U-Net on its latents by the
   engine for its budget; samples decoded; DPM-Solver++(2M) 20 at each guidance scale.

Writes ``benchmarks/results/images[-quick|-medium].{json,md}`` with a targets table
(``images_targets.py``), the DPM-Solver++(2M) 20 grids at the best guidance scale (10x10 of
28x28, a class per column) as ``images-PRESET-pixel.png`` and ``images-PRESET-latent.png``,
and ``images-PRESET-inpaint.png`` (held-out digits with the right half masked, completed by
the pixel model, and the originals); and renders the run's markdown into its section of
``benchmarks/RESULTS.md`` (between the ``<!-- begin NAME -->`` / ``<!-- end NAME -->``
markers; ``--report-only`` re-renders every saved run without training anything).

The full preset on one core (``--threads 1``), from the quick run's per-step and per-sample
CPU times on this 2-core machine while shared: 30 min of pixel and 30 min of latent
training (wall-clock budgets), the autoencoder's 400 steps (the CLI's default) ~2 min, the
throughput probes ~1 min, the held-out comparison (200 steps at batch 64 for each library)
~8 min, the judges (1,000 steps each; cached after) ~4 min, and sampling 200 images per row
at ~7 ms of CPU per image and network call: the 1,000-step ancestral row ~23 min, the other
pixel rows and guidance scales ~5 min, bits/dim (100 images x 100 times) ~1 min, the latent
rows ~1 min: about 105 minutes in all. After each stage the results so far are written to
``$TMPDIR/images-partial.json``, so a stopped run still leaves its measurements.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler

import diffkit
from diffkit import schedules
from diffkit.config import merge
from diffkit.domains.images.data import mnist_split
from diffkit.domains.images.domain import auto_ae_channels
from diffkit.domains.images.evaluate import class_accuracy, feature_metrics, noise_tiles, save_grid
from diffkit.domains.images.generate import SampleOptions
from diffkit.domains.images.judges import judges
from diffkit.domains.images.network import ImageDenoiser
from diffkit.domains.images.recipes import recipe
from diffkit.domains.images.score import held_out_bits_per_dim
from diffkit.domains.images.throughput import diffusers_unet, held_out_error
from diffkit.domains.images.unet import UNetConfig, count_parameters
from diffkit.guidance import data_range
from diffkit.inference import load_model
from diffkit.registry import get_domain
from diffkit.runner import resolve_config

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: its sibling module
from images_report import DIGITS, DIGITS_COMMANDS, digits_markdown, markdown, report
from images_targets import best_guidance
from results_md import RESULTS, publish, update_section
from text import TimeBudget

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
PIXEL = UNetConfig(num_classes=10)  # the 1.74M-parameter MNIST layout (see UNetConfig)
# the latent U-Net on 4x7x7 latents (autoencoder 32/64 wide, two down-samplings)
LATENT_MODEL = {"latent": True, "channel_mults": (1, 2), "attention_levels": (1,)} | {
    "ae_channels": (32, 64)
}
SETTINGS = {
    "quick": {
        "batch": 32, "timed": 4, "budget": 40, "latent_budget": 20, "ae_steps": 40,
        "samples": 32, "ancestral": 100, "classifier": 150, "bpd_images": 32, "bpd_steps": 10,
        "held_out_steps": 10,
    },
    "medium": {
        "batch": 64, "timed": 6, "budget": 900, "latent_budget": 300, "ae_steps": 600,
        "samples": 200, "ancestral": 1000, "classifier": 600, "bpd_images": 100,
        "bpd_steps": 100, "held_out_steps": 100,
    },
    "full": {  # issue 18's protocol; ae_steps is the CLI's default (model.ae_steps)
        "batch": 64, "timed": 10, "budget": 1800, "latent_budget": 1800, "ae_steps": 400,
        "samples": 200, "ancestral": 1000, "classifier": 1000, "bpd_images": 100,
        "bpd_steps": 100, "held_out_steps": 200,
    },
}  # fmt: skip
GUIDANCE = (0.0, 1.0, 2.0, 3.0)  # classifier-free guidance scales of DPM-Solver++(2M) 20


def throughput(images, labels, batch: int, timed: int) -> dict:
    """Images/s of one training step for each library, interleaved, best step of each.

    "diffusers" is ``UNet2DModel`` of diffkit's size (scale-shift time conditioning, as
    diffkit's blocks); "diffusers_default" is its default additive time embedding, 7% smaller.
    """
    torch.manual_seed(0)
    ours = ImageDenoiser(PIXEL, label_dropout=0.1).train()
    theirs = {
        "diffusers": diffusers_unet(PIXEL, 28).train(),
        "diffusers_default": diffusers_unet(PIXEL, 28, "default").train(),
    }
    schedule, scheduler = schedules.linear(), DDPMScheduler(num_train_timesteps=1000)
    opts = {
        k: torch.optim.AdamW(m.parameters(), lr=1e-4)
        for k, m in [("diffkit", ours), *theirs.items()]
    }
    g = torch.Generator().manual_seed(0)

    def diffkit_step(x, y):
        loss = diffkit.diffusion_loss(ours, x, schedule, cond={"y": y}, generator=g).mean()
        opts["diffkit"].zero_grad(set_to_none=True)
        loss.backward()
        opts["diffkit"].step()

    def diffusers_step(name):
        def step(x, y):
            noise = torch.randn(x.shape, generator=g)
            t = torch.randint(0, 1000, (x.shape[0],), generator=g)
            pred = theirs[name](scheduler.add_noise(x, noise, t), t, class_labels=y).sample
            loss = F.mse_loss(pred, noise)
            opts[name].zero_grad(set_to_none=True)
            loss.backward()
            opts[name].step()

        return step

    steps = {"diffkit": diffkit_step} | {name: diffusers_step(name) for name in theirs}
    best = dict.fromkeys(steps, float("inf"))
    for i in range(timed + 1):  # the first round warms up and is not counted
        index = torch.randint(len(images), (batch,), generator=g)
        x, y = images[index], labels[index]
        for name, step in steps.items():
            t0 = time.perf_counter()
            step(x, y)
            if i:
                best[name] = min(best[name], time.perf_counter() - t0)
    rate = {k: batch / v for k, v in best.items()}
    return {
        "batch": batch,
        "params": {"diffkit": count_parameters(ours)}
        | {k: count_parameters(m) for k, m in theirs.items()},
        "images_per_s": rate,
        "ratio": rate["diffkit"] / rate["diffusers"],
    }


def throughput_of(net, config, batch: int, timed: int = 3, shape=(1, 28, 28)) -> float:
    """Optimizer steps per second of ``net`` on the engine's loss for run ``config``."""
    schedule, d = config.diffusion.build_schedule(), config.diffusion
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(batch, *shape, generator=g) * 2 - 1, torch.arange(batch) % 10
    cond = {"y": y} if net.num_classes is not None else None
    net.train()
    best = float("inf")
    for i in range(timed + 1):  # the first step warms up and is not counted
        t0 = time.perf_counter()
        loss = diffkit.diffusion_loss(
            net, x, schedule, prediction=d.prediction, weighting=d.weighting, cond=cond, generator=g
        ).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i:
            best = min(best, time.perf_counter() - t0)
    return 1 / best


def conditional(name: str) -> dict:
    """The layers of recipe ``name`` with a class-conditional model."""
    return merge(recipe(name), {"model": {"class_conditional": True}})


def recipe_throughput(batch: int, timed: int) -> dict:
    """Steps/s at 28x28 of each recipe's class-conditional U-Net on its own loss."""
    domain, rates = get_domain("images"), {}
    for name in ("cpu", "ddpm"):
        config = resolve_config(domain, conditional(name))
        rates[name] = throughput_of(domain.build_network(config.model), config, batch, timed)
    return rates


def write_npz(images: torch.Tensor, labels: torch.Tensor, path: Path) -> Path:
    """8-bit images (N, H, W) and labels as the NPZ file ``diffkit train --data`` reads."""
    pixels = ((images[:, 0] + 1) * 127.5).round().to(torch.uint8).numpy()  # (N, H, W)
    np.savez(path, images=pixels, labels=labels.numpy())
    return path


def train_engine(
    layers: dict, data: Path | None, out: Path, budget: float, batch: int, steps: int = 0
) -> dict:
    """Fit ``layers`` (a recipe) by the engine for ``steps``, or about ``budget`` seconds.

    For a budget the throughput is probed first and the run's cosine schedule set to the
    steps the budget buys; a time limit of 1.5x the budget stops it if the machine slows
    down. ``data`` None trains on the built-in digits. Returns steps, seconds and the probed
    steps/s.
    """
    domain = get_domain("images")
    where = str(data) if data is not None else None
    one = merge(layers, {"train": {"max_steps": 1, "batch_size": batch}})
    probe = resolve_config(domain, one, where)
    m = probe.model
    side = 28 if data is not None else 8
    if m.latent and not m.ae_channels:  # chosen from the images' size, as load_data does
        m = dataclasses.replace(m, ae_channels=auto_ae_channels(side, side))
    side = side // m.autoencoder().factor if m.latent else side  # latent U-Nets: 7x7
    shape = (m.latent_channels if m.latent else m.channels, side, side)
    rate = throughput_of(domain.build_network(m), probe, batch, shape=shape)
    planned = steps or max(50, int(rate * budget))
    train = {"max_steps": planned, "batch_size": batch, "checkpoint_every": 10**6}
    config = resolve_config(domain, merge(layers, {"train": train}), where)
    stop = TimeBudget(budget * 1.5 if not steps else 10**9)
    t0 = time.perf_counter()
    diffkit.fit(domain, config, out=out, quiet=True, callbacks=(stop,))
    seconds = time.perf_counter() - t0
    return {"steps": stop.steps, "planned": planned, "seconds": seconds, "probed_rate": rate}


def loaded(run: Path):
    """``(domain, net, schedule, config, found)`` of a run's EMA weights."""
    domain, net, schedule, found = load_model(run)
    return domain, net, schedule, domain.config(**found.config["model"]), found


def draw(run_state, n: int, sampler: str, steps: int, guidance: float | None = None):
    """``n`` samples through the domain's ``generate`` (labels 0..9 cycled, the x0 clip of
    the run); ``guidance`` None is the plain conditional model."""
    domain, net, schedule, config, found = run_state
    t0 = time.perf_counter()
    x = domain.generate(
        net,
        schedule,
        n,
        config=config,
        settings=found.config["settings"],
        sampler=sampler,
        steps=steps,
        prediction=found.config["prediction"],
        generator=torch.Generator().manual_seed(2),
        options=SampleOptions(guidance=guidance),
    )
    return x, torch.arange(n) % 10, time.perf_counter() - t0


def inpainting_demo(run_state, held_out, path: Path, n: int = 8) -> None:
    """A PNG of three rows: held-out digits with the right half masked, completed, original."""
    _, net, schedule, _, found = run_state
    images, labels = held_out.images[:n], held_out.labels[:n]
    mask = torch.zeros_like(images)
    mask[..., :14] = 1.0  # the left half is known
    done = diffkit.sample(
        net,
        images.shape,
        schedule,
        sampler="dpmpp_2m",
        steps=20,
        prediction=found.config["prediction"],
        cond={"y": labels},
        known=images,
        mask=mask,
        x0_transform=data_range("static"),
        generator=torch.Generator().manual_seed(4),
    )
    masked = torch.where(mask.bool(), images, torch.zeros_like(images))
    save_grid(torch.cat([masked, done.clamp(-1, 1), images]), path, nrow=n, upscale=2)


def scored(cnn, held_out, x, y, seconds: float, mlp=None) -> dict:
    """FD, precision/recall and class accuracy by the CNN judge, noise tiles, and the class
    accuracy by the MLP judge when ``mlp`` is given."""
    out = {
        **feature_metrics(cnn, held_out.images, x),
        "class_accuracy": class_accuracy(cnn, x, y),
        "noise_tiles": int(noise_tiles(x, held_out.images).sum()),
        "seconds": seconds,
    }
    return out | ({"class_accuracy_mlp": class_accuracy(mlp, x, y)} if mlp is not None else {})


def judged_by(judged: dict, held_out):
    """``score(x, y, seconds)``: :func:`scored` by both judges (``judges``' dict)."""
    return lambda x, y, seconds: scored(judged["cnn"], held_out, x, y, seconds, judged["mlp"])


def by_guidance(state, score, n: int, plain, path: Path) -> dict:
    """DPM-Solver++(2M) 20 scored (``score`` of :func:`judged_by`) at each of GUIDANCE, one
    draw per scale, and the grid (10x10, a class per column) at :func:`best_guidance` saved
    to ``path``.

    ``plain`` is the ``(samples, scores)`` of the unguided draw: guidance 1 is the plain
    conditional model (cfg at scale 1 gives the same prediction at twice the cost).
    """
    samples, rows = {}, {}
    for scale in GUIDANCE:
        key = f"{scale:g}"
        if scale == 1.0:
            samples[key], rows[key] = plain
            continue
        x, y, seconds = draw(state, n, "dpmpp_2m", 20, guidance=scale)
        samples[key], rows[key] = x, score(x, y, seconds)
    save_grid(samples[best_guidance(rows)][:100], path, nrow=10)
    return rows


def pixel_model(data: Path, held_out, judged, s: dict, prefix: str, out: Path, tmp: Path) -> dict:
    layers = conditional(s["recipe"])
    layers["model"]["val_fraction"] = 0.01  # selection was done on its own split
    result = {
        "recipe": s["recipe"],
        "layers": layers,
        "training": train_engine(layers, data, tmp / "pixel", s["budget"], s["batch"]),
    }
    state = loaded(tmp / "pixel")
    result["params"] = count_parameters(state[1].unet)
    rows, drawn, score = {}, {}, judged_by(judged, held_out)
    runs = [
        (f"ancestral {s['ancestral']}", "ddpm", s["ancestral"]),
        ("DDIM 50", "ddim", 50),
        ("DPM-Solver++ 20", "dpmpp_2m", 20),
        ("DPM-Solver++ 10", "dpmpp_2m", 10),
    ]
    with torch.no_grad():
        for label, sampler, steps in runs:
            x, y, seconds = draw(state, s["samples"], sampler, steps)
            rows[label], drawn[label] = score(x, y, seconds), x
        result["samplers"] = rows
        plain = drawn["DPM-Solver++ 20"], rows["DPM-Solver++ 20"]
        grid = out / f"{prefix}-pixel.png"
        result["by_guidance"] = by_guidance(state, score, s["samples"], plain, grid)
        inpainting_demo(state, held_out, out / f"{prefix}-inpaint.png")
        g = torch.Generator().manual_seed(3)
        bpd_images = held_out.images[: s["bpd_images"]]
        net = state[1]
        result["bits_per_dim"] = held_out_bits_per_dim(
            lambda x, t, **c: net(x, t, y=torch.full((x.shape[0],), 10)),  # the null class
            state[2],
            bpd_images,
            levels=256,
            steps=s["bpd_steps"],
            prediction=state[4].config["prediction"],
            generator=g,
        )
    return result


def latent_model(data: Path, held_out, judged, s: dict, prefix: str, out: Path, tmp: Path) -> dict:
    """The CLI's latent path (``--latent``): the autoencoder trained in ``prepare``, then the
    U-Net on its latents, both by the engine."""
    layers = merge(conditional(s["recipe"]), {"model": LATENT_MODEL | {"ae_steps": s["ae_steps"]}})
    layers["model"]["val_fraction"] = 0.01
    t0 = time.perf_counter()
    training = train_engine(layers, data, tmp / "latent", s["latent_budget"], s["batch"])
    state = loaded(tmp / "latent")
    net = state[1]
    images = held_out.images[:500]
    result = {
        "layers": layers,
        "params": count_parameters(net.unet),
        "training": training,
        "seconds_with_autoencoder": time.perf_counter() - t0,
        "reconstruction_mse": float(F.mse_loss(net.decode(net.encode(images)), images)),
    }
    score = judged_by(judged, held_out)
    with torch.no_grad():
        x, y, seconds = draw(state, s["samples"], "dpmpp_2m", 20)
        result["DPM-Solver++ 20"] = score(x, y, seconds)
        plain, grid = (x, result["DPM-Solver++ 20"]), out / f"{prefix}-latent.png"
        result["by_guidance"] = by_guidance(state, score, s["samples"], plain, grid)
    return result


def digits_cli(out: Path, threads: int) -> dict:
    """Run the README's digits commands through the CLI and time them."""
    with tempfile.TemporaryDirectory() as tmp:
        run, metrics = Path(tmp) / "run", Path(tmp) / "metrics.json"
        seconds = []
        for command in DIGITS_COMMANDS:
            args = command.replace("RUN", str(run)).split()[1:]
            extra = (
                ["--out", str(run), "--quiet"] if args[0] == "train" else ["--out", str(metrics)]
            )
            t0 = time.perf_counter()
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            subprocess.run(
                [sys.executable, "-m", "diffkit.cli", *args, *extra], check=True, env=env
            )
            seconds.append(time.perf_counter() - t0)
        result = {
            "seconds": seconds,
            "threads": threads,
            "metrics": json.loads(metrics.read_text()),
        }
    (out / f"{DIGITS}.json").write_text(json.dumps(result, indent=1))
    return result


def library_comparison(train, held_out, s: dict) -> dict:
    """Steps 1 and 2: throughput and held-out error of diffkit's U-Net beside diffusers'."""
    unet = resolve_config(get_domain("images"), conditional(s["recipe"])).model.unet()
    return {
        "throughput": throughput(train.images, train.labels, s["batch"], s["timed"]),
        "recipe_steps_per_s": recipe_throughput(s["batch"], s["timed"]),
        "held_out_error": held_out_error(
            unet, train.images, train.labels, held_out.images, held_out.labels,
            steps=s["held_out_steps"], batch=s["batch"],
        ),
    }  # fmt: skip


def rerun_comparison(path: Path, train, held_out, command: str, t0: float) -> None:
    """Measure steps 1 and 2 again into the saved run ``path``, saying which commit did."""
    if not path.exists():
        sys.exit(f"error: {path} does not exist; run the preset in full first.")
    results = json.loads(path.read_text())
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()  # the code measured: read before the measurement, not after
    results |= library_comparison(train, held_out, results["settings"])
    results["comparison_rerun"] = {
        "command": command, "commit": commit or "unknown", "seconds": time.time() - t0,
    }  # fmt: skip
    path.write_text(json.dumps(results, indent=1, default=str))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of about 4 minutes")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with MNIST t10k files")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--medium", action="store_true", help="15-min pixel model, 1000-step ancestral: ~45 min"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--budget", type=float, help="override each model's training seconds")
    parser.add_argument("--samples", type=int, help="override the samples per row")
    parser.add_argument("--ancestral", type=int, help="override the ancestral sampler's steps")
    parser.add_argument("--classifier", type=int, help="override the classifier's steps")
    parser.add_argument(
        "--recipe", default="cpu", help="the images recipe to train (cpu, ddpm, digits8)"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="re-render RESULTS.md from the saved JSON"
    )
    parser.add_argument(
        "--comparison-only",
        action="store_true",
        help="rerun only the throughput and held-out comparison with diffusers (~10 min) "
        "into the preset's saved JSON",
    )
    parser.add_argument(
        "--digits-cli", action="store_true", help="time the README's digits commands (~3 min)"
    )
    args = parser.parse_args()
    if args.report_only:
        print("rendered", ", ".join(report(args.out, SETTINGS)) or "nothing", "into", RESULTS)
        return
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.digits_cli:
        digits_cli(args.out, args.threads)
        print(digits_markdown(json.loads((args.out / f"{DIGITS}.json").read_text())))
        update_section(
            DIGITS, digits_markdown(json.loads((args.out / f"{DIGITS}.json").read_text()))
        )
        return
    preset = "quick" if args.quick else "medium" if args.medium else "full"
    s = dict(SETTINGS[preset])
    if args.budget:
        s["budget"] = s["latent_budget"] = args.budget
    if args.samples:
        s["samples"] = args.samples
    if args.ancestral:
        s["ancestral"] = args.ancestral
    if args.classifier:
        s["classifier"] = args.classifier
    s["recipe"] = args.recipe
    t0 = time.time()
    name = {"quick": "images-quick", "medium": "images-medium"}.get(preset, "images")
    command = " ".join(["python benchmarks/images.py", *sys.argv[1:]])
    results = {"command": command, "settings": s, "threads": args.threads}
    partial = Path(tempfile.gettempdir()) / f"{name}-partial.json"  # what a stopped run did

    def done(what: str) -> None:
        print(f"{time.time() - t0:6.0f} s  {what}", flush=True)
        partial.write_text(json.dumps(results, indent=1, default=str))

    train, held_out = mnist_split(args.data)
    if args.comparison_only:
        rerun_comparison(args.out / f"{name}.json", train, held_out, command, t0)
        print("rendered", ", ".join(report(args.out, SETTINGS)), "into", RESULTS)
        return
    results |= library_comparison(train, held_out, s)
    done("throughput and held-out error beside diffusers")
    judged = judges(train.images, train.labels, steps=s["classifier"])
    cnn, n = judged["cnn"], s["samples"]
    results["fd_floor"] = feature_metrics(cnn, held_out.images, train.images[:2000])["fd"]
    at = feature_metrics(cnn, held_out.images, train.images[:n])["fd"]
    results["fd_floor_at_samples"] = {"n": n, "fd": at}
    done("judges")
    prefix = f"images-{preset}"  # of the PNGs
    with tempfile.TemporaryDirectory() as tmp:
        data = write_npz(train.images, train.labels, Path(tmp) / "train.npz")
        results["pixel"] = pixel_model(data, held_out, judged, s, prefix, args.out, Path(tmp))
        done("pixel model")
        results["latent"] = latent_model(data, held_out, judged, s, prefix, args.out, Path(tmp))
        done("latent model")
    results["grids"] = [f"{prefix}-{kind}.png" for kind in ("pixel", "latent", "inpaint")]
    results["seconds"] = time.time() - t0
    md = markdown(results, name, SETTINGS)
    publish(args.out, name, results, md)  # and RESULTS.md's table of this run
    print(md)


if __name__ == "__main__":
    main()
