"""``diffkit train --latent`` on MNIST with the CLI's defaults: a short measurement of the causes.

    python benchmarks/images_latent.py --steps 1000     # ~20 min on the shared 2-core CPU

Data: the MNIST test split from ``../shared/data/mnist``, first 8,000 images to train and
the last 2,000 held out (only the held-out images are scored). First the training cost per
step (batch 64, CPU seconds) of the class-conditional U-Net on pixels, on the former
default's 4x14x14 latents (one halving) and on the new 4x7x7 (two). Then the CLI's latent
model (``--latent --class-conditional``, every other setting the domain's default) trained by
the engine for ``--steps``; the autoencoder's reconstructions of the held-out images are
scored (MSE, the CNN judge's accuracy, FD: the best any diffusion on these latents can
reach), and DPM-Solver++(2M) 20 samples through the domain's ``generate`` at guidance 0, 1
and 3 with the latent x0 clip off and static (the training latents' range), with the
standard deviation of the sampled latents (training latents: 1). Results go to
``benchmarks/results/images-latent.{json,md}`` and RESULTS.md's section; ``--report-only``
re-renders them from the JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from diffkit.domains.images.data import mnist_split
from diffkit.domains.images.evaluate import class_accuracy, feature_metrics, noise_tiles
from diffkit.domains.images.judges import judge
from diffkit.registry import get_domain
from diffkit.runner import resolve_config

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: its sibling module
from images import draw, loaded, throughput_of, train_engine, write_npz
from results_md import publish

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
OUT = Path(__file__).parent / "results" / "images-latent.json"


def step_costs(batch: int = 64) -> dict:
    """CPU seconds per training step of the conditional U-Net on pixels and on latents."""
    domain, costs = get_domain("images"), {}
    cases = {"pixels 1x28x28": (1, 28, 28), "latents 4x14x14": (4, 14, 14)}
    for name, shape in {**cases, "latents 4x7x7": (4, 7, 7)}.items():
        model = {"class_conditional": True, "latent": shape[0] == 4, "ae_channels": (32,)}
        config = resolve_config(domain, {"model": model})
        t0 = time.process_time()
        throughput_of(domain.build_network(config.model), config, batch, timed=3, shape=shape)
        costs[name] = (time.process_time() - t0) / 4  # 3 timed steps and a warm-up
    return costs


def latent_row(train, held_out, clf, steps: int, n: int) -> dict:
    layers = {"model": {"latent": True, "class_conditional": True, "val_fraction": 0.01}}
    row: dict = {"steps": steps, "layers": layers}
    with tempfile.TemporaryDirectory() as tmp:
        data = write_npz(train.images, train.labels, Path(tmp) / "train.npz")
        t0 = time.perf_counter()
        row["training"] = train_engine(layers, data, Path(tmp) / "run", 0, 64, steps=steps)
        row["seconds_with_autoencoder"] = time.perf_counter() - t0
        state = loaded(Path(tmp) / "run")
    domain, net, schedule, config, found = state
    row["model"] = found.config["model"]
    row["latent_shape"] = found.config["settings"]["shape"]
    row["latent_range"] = found.config["settings"]["latent_range"]
    with torch.no_grad():
        recon = net.decode(net.encode(held_out.images)).clamp(-1, 1)
    row["reconstruction"] = {
        "mse": float(F.mse_loss(recon, held_out.images)),
        "accuracy": class_accuracy(clf, recon, held_out.labels),
        "fd": feature_metrics(clf, held_out.images, recon)["fd"],
    }
    print("reconstruction", json.dumps(row["reconstruction"]), flush=True)
    for clip in ("off", "static"):
        clipped = dataclasses.replace(config, x0_clip=clip)
        for scale in (0.0, 1.0, 3.0):
            seen = []  # the decoder's inputs: the sampled latents / latent_scale
            decoder = net.autoencoder.decoder
            hook = decoder.register_forward_pre_hook(lambda m, a, seen=seen: seen.append(a[0]))
            with torch.no_grad():
                x, y, seconds = draw(
                    (domain, net, schedule, clipped, found), n, "dpmpp_2m", 20, scale
                )
            hook.remove()
            row[f"{clip} g{scale:g}"] = {
                **feature_metrics(clf, held_out.images, x),
                "accuracy": class_accuracy(clf, x, y),
                "noise_tiles": int(noise_tiles(x, held_out.images).sum()),
                "latent_std": float(torch.cat(seen).std() * net.latent_scale),
                "seconds": seconds,
            }
            print(clip, scale, json.dumps(row[f"{clip} g{scale:g}"]), flush=True)
    return row


def markdown(r: dict) -> str:
    lat, costs = r["latent"], r["cpu_seconds_per_step"]
    rec, model = lat["reconstruction"], lat["model"]
    lines = [
        "MNIST test split (first 8,000 train, last 2,000 held out), shared 2-core CPU, 1 "
        "thread, other jobs running (seconds are noisy). CPU seconds per training step of "
        "the class-conditional U-Net at batch 64: "
        + ", ".join(f"{k} {v:.2f}" for k, v in costs.items())
        + ".",
        "",
        f"`diffkit train --latent --class-conditional`, defaults, {lat['steps']} steps: "
        f"autoencoder widths {model['ae_channels']}, {model['ae_steps']} steps, latents "
        f"{'x'.join(map(str, lat['latent_shape']))}; "
        f"{lat['seconds_with_autoencoder']:.0f} s with the autoencoder. Its reconstructions "
        f"of the held-out digits (the ceiling of any diffusion on these latents): MSE "
        f"{rec['mse']:.4f}, class accuracy {rec['accuracy']:.3f}, FD {rec['fd']:.1f} "
        f"(floor {r['fd_floor']:.1f}).",
        "",
        "| x0 clip | guidance | FD | accuracy | precision | recall | noise tiles | latent std |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, m in lat.items():
        if not isinstance(m, dict) or "latent_std" not in m:
            continue
        clip, g = key.split()
        lines.append(
            f"| {clip} | {g[1:]} | {m['fd']:.1f} | {m['accuracy']:.3f} | {m['precision']:.2f} | "
            f"{m['recall']:.2f} | {m['noise_tiles']} | {m['latent_std']:.2f} |"
        )
    lines += ["", "DPM-Solver++(2M), 20 steps, samples of classes 0..9 in turn."]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--steps", type=int, default=1000, help="diffusion training steps")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--report-only", action="store_true", help="re-render the saved JSON")
    args = parser.parse_args()
    if args.report_only:
        saved = json.loads(OUT.read_text())
        print(publish(OUT.parent, OUT.stem, saved, markdown(saved)))
        return
    torch.set_num_threads(1)
    train, held_out = mnist_split(args.data)
    command = " ".join(["python benchmarks/images_latent.py", *sys.argv[1:]])
    results = {"command": command, "cpu_seconds_per_step": step_costs()}
    print(json.dumps(results), flush=True)
    clf = judge(train.images, train.labels, steps=600)
    results["fd_floor"] = feature_metrics(clf, held_out.images, train.images[:2000])["fd"]
    results["latent"] = latent_row(train, held_out, clf, args.steps, args.samples)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    print(publish(OUT.parent, OUT.stem, results, markdown(results)))


if __name__ == "__main__":
    main()
