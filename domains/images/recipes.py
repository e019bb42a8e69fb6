"""Named training recipes for the images domain: config layers ``{"model", "train", "diffusion"}``.

``cpu`` is the domain's default (``Domain.defaults``), chosen by measurement on an MNIST
validation split (``benchmarks/images_recipes.py``, RESULTS.md): one residual block per
level at widths 32/64/64 (28/14/7 px for MNIST, 8/4/2 for the built-in digits), attention
only at the lowest level, v-prediction with min-SNR-5 weighting (Hang et al. 2023), a peak
learning rate of 2e-3 after 100 warm-up steps with cosine decay, and the engine's EMA.
``ddpm`` is the former MNIST layout (DDPM's CIFAR-10 U-Net scaled down: two blocks per level,
1.74M parameters, eps prediction) and ``digits8`` the former default of the built-in digits.

A recipe is a layer under the user's: ``--config`` files, flags and ``--set`` override it.
:func:`recipe_toml` writes one as a TOML file for ``diffkit train --config``.
"""

from __future__ import annotations

from pathlib import Path

from diffkit.errors import check_choice

# the engine's own defaults: what the former layouts were trained with
_FORMER = {
    "train": {"lr": 1e-3, "warmup_steps": 100, "min_lr_ratio": 0.1, "ema_max_decay": 0.999},
    "diffusion": {"prediction": "eps", "weighting": "none"},
}

RECIPES: dict[str, dict[str, dict]] = {
    "cpu": {
        "model": {
            "base_channels": 32,
            "channel_mults": (1, 2, 2),
            "num_res_blocks": 1,
            "attention_levels": (2,),
        },
        "train": {"lr": 2e-3, "warmup_steps": 100, "min_lr_ratio": 0.05, "ema_max_decay": 0.999},
        "diffusion": {"prediction": "v", "weighting": "min_snr"},
    },
    "ddpm": {
        "model": {
            "base_channels": 32,
            "channel_mults": (1, 2, 2),
            "num_res_blocks": 2,
            "attention_levels": (2,),
        },
        **_FORMER,
    },
    "digits8": {
        "model": {
            "base_channels": 32,
            "channel_mults": (1, 2),
            "num_res_blocks": 1,
            "attention_levels": (1,),
        },
        **_FORMER,
    },
}


def recipe(name: str, **train) -> dict[str, dict]:
    """The layers of recipe ``name`` (a copy), with ``train`` entries added to its train layer."""
    check_choice("images recipe", name, RECIPES)
    layers = {section: dict(values) for section, values in RECIPES[name].items()}
    layers["train"].update(train)
    return layers


def _toml_value(value) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def recipe_toml(name: str, path: Path | str) -> Path:
    """Write recipe ``name`` as a TOML file for ``diffkit train --config PATH``."""
    lines = []
    for section, values in recipe(name).items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        lines.append("")
    path = Path(path)
    path.write_text("\n".join(lines))
    return path


if __name__ == "__main__":  # python -m diffkit.domains.images.recipes ddpm ddpm.toml
    import sys

    if len(sys.argv) != 3:
        sys.exit(
            f"usage: python -m diffkit.domains.images.recipes {{{','.join(RECIPES)}}} OUT.toml"
        )
    print(f"wrote {recipe_toml(sys.argv[1], sys.argv[2])}")
