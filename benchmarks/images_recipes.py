"""Choose the images domain's CPU recipe on a validation split, at equal wall time or steps.

    python benchmarks/images_recipes.py --budget 300          # MNIST, 5 min per recipe: ~40 min
    python benchmarks/images_recipes.py --data digits --steps 300   # built-in digits: ~25 min
    python benchmarks/images_recipes.py --budget 5 --samples 20 --recipes cpu   # smoke

Data: the MNIST test split from ``../shared/data/mnist``; only its first 8,000 images are
used: 0..6,999 to train and 7,000..7,999 to validate. The last 2,000 (what
``benchmarks/images.py`` reports on) are never read here. ``--data digits``: the built-in
8x8 digits with the domain's own split (10% held out, as ``diffkit train`` does). Each
recipe (:data:`diffkit.domains.images.recipes.RECIPES`, plus variants below) is trained by
the engine (``diffkit.fit``: AdamW, warm-up + cosine, EMA) for ``--steps``, or for the same
wall-clock ``--budget``: its throughput is probed first and its cosine schedule set to the
steps the budget buys. Then
``--samples`` class-conditional samples (DPM-Solver++(2M) 20 through the domain's own
``generate``, guidance 1 and 3) are scored by a classifier trained on the training split:
FD-classifier against the validation images and class accuracy. Writes
``benchmarks/results/images-recipes[-digits].{json,md}``, a grid per recipe and that section
of RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from diffkit.domains.images.data import ImageSet, mnist_split
from diffkit.domains.images.evaluate import feature_metrics, save_grid, train_classifier
from diffkit.domains.images.recipes import recipe
from diffkit.domains.images.unet import count_parameters
from diffkit.errors import check_choice
from diffkit.registry import get_domain
from diffkit.runner import resolve_config

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: its sibling modules
from images import DATA, draw, loaded, scored, train_engine, write_npz
from results_md import save_run

NAME = "images-recipes"
VARIANTS = {  # name -> (recipe, overrides of its layers)
    "digits8": ("digits8", {}),
    "ddpm": ("ddpm", {}),
    "cpu": ("cpu", {}),
    "cpu-eps": ("cpu", {"diffusion": {"prediction": "eps", "weighting": "none"}}),
    "cpu-lr1e-3": ("cpu", {"train": {"lr": 1e-3}}),
    "cpu-16wide": ("cpu", {"model": {"base_channels": 16}}),
}


def layers_of(variant: str) -> dict:
    name, overrides = VARIANTS[variant]
    layers = recipe(name)
    for section, values in overrides.items():
        layers[section] = {**layers[section], **values}
    layers["model"] = {**layers["model"], "class_conditional": True, "val_fraction": 0.01}
    return layers


def train_variant(variant: str, data, out: Path, args) -> dict:
    return train_engine(layers_of(variant), data, out, args.budget, args.batch, args.steps)


def splits(args):
    """``(train, validation)`` ImageSets and the NPZ-or-None the engine trains on."""
    if args.data == "digits":  # the domain's own split: what `diffkit train` holds out
        domain = get_domain("images")
        config = resolve_config(domain, {"model": {"class_conditional": True}}).model
        d = domain.load_data(config, None)
        sets = [ImageSet(s.images, s.labels, levels=17) for s in (d.train, d.val)]
        return (*sets, None)
    train, _ = mnist_split(args.data)  # the 2,000 held-out images are not used here
    return train.take(slice(0, 7000)), train.take(slice(7000, 8000)), "mnist"


@torch.no_grad()
def score(run: Path, clf, val, n: int, grid: Path) -> dict:
    state = loaded(run)
    out = {"params": count_parameters(state[1].unet)}
    for scale in (1.0, 3.0):
        x, y, seconds = draw(state, n, "dpmpp_2m", 20, guidance=scale)
        out[f"g{scale:g}"] = scored(clf, val, x, y, seconds)
        if scale == 1.0:
            save_grid(x[:100], grid, nrow=10, upscale=max(1, 28 // x.shape[-1]))
    return out


def name_of(data: str) -> str:
    return f"{NAME}-digits" if data == "digits" else NAME


def markdown(r: dict) -> str:
    data = (
        "Train: the built-in digits' training split (1,617); validation: its 180 held out"
        if r["data"] == "digits"
        else "Train: MNIST test split 0..6,999; validation: 7,000..7,999"
    ) + f" (FD floor of training images: {r['fd_floor']:.1f})"
    length = f"{r['steps']} steps" if r["steps"] else f"{r['budget']:.0f} s"
    lines = [
        f"`{r['command']}` ({r['seconds'] / 60:.0f} min, {r['threads']} torch thread(s), "
        f"shared 2-core CPU under other agents' load, so timings are noisy; "
        f"`benchmarks/results/{name_of(r['data'])}.json`). {data}; each recipe {length} by "
        f"the engine at batch {r['batch']}; {r['samples']} samples, DPM-Solver++(2M) 20 "
        "(guidance g1 / g3); steps/s probed before training.",
        "",
        "| recipe | parameters | steps/s | steps | seconds | FD g1 | precision g1 | "
        "accuracy g1 | accuracy g3 | noise tiles g1 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in r["recipes"].items():
        t, g1, g3 = m["training"], m["g1"], m["g3"]
        lines.append(
            f"| {name} | {m['params']:,} | {t.get('probed_rate', 0):.2f} | {t['steps']:,} | "
            f"{t['seconds']:.0f} | {g1['fd']:.1f} | {g1['precision']:.2f} | "
            f"{g1['class_accuracy']:.2f} | {g3['class_accuracy']:.2f} | {g1['noise_tiles']} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=str(DATA), help="folder with MNIST t10k files, or 'digits' (built in)"
    )
    parser.add_argument("--steps", type=int, default=0, help="fixed steps instead of --budget")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--budget", type=float, default=300, help="training seconds per recipe")
    parser.add_argument("--samples", type=int, default=200, help="samples per guidance scale")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--classifier", type=int, default=600, help="classifier steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--recipes", default=",".join(VARIANTS), help="comma-separated names")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    fit_set, val, kind = splits(args)
    g = torch.Generator().manual_seed(0)
    clf = train_classifier(fit_set.images, fit_set.labels, steps=args.classifier, generator=g)
    print(f"{time.time() - t0:6.0f} s  classifier", flush=True)
    result = {
        "command": " ".join(["python benchmarks/images_recipes.py", *sys.argv[1:]]),
        "budget": args.budget,
        "steps": args.steps,
        "data": args.data if args.data == "digits" else "mnist",
        "batch": args.batch,
        "samples": args.samples,
        "threads": args.threads,
        "fd_floor": feature_metrics(clf, val.images, fit_set.images[:1000])["fd"],
        "recipes": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        data = kind and write_npz(fit_set.images, fit_set.labels, Path(tmp) / "train.npz")
        for variant in args.recipes.split(","):
            check_choice("recipe variant", variant, VARIANTS)
            run = Path(tmp) / variant
            training = train_variant(variant, data, run, args)
            print(f"{time.time() - t0:6.0f} s  {variant}: {training}", flush=True)
            slug = run.name
            grid = args.out / f"{name_of(result['data'])}-{slug}.png"
            m = score(run, clf, val, args.samples, grid)
            result["recipes"][variant] = {**m, "training": training, "layers": layers_of(variant)}
            print(variant, json.dumps(result["recipes"][variant]["g1"]), flush=True)
            partial = args.out / f"{name_of(result['data'])}.partial.json"
            partial.write_text(json.dumps(result, indent=1))  # kept if a later one fails
    result["seconds"] = time.time() - t0
    md = markdown(result)
    save_run(args.out, name_of(result["data"]), result, md)
    print(md)


if __name__ == "__main__":
    main()
