"""diffkit's image U-Net on MNIST: training throughput against diffusers, then sample quality.

    python benchmarks/images.py --quick    # about 4 min on a shared 2-core CPU: a smoke run
    python benchmarks/images.py            # 30 min of training + 1000-step sampling: hours on CPU
    python benchmarks/images.py --quick --budget 600   # quick settings, 10-min models: ~25 min
    python benchmarks/images.py --medium --threads 2   # 15-min pixel model, 200 samples, ~45 min
    python benchmarks/images.py --digits-cli           # the README's digits CLI commands, timed
    python benchmarks/images.py --report-only          # re-render RESULTS.md from results/*.json

Data: the MNIST test split from ``../shared/data/mnist`` (``--data``), its first 8,000 images
for training and the last 2,000 held out. Steps:

1. Throughput (images/s, forward + backward + AdamW step) of diffkit's class-conditional
   U-Net against diffusers' ``UNet2DModel`` + ``DDPMScheduler`` training loop with the same
   layout (32/64/64 channels, two blocks per level, attention at 7x7; parameter counts within
   10%) at the same batch size, interleaved repeats, best of each.
2. diffkit's U-Net trained for a fixed wall-clock budget (linear schedule T=1000, eps,
   AdamW, label dropout 0.1), then FD-classifier / precision / recall of its samples
   against the held-out images with ancestral (DDPM) sampling, DDIM 50, DPM-Solver++(2M) 20
   and 10; class accuracy at guidance 0, 1 and 3; bits/dim from the variational bound on
   uniformly dequantised held-out images.
3. The latent variant: the KL autoencoder (4x7x7 latents) trained first, a smaller U-Net on
   its latents for the same budget, samples decoded, FD with DPM-Solver++ 20.

The classifier behind FD, precision/recall and class accuracy is trained on the 8,000
training images; "floor" is the FD of training images against the held-out ones. Writes
``benchmarks/results/images[-quick|-medium].{json,md}`` and ``...-inpaint.png`` (held-out
digits with the right half masked, completed by the pixel model, and the originals), and
renders the run's table into its section of ``benchmarks/RESULTS.md`` (between the
``<!-- begin NAME -->`` / ``<!-- end NAME -->`` markers; ``--report-only`` re-renders every
saved run without training anything).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DModel

import diffkit
from diffkit import schedules
from diffkit.domains.images.autoencoder import (
    AutoencoderConfig,
    latent_scale,
    train_autoencoder,
)
from diffkit.domains.images.data import mnist_split
from diffkit.domains.images.evaluate import (
    class_accuracy,
    feature_metrics,
    save_grid,
    train_classifier,
)
from diffkit.domains.images.network import ImageDenoiser
from diffkit.domains.images.score import held_out_bits_per_dim
from diffkit.domains.images.unet import UNetConfig, count_parameters

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: its sibling module
from images_report import DIGITS, DIGITS_COMMANDS, digits_markdown, markdown, report
from results_md import RESULTS, update_section

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
PIXEL = UNetConfig(num_classes=10)  # the 1.74M-parameter MNIST layout (see UNetConfig)
LATENT = UNetConfig(
    in_channels=4, channel_mults=(1, 2), attention_levels=(1,), num_classes=10, head_channels=32
)
SETTINGS = {
    "quick": {
        "batch": 32, "timed": 4, "budget": 40, "latent_budget": 20, "ae_steps": 40,
        "samples": 32, "ancestral": 100, "classifier": 150, "bpd_images": 32, "bpd_steps": 10,
    },
    "medium": {
        "batch": 64, "timed": 6, "budget": 900, "latent_budget": 300, "ae_steps": 600,
        "samples": 200, "ancestral": 1000, "classifier": 600, "bpd_images": 100,
        "bpd_steps": 100,
    },
    "full": {
        "batch": 64, "timed": 10, "budget": 1800, "latent_budget": 1800, "ae_steps": 2000,
        "samples": 1000, "ancestral": 1000, "classifier": 1000, "bpd_images": 500,
        "bpd_steps": 1000,
    },
}  # fmt: skip


def diffusers_unet() -> UNet2DModel:
    """diffusers' U-Net with diffkit's default layout and a class embedding."""
    return UNet2DModel(
        sample_size=28,
        in_channels=1,
        out_channels=1,
        block_out_channels=(32, 64, 64),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        norm_num_groups=32,
        attention_head_dim=32,
        num_class_embeds=10,
    )


def throughput(images, labels, batch: int, timed: int) -> dict:
    """Images/s of one training step for each library, interleaved, best step of each."""
    torch.manual_seed(0)
    ours, theirs = ImageDenoiser(PIXEL, label_dropout=0.1).train(), diffusers_unet().train()
    schedule, scheduler = schedules.linear(), DDPMScheduler(num_train_timesteps=1000)
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-4) for m in (ours, theirs)]
    g = torch.Generator().manual_seed(0)

    def diffkit_step(x, y):
        loss = diffkit.diffusion_loss(ours, x, schedule, cond={"y": y}, generator=g).mean()
        opts[0].zero_grad(set_to_none=True)
        loss.backward()
        opts[0].step()

    def diffusers_step(x, y):
        noise = torch.randn(x.shape, generator=g)
        t = torch.randint(0, 1000, (x.shape[0],), generator=g)
        pred = theirs(scheduler.add_noise(x, noise, t), t, class_labels=y).sample
        loss = F.mse_loss(pred, noise)
        opts[1].zero_grad(set_to_none=True)
        loss.backward()
        opts[1].step()

    best = {"diffkit": float("inf"), "diffusers": float("inf")}
    for i in range(timed + 1):  # the first round warms up and is not counted
        index = torch.randint(len(images), (batch,), generator=g)
        x, y = images[index], labels[index]
        for name, step in (("diffkit", diffkit_step), ("diffusers", diffusers_step)):
            t0 = time.perf_counter()
            step(x, y)
            if i:
                best[name] = min(best[name], time.perf_counter() - t0)
    rate = {k: batch / v for k, v in best.items()}
    return {
        "batch": batch,
        "params": {"diffkit": count_parameters(ours), "diffusers": count_parameters(theirs)},
        "images_per_s": rate,
        "ratio": rate["diffkit"] / rate["diffusers"],
    }


def train_for(net, x, y, seconds: float, batch: int, lr: float = 2e-3) -> dict:
    """AdamW on the diffusion loss until ``seconds`` have passed; returns steps and loss."""
    schedule = schedules.linear()
    opt = torch.optim.AdamW(net.parameters(), lr=lr)
    g = torch.Generator().manual_seed(1)
    net.train()
    steps, losses, t0 = 0, [], time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        index = torch.randint(len(x), (batch,), generator=g)
        loss = diffkit.diffusion_loss(
            net, x[index], schedule, cond={"y": y[index]}, generator=g
        ).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        steps, losses = steps + 1, [*losses[-19:], loss.item()]
    net.eval()
    return {"steps": steps, "seconds": time.perf_counter() - t0, "final_loss": sum(losses) / 20}


def draw(net, shape, n: int, sampler: str, steps: int, guidance: float | None = None):
    """``n`` samples with labels 0..9 cycled; ``guidance`` None is the plain conditional model."""
    labels = torch.arange(n) % 10
    extra = {} if guidance is None else {"guidance_scale": guidance, "null_cond": {"y": 10}}
    spacing = "logsnr" if sampler.startswith("dpmpp") else "trailing"
    t0 = time.perf_counter()
    x = diffkit.sample(
        net,
        (n, *shape),
        schedules.linear(),
        sampler=sampler,
        steps=steps,
        spacing=spacing,
        cond={"y": labels},
        generator=torch.Generator().manual_seed(2),
        **extra,
    )
    return net.decode(x).clamp(-1, 1), labels, time.perf_counter() - t0


def inpainting_demo(net, held_out, path: Path, n: int = 8) -> None:
    """A PNG of three rows: held-out digits with the right half masked, completed, original."""
    images, labels = held_out.images[:n], held_out.labels[:n]
    mask = torch.zeros_like(images)
    mask[..., :14] = 1.0  # the left half is known
    done = diffkit.sample(
        net,
        images.shape,
        schedules.linear(),
        sampler="dpmpp_2m",
        steps=20,
        spacing="logsnr",
        cond={"y": labels},
        known=images,
        mask=mask,
        generator=torch.Generator().manual_seed(4),
    )
    masked = torch.where(mask.bool(), images, torch.zeros_like(images))
    save_grid(torch.cat([masked, done.clamp(-1, 1), images]), path, nrow=n, upscale=2)


def pixel_model(train, held_out, clf, s: dict, out_png: Path) -> dict:
    torch.manual_seed(0)
    net = ImageDenoiser(PIXEL, label_dropout=0.1, seed=0)
    out = {"training": train_for(net, train.images, train.labels, s["budget"], s["batch"])}
    rows = {}
    runs = [
        (f"ancestral {s['ancestral']}", "ddpm", s["ancestral"]),
        ("DDIM 50", "ddim", 50),
        ("DPM-Solver++ 20", "dpmpp_2m", 20),
        ("DPM-Solver++ 10", "dpmpp_2m", 10),
    ]
    with torch.no_grad():
        for label, sampler, steps in runs:
            x, y, seconds = draw(net, (1, 28, 28), s["samples"], sampler, steps)
            rows[label] = {
                **feature_metrics(clf, held_out.images, x),
                "class_accuracy": class_accuracy(clf, x, y),
                "seconds": seconds,
            }
        out["samplers"] = rows
        accuracy = {"1": rows["DPM-Solver++ 20"]["class_accuracy"]}
        for scale in (0.0, 3.0):
            x, y, _ = draw(net, (1, 28, 28), s["samples"], "dpmpp_2m", 20, guidance=scale)
            accuracy[f"{scale:g}"] = class_accuracy(clf, x, y)
        out["class_accuracy_by_guidance"] = dict(sorted(accuracy.items()))
        inpainting_demo(net, held_out, out_png)
        g = torch.Generator().manual_seed(3)
        bpd_images = held_out.images[: s["bpd_images"]]
        out["bits_per_dim"] = held_out_bits_per_dim(
            lambda x, t, **c: net(x, t, y=torch.full((x.shape[0],), 10)),  # the null class
            schedules.linear(),
            bpd_images,
            levels=256,
            steps=s["bpd_steps"],
            prediction="eps",
            generator=g,
        )
    return out


def latent_model(train, held_out, clf, s: dict) -> dict:
    ae = AutoencoderConfig(channels=(32, 64))
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(0)
    trained = train_autoencoder(train.images, ae, steps=s["ae_steps"], generator=g)
    torch.manual_seed(0)
    net = ImageDenoiser(LATENT, label_dropout=0.1, seed=0, autoencoder=ae)
    net.autoencoder.load_state_dict(trained.state_dict())
    net.latent_scale.fill_(latent_scale(trained, train.images[:2000], g))
    ae_seconds = time.perf_counter() - t0
    z = net.encode(train.images)  # (N, 4, 7, 7)
    out = {
        "params": count_parameters(net.unet),
        "autoencoder_seconds": ae_seconds,
        "reconstruction_mse": float(F.mse_loss(net.decode(z[:500]), train.images[:500])),
        "training": train_for(net, z, train.labels, s["latent_budget"], s["batch"]),
    }
    with torch.no_grad():
        x, y, seconds = draw(net, tuple(z.shape[1:]), s["samples"], "dpmpp_2m", 20)
    out["DPM-Solver++ 20"] = {
        **feature_metrics(clf, held_out.images, x),
        "class_accuracy": class_accuracy(clf, x, y),
        "seconds": seconds,
    }
    return out


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
    parser.add_argument(
        "--report-only", action="store_true", help="re-render RESULTS.md from the saved JSON"
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
    t0 = time.time()

    def done(what: str) -> None:
        print(f"{time.time() - t0:6.0f} s  {what}", flush=True)

    train, held_out = mnist_split(args.data)
    command = " ".join(["python benchmarks/images.py", *sys.argv[1:]])
    results = {"command": command, "settings": s, "threads": args.threads}
    results["throughput"] = throughput(train.images, train.labels, s["batch"], s["timed"])
    done("throughput")
    g = torch.Generator().manual_seed(0)
    clf = train_classifier(train.images, train.labels, steps=s["classifier"], generator=g)
    results["fd_floor"] = feature_metrics(clf, held_out.images, train.images[:2000])["fd"]
    done("classifier")
    name = {"quick": "images-quick", "medium": "images-medium"}.get(preset, "images")
    results["pixel"] = pixel_model(train, held_out, clf, s, args.out / f"{name}-inpaint.png")
    done("pixel model")
    results["latent"] = latent_model(train, held_out, clf, s)
    done("latent model")
    results["seconds"] = time.time() - t0
    (args.out / f"{name}.json").write_text(json.dumps(results, indent=1))
    md = markdown(results, name, SETTINGS)
    (args.out / f"{name}.md").write_text(md)
    update_section(name, md)  # RESULTS.md's table of this run, between its markers
    print(md)


if __name__ == "__main__":
    main()
