"""Noise tiles in the README's digits model, with and without keeping x0 in the pixel range.

    python benchmarks/images_outliers.py                      # trains the README model: ~4 min
    python benchmarks/images_outliers.py --checkpoint RUN     # an existing digits run instead

Trains the README's model (``diffkit train --domain images --class-conditional --max-steps
500 --batch-size 64``, built-in 8x8 digits) through the engine, then draws 64 samples per
row through the sample command's own path (:func:`diffkit.inference.sample_checkpoint`,
seed 0) for each sampler, guidance scale and ``--x0-clip``, and counts the noise tiles: samples
whose total variation exceeds that of every training image
(:func:`diffkit.domains.images.evaluate.noise_tiles`). Writes
``benchmarks/results/images-outliers.{json,md}``, the class-7 grids before and after
(``images-outliers-{off,static}.png``) and the ``images-outliers`` section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

import diffkit
from diffkit.domains.images.data import load_images
from diffkit.domains.images.evaluate import noise_tiles, save_grid, total_variation
from diffkit.inference import sample_checkpoint
from diffkit.registry import get_domain
from diffkit.runner import resolve_config

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: its sibling module
from results_md import save_run

NAME = "images-outliers"
README_TRAIN = "diffkit train --domain images --class-conditional --max-steps 500 --batch-size 64"
ROWS = [  # (sampler, steps, class or None for 0..9 cycled, guidance)
    ("ddim", 50, 7, 3.0),  # the README's sevens.png: the sample command's default sampler
    ("ddim", 50, 7, 1.0),
    ("ddim", 50, 7, 0.0),
    ("ddim", 50, None, 3.0),
    ("dpmpp_2m", 20, 7, 3.0),
    ("ddpm", 1000, 7, 3.0),  # x0 clip off only: 1,000 ancestral steps are slow here
]
CLIPS = ("off", "static", "dynamic")


def train_readme_model(out: Path) -> Path:
    domain = get_domain("images")
    config = resolve_config(
        domain,
        {"train": {"max_steps": 500, "batch_size": 64}, "model": {"class_conditional": True}},
    )
    return diffkit.fit(domain, config, out=out, quiet=True)


def measure(run: Path, out: Path, n: int = 64) -> dict:
    reference = load_images(None, class_conditional=True).images  # the built-in digits
    rows = []
    for sampler, steps, label, scale in ROWS:
        for clip in CLIPS if sampler != "ddpm" else ("off",):
            t0 = time.perf_counter()
            x = sample_checkpoint(
                run,
                n,
                sampler=sampler,
                steps=steps,
                seed=0,
                options={"class": label, "guidance": scale, "x0_clip": clip},
            )
            noisy = noise_tiles(x, reference)
            rows.append(
                {
                    "sampler": sampler,
                    "steps": steps,
                    "class": label,
                    "guidance": scale,
                    "x0_clip": clip,
                    "noise_tiles": int(noisy.sum()),
                    "n": n,
                    "seconds": time.perf_counter() - t0,
                }
            )
            print(rows[-1], flush=True)
            if (sampler, label, scale) == ("ddim", 7, 3.0) and clip in ("off", "static"):
                save_grid(x, out / f"{NAME}-{clip}.png", upscale=4)
    return {"rows": rows}


def markdown(r: dict) -> str:
    lines = [
        f"`{r['command']}` ({r['seconds'] / 60:.0f} min, 1 torch thread, shared 2-core CPU; "
        f"`benchmarks/results/{NAME}.json`). Model: `{README_TRAIN}`"
        f"{' (' + r['checkpoint'] + ')' if r.get('checkpoint') else ''}. {r['rows'][0]['n']} "
        "samples per cell, seed 0; a noise tile is a sample whose total variation exceeds "
        f"every training digit's ({r['max_tv']:.3f}).",
        "",
        "| sampler | class | guidance | " + " | ".join(f"x0 clip {c}" for c in CLIPS) + " |",
        "|---|---|---|" + "---|" * len(CLIPS),
    ]
    cells: dict[tuple, dict] = {}
    for row in r["rows"]:
        key = (f"{row['sampler']} {row['steps']}", row["class"], row["guidance"])
        cells.setdefault(key, {})[row["x0_clip"]] = row["noise_tiles"]
    for (sampler, label, scale), counts in cells.items():
        shown = "0-9" if label is None else str(label)
        lines.append(
            f"| {sampler} | {shown} | {scale:g} | "
            + " | ".join(f"{counts[c]} / {r['rows'][0]['n']}" if c in counts else "" for c in CLIPS)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="an existing digits run to measure")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.checkpoint or train_readme_model(Path(tmp) / "digits")
        result = measure(run, args.out)
    reference = load_images(None, class_conditional=True).images
    result.update(
        command=" ".join(["python benchmarks/images_outliers.py", *sys.argv[1:]]),
        checkpoint=str(args.checkpoint) if args.checkpoint else None,
        max_tv=float(total_variation(reference).max()),
        seconds=time.time() - t0,
    )
    md = markdown(result)
    save_run(args.out, NAME, result, md)
    print(md)


if __name__ == "__main__":
    main()
