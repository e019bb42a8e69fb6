"""What both forecasting-pipeline examples share: their command line and their plot.

Not run by itself: ``python examples/gluonts_pipeline.py`` or
``python examples/pytorch_forecasting_pipeline.py`` import it from this folder.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write files only, no display needed
import matplotlib.pyplot as plt
import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def arguments(doc: str, default_out: str) -> argparse.Namespace:
    """Data folder, training length, sampler, seed and plot path of an example."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("data", nargs="?", default=DEFAULT_DATA, type=Path)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batches", type=int, default=50, help="batches per epoch")
    parser.add_argument("--sampler", default="ddpm")
    parser.add_argument("--steps", type=int, default=None, help="model calls per step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(default_out))
    return parser.parse_args()


def plot_window(samples: np.ndarray, values: np.ndarray, path: Path, history: int = 60) -> None:
    """A test window's first four series: history, median and 5-95% band of the samples.

    ``samples`` is (S, Th, D); ``values`` (T, D) ends with the window's Th true values.
    """
    horizon = samples.shape[1]
    fig, axes = plt.subplots(2, 2, figsize=(10, 6), sharex=True)
    steps = np.arange(-history, horizon)
    low, mid, high = np.quantile(samples, [0.05, 0.5, 0.95], axis=0)  # (Th, D)
    for d, ax in enumerate(axes.flat):
        ax.plot(steps, values[-history - horizon :, d], color="black", lw=1)
        ax.plot(steps[history:], mid[:, d], color="tab:blue", label="median")
        ax.fill_between(steps[history:], low[:, d], high[:, d], alpha=0.3, label="5-95%")
        ax.set_title(f"series {d}")
    axes.flat[0].legend()
    fig.supxlabel("steps from the forecast start")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
