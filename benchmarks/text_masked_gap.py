"""Why the masked diffusion LM's bound trails the AR model's NLL at small budgets (issue 14).

    OMP_NUM_THREADS=1 python benchmarks/text_masked_gap.py            # ~5 CPU min, 1 thread
    OMP_NUM_THREADS=1 python benchmarks/text_masked_gap.py --smoke    # < 1 min, plumbing only
    python benchmarks/text_masked_gap.py --e2e ../shared/data/e2e/devset.csv --steps 600

On the built-in restaurant grammar (:mod:`diffkit.domains.text.grammar`, whose law is exact,
so its entropy per text is the floor for both models) every variant is a model of one size
(width, depth, batch 64) trained by the same plain loop for the same number of steps, with
checkpoints scored on the validation split (``load_data``'s 10%) along the way: bits per text
(the masked model's bound, the AR model's exact NLL) against optimiser steps and CPU seconds.
Variants:

- ``ar``: the causal baseline (the reference), at each learning rate of ``LRS``;
- ``pads``: the masked LM as it was, paying for EOS and every PAD under masking, at each
  learning rate of ``LRS``;
- ``prior``: the length prior (:mod:`diffkit.domains.text.length`): ``-log p(k)`` plus the
  bound over the k tokens given their count, at each learning rate of ``LRS``;
- ``permasked``: the length prior trained with ``masked_loss(per_masked=True)``: the bound's
  ``1 / t`` weight replaced by ``(k + 1) / |masked|``, its expectation given the mask (the
  same bound with less variance), at each rate of ``LRS``;
- ``prior-2masks``: two masks (two times) per example per step, twice the compute;
- ``prior-cosine``: MaskGIT's cosine masking schedule (loglinear is the default);
  for a network that ignores t the continuous-time bound does not depend on the schedule,
  only its variance does.

The learning rate of each family is chosen on validation; the chosen AR and masked models
are then scored once on held-out texts (a fresh draw from the grammar), next to the floor.
Last, the bound's estimator on the chosen masked model: Gauss-Legendre with 4..32 times and
Monte Carlo, each over several seeds (its mean should not move with the estimator, only its
spread). Writes ``benchmarks/results/text-masked-gap.{json,md}``; ``--e2e`` instead runs the
conditional check on E2E (``text_masked_gap_e2e.py``) into ``text-masked-gap-e2e.{json,md}``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import itertools
import json
import math
import os
import platform
import time
from pathlib import Path

import torch

from diffkit.domains.text.data import encode_corpus
from diffkit.domains.text.domain import TextConfig, build_network, load_data, prepare
from diffkit.domains.text.evaluate import ar_nll
from diffkit.domains.text.generate import tokenizer_of
from diffkit.domains.text.grammar import Grammar
from diffkit.domains.text.masked import masked_loss, masked_nll
from diffkit.training import lr_factor

LRS = (2e-3, 4e-3, 8e-3)
LN2 = math.log(2.0)
OUT = Path(__file__).parent / "results"


@dataclasses.dataclass(frozen=True)
class Variant:
    """One model to train: the text config's recipe plus the loop's settings."""

    name: str
    model: str = "masked"
    lengths: str = "prior"
    schedule: str = "loglinear"
    lr: float = 2e-3
    masks: int = 1  # masks (times) per example per step
    per_masked: bool = False  # masked_loss's lower-variance weighting


def variants() -> list[Variant]:
    out = [Variant(f"ar lr={lr:g}", model="ar", lr=lr) for lr in LRS]
    out += [Variant(f"pads lr={lr:g}", lengths="pads", lr=lr) for lr in LRS]
    out += [Variant(f"prior lr={lr:g}", lr=lr) for lr in LRS]
    out += [Variant(f"permasked lr={lr:g}", per_masked=True, lr=lr) for lr in LRS]
    out += [Variant("prior-2masks lr=0.002", masks=2)]
    out += [Variant("prior-cosine lr=0.002", schedule="cosine")]
    return out


def scores(net, model: str, ids, pad, num_t=16, masks=1, seed=0, cond=None):
    """Nats per text (N,): the AR model's exact NLL or the masked model's bound."""
    net.eval()
    out = []
    for i in range(0, len(ids), 256):
        part = slice(i, i + 256)
        c = None if cond is None else {k: x[part] for k, x in cond.items()}
        if model == "ar":
            out.append(ar_nll(net, ids[part], pad[part], cond=c))
        else:
            g = torch.Generator().manual_seed(seed + i)
            out.append(
                masked_nll(net, ids[part], cond=c, num_t=num_t, masks_per_t=masks, generator=g)
            )
    net.train()
    return torch.cat(out)


def loss_of(net, v: Variant, batch: dict, g) -> torch.Tensor:
    if v.model == "ar":
        from diffkit.domains.text.baseline import ar_loss

        return ar_loss(net, batch).mean()
    batch = {k: x.repeat(v.masks, 1) for k, x in batch.items()}
    return masked_loss(net, batch, generator=g, per_masked=v.per_masked)["loss"].mean()


def train(
    v: Variant, config, data, val, s: dict, on_check=None, resume: dict | None = None
) -> tuple[torch.nn.Module, list[dict]]:
    """Train one variant for s["steps"] steps; bits/text on ``val`` at each checkpoint.

    ``s["checks"]`` checkpoints, evenly spaced (default 4); with ``s["keep_best"]`` the
    returned network is the checkpoint with the fewest validation bits (early stopping),
    otherwise the last one. With ``s["patience"]`` training stops once that many checks in
    a row have not beaten the best. ``on_check(net, curve, is_best, snapshot)`` runs after
    each check (to save a checkpoint as it comes, so an interrupted run keeps its best so
    far); ``snapshot()`` is everything training needs to go on from that check, and
    ``resume=snapshot()`` goes on exactly as the uninterrupted run would have.
    """
    config = dataclasses.replace(
        config, model=v.model, mask_schedule=v.schedule, mask_lengths=v.lengths
    )
    torch.manual_seed(0)
    net = build_network(config)
    prepare(net, data, config)  # what p(k | c)'s key counts, as the runner does
    opt = torch.optim.AdamW(net.parameters(), lr=v.lr)
    g = torch.Generator().manual_seed(0)
    ids_all, pad_all = data.train.texts.ids, data.train.texts.pad
    curve, cpu, wall, best, start = [], 0.0, 0.0, None, 0
    if resume is not None:
        net.load_state_dict(resume["net"])
        opt.load_state_dict(resume["opt"])
        g.set_state(resume["generator"])
        torch.set_rng_state(resume["torch_rng"])  # dropout's draws
        curve, best, start = list(resume["curve"]), resume["best"], resume["curve"][-1]["step"]
        cpu, wall = curve[-1]["cpu_s"], curve[-1]["wall_s"]
    n_checks = s.get("checks", 4)
    checks = {round(s["steps"] * (i + 1) / n_checks) for i in range(n_checks)}

    def snapshot() -> dict:
        return copy.deepcopy({"net": net.state_dict(), "opt": opt.state_dict(),
                              "generator": g.get_state(), "torch_rng": torch.get_rng_state(),
                              "curve": curve, "best": best})  # fmt: skip

    net.train()
    for step in range(start, s["steps"]):
        c0, w0 = time.process_time(), time.perf_counter()
        index = torch.randint(len(ids_all), (s["batch"],), generator=g)
        batch = {"ids": ids_all[index], "pad": pad_all[index]}
        if data.train.conds is not None:
            batch |= {
                "cond_ids": data.train.conds.ids[index],
                "cond_pad": data.train.conds.pad[index],
            }
        for group in opt.param_groups:
            group["lr"] = v.lr * lr_factor(step, min(100, s["steps"] // 10), s["steps"])
        loss = loss_of(net, v, batch, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        cpu, wall = cpu + time.process_time() - c0, wall + time.perf_counter() - w0
        if step + 1 in checks:
            nats = scores(
                net, v.model, *val[:2], num_t=s["val_t"], cond=val[2] if len(val) > 2 else None
            )
            curve.append(
                {
                    "step": step + 1,
                    "cpu_s": cpu,
                    "wall_s": wall,
                    "bits_per_text": nats.mean().item() / LN2,
                }
            )
            bits = curve[-1]["bits_per_text"]
            print(f"  {v.name}: step {step + 1}, {cpu:.0f} CPU s, val {bits:.3f} bits/text")
            is_best = best is None or bits < best[0]
            if is_best:
                best = (bits, {k: x.detach().clone() for k, x in net.state_dict().items()})
            if on_check is not None:
                on_check(net, curve, is_best, snapshot)
            if stalled(curve, s.get("patience")):
                break
    if s.get("keep_best") and best is not None:
        net.load_state_dict(best[1])
    return net.eval(), curve


def stalled(curve: list[dict], patience: int | None) -> bool:
    """Whether the last ``patience`` checks of ``curve`` all failed to beat the best before them."""
    if not patience or len(curve) <= patience:
        return False
    bits = [c["bits_per_text"] for c in curve]
    return min(bits[-patience:]) >= min(bits[:-patience])


def estimator_check(net, ids, pad, seeds: int) -> list[dict]:
    """The bound's mean and spread over seeds, per estimator: only the spread should move."""
    rows = []
    for method, num_t, masks in (
        ("quadrature", 4, 1),
        ("quadrature", 8, 1),
        ("quadrature", 16, 1),
        ("quadrature", 16, 2),
        ("quadrature", 32, 1),
        ("mc", 32, 1),
    ):
        totals = []
        for seed in range(seeds):
            if method == "mc":
                from diffkit import discrete
                from diffkit.domains.text.masked import given, length_nats

                g = torch.Generator().manual_seed(100 + seed)
                b = discrete.nll_bound(
                    net,
                    ids,
                    net.schedule,
                    mask_id=net.mask_id,
                    num_t=num_t,
                    method="mc",
                    keep=given(net, ids),
                    generator=g,
                )
                nats = b.nats + length_nats(net, ids)
            else:
                nats = scores(net, "masked", ids, pad, num_t=num_t, masks=masks, seed=100 + seed)
            totals.append(nats.mean().item() / LN2)
        t = torch.tensor(totals, dtype=torch.float64)
        rows.append(
            {
                "method": method,
                "num_t": num_t,
                "masks_per_t": masks,
                "calls": num_t * masks,
                "mean_bits_per_text": t.mean().item(),
                "std_over_seeds": t.std().item(),
            }
        )
    return rows


def markdown(r: dict) -> str:
    s = r["settings"]
    lines = [
        "# Masked diffusion LM against the AR model at small budgets (issue 14)",
        "",
        f"Built-in grammar; width {s['width']}, depth {s['depth']}, batch {s['batch']}, "
        f"{s['steps']} steps per model; {r['machine']}. Times are CPU seconds of the training "
        "loop on one thread; the machine's 2 cores were shared with about 7 other agents' jobs "
        "(load average about 9), so wall time is noisy and even CPU seconds carry some noise.",
        f"Floor: the grammar's exact entropy, {r['floor_bits_per_text']:.3f} bits per text.",
        "",
        "## Validation (bits per text; choose settings here)",
        "",
        "| variant | params | "
        + " | ".join(f"step {c['step']}" for c in r["runs"][0]["curve"])
        + " | CPU s | CPU s / step |",
        "|---|---:|" + "---:|" * len(r["runs"][0]["curve"]) + "---:|---:|",
    ]
    for run in r["runs"]:
        c = run["curve"]
        cells = " | ".join(f"{p['bits_per_text']:.3f}" for p in c)
        lines.append(
            f"| {run['name']} | {run['params']} | {cells} | {c[-1]['cpu_s']:.0f} "
            f"| {c[-1]['cpu_s'] / c[-1]['step']:.3f} |"
        )
    t = r["test"]
    lines += [
        "",
        f"## Held-out texts ({t['texts']} fresh grammar draws, {t['tokens_per_text']:.2f} tokens "
        "each with EOS), each family's learning rate chosen on validation",
        "",
        "| model | bits/text | bits/token | perplexity | ratio to AR perplexity |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in t["models"].items():
        lines.append(
            f"| {name} | {row['bits_per_text']:.3f} | {row['bits_per_token']:.3f} | "
            f"{row['perplexity']:.3f} | {row['ppl_ratio']:.3f} |"
        )
    lines += [
        "",
        "At equal CPU time (the masked model's last checkpoint against the AR curve at the same "
        f"CPU seconds, interpolated): {r['equal_cpu']}",
        "",
        "## The bound's estimator (chosen masked model, validation texts)",
        "",
        "| method | times | masks per time | calls | mean bits/text | std over seeds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for e in r["estimator"]:
        lines.append(
            f"| {e['method']} | {e['num_t']} | {e['masks_per_t']} | {e['calls']} | "
            f"{e['mean_bits_per_text']:.3f} | {e['std_over_seeds']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def interpolate(curve: list[dict], cpu: float) -> float | None:
    """bits/text of a curve at ``cpu`` seconds (linear between checkpoints), None outside."""
    for a, b in itertools.pairwise(curve):
        if a["cpu_s"] <= cpu <= b["cpu_s"]:
            w = (cpu - a["cpu_s"]) / max(b["cpu_s"] - a["cpu_s"], 1e-9)
            return a["bits_per_text"] + w * (b["bits_per_text"] - a["bits_per_text"])
    return None


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny settings: plumbing only")
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--e2e", type=Path, help="E2E's devset.csv: run the conditional check only")
    p.add_argument("--e2e-lengths", choices=("pads", "prior"), default="pads")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    s = {
        "steps": a.steps,
        "width": a.width,
        "depth": a.depth,
        "batch": 64,
        "val_t": 8,
        "val_texts": 256,
        "test_texts": 1000,
        "test_t": 16,
        "test_masks": 2,
        "seeds": 4,
    }
    if a.smoke:
        s |= {"steps": 8, "val_texts": 32, "test_texts": 32, "seeds": 2}
    if a.e2e is not None:
        from text_masked_gap_e2e import e2e  # it imports this module

        return e2e(a.e2e, s, a.e2e_lengths)
    base = TextConfig(model="masked", width=s["width"], depth=s["depth"], heads=4)
    data = load_data(base, None)
    config, tok = data.config, tokenizer_of(data.settings)
    val_enc = data.val.texts
    val = (val_enc.ids[: s["val_texts"]], val_enc.pad[: s["val_texts"]])
    runs, nets = [], {}
    chosen = (
        variants()
        if not a.smoke
        else variants()[:1] + variants()[3:4] + variants()[6:7] + variants()[9:10]
    )
    for v in chosen:
        net, curve = train(v, config, data, val, s)
        params = sum(p.numel() for p in net.parameters())
        runs.append({**dataclasses.asdict(v), "params": params, "curve": curve})
        nets[v.name] = net
    best, val_bits = {}, {r["name"]: r["curve"][-1]["bits_per_text"] for r in runs}
    for family in ("ar", "pads", "prior", "permasked"):
        mine = [r for r in runs if r["name"].split(" ")[0] == family]
        best[family] = min(mine, key=lambda r: r["curve"][-1]["bits_per_text"])["name"]
    test_texts = list(Grammar().sample(s["test_texts"], seed=12345).texts)
    enc = encode_corpus(tok, test_texts, config.max_length)
    tokens = (enc.pad.sum(1) - 1).double()  # the AR model's predicted tokens, EOS included
    floor = torch.tensor([-Grammar().log_prob(t) for t in test_texts], dtype=torch.float64)
    models = {"grammar floor": floor}
    for family, name in best.items():
        model = "ar" if family == "ar" else "masked"
        models[name] = scores(nets[name], model, enc.ids, enc.pad, s["test_t"], s["test_masks"], 7)
    masked_best = min((best["prior"], best["permasked"]), key=lambda n: val_bits[n])
    ar_ppl = math.exp(models[best["ar"]].sum().item() / tokens.sum().item())
    table = {}
    for name, nats in models.items():
        per_token = nats.sum().item() / tokens.sum().item()
        table[name] = {
            "bits_per_text": nats.mean().item() / LN2,
            "bits_per_token": per_token / LN2,
            "perplexity": math.exp(per_token),
            "ppl_ratio": math.exp(per_token) / ar_ppl,
        }
    ar_curve = next(r["curve"] for r in runs if r["name"] == best["ar"])
    equal = []
    for family in ("pads", "prior", "permasked"):
        last = next(r["curve"] for r in runs if r["name"] == best[family])[-1]
        at = interpolate(ar_curve, last["cpu_s"])
        equal.append(
            f"{best[family]} {last['bits_per_text']:.3f} bits/text at {last['cpu_s']:.0f} "
            f"CPU s, AR " + ("beyond its curve" if at is None else f"{at:.3f}")
        )
    result = {
        "settings": s,
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread".replace("  ", " "),
        "floor_bits_per_text": Grammar().entropy_per_text() / LN2,
        "runs": runs,
        "chosen": best,
        "test": {
            "texts": len(test_texts),
            "tokens_per_text": tokens.mean().item(),
            "models": table,
        },
        "equal_cpu": "; ".join(equal),
        "estimator": estimator_check(nets[masked_best], *val[:2], s["seeds"]),
    }
    suffix = "-smoke" if a.smoke else ""
    OUT.mkdir(exist_ok=True)
    (OUT / f"text-masked-gap{suffix}.json").write_text(json.dumps(result, indent=1) + "\n")
    (OUT / f"text-masked-gap{suffix}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
