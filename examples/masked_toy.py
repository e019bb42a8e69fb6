"""Masked diffusion end to end on a toy token distribution whose every probability is known.

    python examples/masked_toy.py [--steps 1500] [--seed 0]

Trains a small MLP with MDLM's loss on 81 correlated sequences (V=3, L=4), prints its NLL
bound beside the data's entropy and the bound of the exact denoiser, then samples with each
masked-diffusion sampler and prints the total variation to the data and the network calls.
About 15 s on one CPU thread.
"""

import argparse
import time

import torch

from diffkit import discrete
from diffkit.discrete import toy


class MLP(torch.nn.Module):
    """Logits for every position from the one-hot sequence; it ignores t, as MDLM's may."""

    def __init__(self, vocab: int, length: int, width: int = 128):
        super().__init__()
        self.vocab, self.length = vocab, length
        self.f = torch.nn.Sequential(
            torch.nn.Linear(vocab * length, width),
            torch.nn.GELU(),
            torch.nn.Linear(width, width),
            torch.nn.GELU(),
            torch.nn.Linear(width, vocab * length),
        )
        self.calls = 0

    def forward(self, x_t, t):
        self.calls += 1
        one_hot = torch.nn.functional.one_hot(x_t, self.vocab).float().flatten(1)  # (B, L * V)
        return self.f(one_hot).reshape(-1, self.length, self.vocab)  # (B, L, V)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500, help="training steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)

    data = toy.random(vocab=3, length=4, seed=args.seed)
    mask, schedule = data.mask_id, discrete.get_schedule("loglinear")
    net = MLP(data.vocab + 1, data.length)  # the mask is one more token
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    start = time.time()
    for _ in range(args.steps):
        loss = discrete.masked_diffusion_loss(
            net, data.sample(256, g), schedule, mask_id=mask, generator=g
        )
        opt.zero_grad()
        loss.mean().backward()
        opt.step()
    print(f"trained {args.steps} steps in {time.time() - start:.1f} s")

    test = data.sample(4000, g)
    for name, model in (("trained", net), ("exact", data.denoiser())):
        bound = discrete.nll_bound(model, test, schedule, mask_id=mask, num_t=16, masks_per_t=2)
        bits = bound.bits_per_token.mean()
        print(f"{name:8s} NLL bound {bound.nats.mean():.3f} nats ({bits:.3f} bits/token)")
    print(f"data     NLL       {data.nll(test).mean():.3f} nats (entropy {data.entropy():.3f})")

    runs = (("ancestral", 64, 20_000), ("cached", 64, 20_000), ("maskgit", 4, 20_000))
    for sampler, steps, n in (*runs, ("ancestral", 1000, 16), ("cached", 1000, 16)):
        net.calls = 0
        options = {"mask_id": mask, "sampler": sampler, "steps": steps, "generator": g}
        x = discrete.sample(net, (n, data.length), schedule, **options)
        tv = f"TV to the data {data.total_variation(x):.3f}, " if n > 1000 else ""
        print(f"{sampler:9s} {steps:4d} steps, {n:5d} samples: {tv}{net.calls} network calls")


if __name__ == "__main__":
    main()
