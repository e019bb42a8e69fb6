"""Render the images benchmark's saved JSON into markdown: its .md files and RESULTS.md.

Used by ``benchmarks/images.py`` after a run and by its ``--report-only`` flag; imports
nothing heavy, so re-rendering never needs torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import images_targets
from results_md import update_section

SAMPLER_NAMES = {"DPM-Solver++ 20": "DPM-Solver++(2M) 20", "DPM-Solver++ 10": "DPM-Solver++(2M) 10"}
RUNS = {"images-quick": "quick", "images-medium": "medium", "images": "full"}
DIGITS = "images-digits-cli"  # the CLI on the built-in digits (``--digits-cli``)
DIGITS_COMMANDS = (
    "diffkit train --domain images --class-conditional --max-steps 500 --batch-size 64",
    "diffkit evaluate --checkpoint RUN",
)


def command_of(r: dict, name: str, presets: dict) -> str:
    """The command that wrote result ``name``; rebuilt from its settings for older JSON files."""
    if "command" in r:
        return r["command"]
    preset = RUNS[name]
    flags = {"quick": ["--quick"], "medium": ["--medium"], "full": []}[preset]
    if r.get("threads", 1) != 1:
        flags += ["--threads", str(r["threads"])]
    for key, flag in (("budget", "--budget"), ("samples", "--samples")):
        if r["settings"][key] != presets[preset][key]:
            flags += [flag, f"{r['settings'][key]:g}"]
    return " ".join(["python benchmarks/images.py", *flags])


def markdown(r: dict, name: str, presets: dict) -> str:
    """The RESULTS.md section of one run, from its JSON (older runs lack the recipe keys)."""
    s, tp, px, lat = r["settings"], r["throughput"], r["pixel"], r["latent"]
    rate, params = tp["images_per_s"], tp["params"]
    tr, ltr = px["training"], lat["training"]
    command, threads = command_of(r, name, presets), r.get("threads", 1)
    how = (
        f"trained by the engine with the `{px['recipe']}` recipe ({px['params']:,} parameters)"
        if "recipe" in px
        else "trained by the benchmark's own loop (constant lr 2e-3, no EMA)"
    )
    ae = lat.get("seconds_with_autoencoder", lat.get("autoencoder_seconds", 0))
    lines = [
        f"`{command}` ({r['seconds'] / 60:.0f} min, {threads} torch thread(s); "
        f"`benchmarks/results/{name}.json`). Batch {s['batch']}; pixel U-Net {how}: "
        f"{tr['steps']:,} steps in {tr['seconds']:.0f} s; {s['samples']} samples per row; "
        f"bits/dim over {s['bpd_steps']} strided times on {s['bpd_images']} held-out images; "
        f"latent: autoencoder {s['ae_steps']} steps (reconstruction MSE "
        f"{lat['reconstruction_mse']:.4f}), U-Net {ltr['steps']:,} steps in "
        f"{ltr['seconds']:.0f} s ({ae:.0f} s with the autoencoder).",
        "",
        "| measure (DDPM layout, both libraries) | diffkit | diffusers | ratio |",
        "|---|---|---|---|",
        f"| parameters | {params['diffkit']:,} | {params['diffusers']:,} | "
        f"{params['diffkit'] / params['diffusers']:.2f} |",
        f"| training throughput, batch {tp['batch']} (images/s) | {rate['diffkit']:.1f} | "
        f"{rate['diffusers']:.1f} | {tp['ratio']:.2f}x |",
        *default_conditioning_lines(tp),
        "",
    ]
    if "held_out_error" in r:
        lines[-1:-1] = held_out_lines(r["held_out_error"])
    if "comparison_rerun" in r:
        again = r["comparison_rerun"]
        lines += [
            f"The library comparison above, the steps/s line below and the throughput and "
            f"held-out targets were measured again at commit "
            f"{again['commit']} by `{again['command']}` ({again['seconds'] / 60:.0f} min); "
            "the rest of the run is the first command's.",
            "",
        ]
    if "recipe_steps_per_s" in r:
        by_recipe = ", ".join(f"`{k}` {v:.2f}" for k, v in r["recipe_steps_per_s"].items())
        lines += [f"Training steps/s at 28x28, batch {tp['batch']}: {by_recipe}.", ""]
    lines += [
        "| sampler | FD-classifier | precision | recall | class accuracy | noise tiles | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = {SAMPLER_NAMES.get(k, k): m for k, m in px["samplers"].items()}
    rows["latent, DPM-Solver++(2M) 20"] = lat["DPM-Solver++ 20"]
    for label, m in rows.items():
        tiles = m.get("noise_tiles", "")
        lines.append(
            f"| {label} | {m['fd']:.1f} | {m['precision']:.3f} | {m['recall']:.3f} | "
            f"{m['class_accuracy']:.3f} | {tiles} | {m['seconds']:.1f} |"
        )
    lines.append(f"| floor: training vs held-out images | {r['fd_floor']:.1f} | | | | | |")
    if "fd_floor_at_samples" in r:
        at = r["fd_floor_at_samples"]
        lines.append(
            f"| floor: {at['n']:,} training vs held-out images | {at['fd']:.1f} | | | | | |"
        )
    lines.append("")
    if "by_guidance" in px:
        lines += [*guidance_lines(r), ""]
    for what, by in (("pixel", px), ("latent", lat)):
        guidance = by.get("class_accuracy_by_guidance")
        if guidance:
            lines.append(
                f"Class accuracy ({what} model, DPM-Solver++(2M) 20) at guidance "
                f"{' / '.join(guidance)}: {' / '.join(f'{v:.2f}' for v in guidance.values())}."
            )
    lines.append(f"Bits/dim (pixel model) {px['bits_per_dim']:.2f}.")
    if "by_guidance" in px and "held_out_error" in r:
        lines += ["", images_targets.markdown(r)]
    if "grids" in r:
        lines += ["", "Grids: " + ", ".join(f"`benchmarks/results/{g}`" for g in r["grids"]) + "."]
    return "\n".join(lines) + "\n"


def default_conditioning_lines(tp: dict) -> list[str]:
    """The rows of diffusers' default (additive, smaller) time conditioning, where measured."""
    if "diffusers_default" not in tp["params"]:
        return []  # runs before the equal-size comparison: "diffusers" was this network
    (ours, theirs), (fast, slow) = (
        (d["diffkit"], d["diffusers_default"]) for d in (tp["params"], tp["images_per_s"])
    )
    return [
        f"| parameters, diffusers' default additive time embedding | {ours:,} | {theirs:,} | "
        f"{ours / theirs:.2f} |",
        f"| training throughput against it (images/s) | {fast:.1f} | {slow:.1f} | "
        f"{fast / slow:.2f}x |",
    ]


def held_out_lines(h: dict) -> list[str]:
    """The held-out comparison's rows of the diffkit-vs-diffusers table (the recipe's layout)."""
    ours, theirs = h["diffkit"], h["diffusers UNet2DModel"]
    equal = f"{h['steps']} equal steps, batch {h['batch']}, lr {h['lr']:g}"
    return [
        f"| parameters (recipe layout, eps) | {ours['params']:,} | {theirs['params']:,} | "
        f"{ours['params'] / theirs['params']:.2f} |",
        f"| training throughput over {equal} (images/s) | {ours['images_per_s']:.1f} | "
        f"{theirs['images_per_s']:.1f} | {ours['images_per_s'] / theirs['images_per_s']:.2f}x |",
        f"| held-out eps MSE after them ({len(h['times'])} fixed times) | "
        f"{ours['held_out_mse']:.4f} | {theirs['held_out_mse']:.4f} | "
        f"{ours['held_out_mse'] / theirs['held_out_mse']:.2f} |",
    ]


def guidance_lines(r: dict) -> list[str]:
    """FD and both judges' class accuracy by guidance scale, DPM-Solver++(2M) 20, both models."""
    px, lat = r["pixel"]["by_guidance"], r["latent"]["by_guidance"]
    lines = [
        "DPM-Solver++(2M) 20 by guidance scale (1 is the plain conditional model, the rows "
        "above; accuracy by the CNN judge and by the MLP judge trained apart):",
        "",
        "| guidance | pixel FD | pixel CNN | pixel MLP | latent FD | latent CNN | latent MLP |",
        "|---|---|---|---|---|---|---|",
    ]
    for scale in px:
        cells = [
            f"{m['fd']:.1f} | {m['class_accuracy']:.3f} | {m['class_accuracy_mlp']:.3f}"
            for m in (px[scale], lat[scale])
        ]
        lines.append(f"| {scale} | {cells[0]} | {cells[1]} |")
    return lines


def digits_markdown(r: dict) -> str:
    """The section of the CLI run on the built-in digits, from its JSON."""
    m, (train_s, evaluate_s) = r["metrics"], r["seconds"]
    guided = sorted(k for k in m if k.startswith("class_accuracy_g"))
    scales = " / ".join(k.removeprefix("class_accuracy_g") for k in guided)
    return (
        f"```\n{DIGITS_COMMANDS[0]}   # {train_s:.0f} s\n{DIGITS_COMMANDS[1]}"
        f"{' ' * (len(DIGITS_COMMANDS[0]) - len(DIGITS_COMMANDS[1]))}   # {evaluate_s:.0f} s\n```"
        f"\n\n`python benchmarks/images.py --digits-cli` ({r['threads']} torch thread(s); "
        f"`benchmarks/results/{DIGITS}.json`; {m['n_samples']} samples against {m['held_out']} "
        f"held-out digits): FD-classifier {m['fd']:.1f} (floor "
        f"{m['fd_floor']:.1f}), precision {m['precision']:.2f}, recall {m['recall']:.2f}; class "
        f"accuracy {' / '.join(f'{m[k]:.2f}' for k in guided)} at guidance {scales}; bits/dim "
        f"{m['bits_per_dim']:.2f} (log2(17) = 4.09 for uniform pixels)"
        + (f"; noise tiles {m['noise_tiles']:.1%} of the samples" if "noise_tiles" in m else "")
        + ".\n"
    )


def report(out: Path, presets: dict) -> list[str]:
    """Re-render every saved result in ``out`` into its .md file and its RESULTS.md section."""
    written = []
    for name in [*RUNS, DIGITS]:
        path = out / f"{name}.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        md = digits_markdown(r) if name == DIGITS else markdown(r, name, presets)
        if name != DIGITS:
            (out / f"{name}.md").write_text(md)
        update_section(name, md)
        written.append(name)
    return written
