"""Annealed Langevin / predictor-corrector settings on a trained VE images run: an
exploration behind the Langevin default's cap (RESULTS.md, SMLD section), not a benchmark.

    python benchmarks/images_smld_steps.py RUN '[["langevin", 20, {"step_lr": 1e-4}], ["pc", 50]]'

RUN is a run of the built-in 8x8 digits (``benchmarks/images_smld.py --runs DIR`` leaves one in
DIR/SMLD). Each row: 128 samples (classes 0..9 in turn, seed 2) scored by the CNN judge against
the last 180 digits, trained on the rest: FD, class accuracy, share of noise tiles, seconds.
"""

from __future__ import annotations

import json
import sys
import time

import torch

import diffkit
from diffkit.domains.images.data import load_digits_set
from diffkit.domains.images.evaluate import class_accuracy, feature_metrics, noise_tiles
from diffkit.domains.images.generate import x0_transform
from diffkit.domains.images.judges import judge
from diffkit.inference import load_model

N, HELD_OUT = 128, 180


def main(run: str, rows: list) -> None:
    torch.set_num_threads(1)
    _, net, schedule, found = load_model(run)
    digits = load_digits_set()
    train, held_out = digits.images[:-HELD_OUT], digits.images[-HELD_OUT:]
    cnn = judge(train, digits.labels[:-HELD_OUT], steps=300)
    y = torch.arange(N) % 10
    clip = x0_transform(net, "auto", found.config["settings"])
    for sampler, steps, *extra in rows:
        options = extra[0] if extra else {}
        t0 = time.perf_counter()
        x = diffkit.sample(
            net, (N, *train.shape[1:]), schedule, sampler=sampler, steps=steps,
            prediction=found.config["prediction"], cond={"y": y}, x0_transform=clip,
            generator=torch.Generator().manual_seed(2), **options,
        ).clamp(-1, 1)  # fmt: skip
        row = {
            "sampler": sampler, "steps": steps, "options": options,
            "fd": round(feature_metrics(cnn, held_out, x)["fd"], 1),
            "accuracy": class_accuracy(cnn, x, y),
            "noise_tiles": float(noise_tiles(x, train).float().mean()),
            "seconds": round(time.perf_counter() - t0, 1),
        }  # fmt: skip
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]))
