"""Annealed Langevin on the exact 8-mode ring: the former default step (``step_lr`` 2e-5)
against the current one (``r = min(1.5, 20 / n_steps_each)``), SW1 at 4, 10 and 20 levels of
5 steps each (21, 51 and 101 network calls).

    python benchmarks/langevin_step.py    # about 1 minute on one thread
"""

from __future__ import annotations

import torch

import diffkit
from diffkit import schedules, toy

N = 20_000
STEPS = {"former (step_lr 2e-5)": {"step_lr": 2e-5}, "current default": {}}


def sw1(x: torch.Tensor, ref: torch.Tensor) -> float:
    return toy.sliced_wasserstein(x, ref, generator=torch.Generator().manual_seed(1))


def main() -> None:
    torch.set_num_threads(1)
    s, gm = schedules.linear(), toy.ring()
    ref = gm.sample(N, torch.Generator().manual_seed(0))
    floor = sw1(gm.sample(N, torch.Generator().manual_seed(5)), ref)
    print(f"floor (a fresh exact draw): {floor:.4f}")
    for levels in (4, 10, 20):
        for name, options in STEPS.items():
            x = diffkit.sample(
                gm.denoiser(s), (N, 2), s, sampler="langevin", steps=levels,
                generator=torch.Generator().manual_seed(3), **options,
            )  # fmt: skip
            print(f"{levels} levels, {5 * levels + 1} calls, {name}: SW1 {sw1(x, ref):.4f}")


if __name__ == "__main__":
    main()
