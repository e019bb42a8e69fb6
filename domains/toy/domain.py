"""The toy domain's config, data, sampling and evaluation (the engine's end-to-end target).

Data are samples of :func:`diffkit.toy.ring`, or points from a CSV/NPY file of shape (N, 2+).
Evaluation compares generated samples with the exact mixture (or held-out data from a file):
sliced Wasserstein-1 against the noise floor of two exact sample sets, and mode TV.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from diffkit import sample, toy
from diffkit.config import bounded, check_bounds
from diffkit.domain import Domain, DomainData, EvaluateOptions, save_samples_as
from diffkit.errors import ConfigError, DataError, check_choice
from diffkit.reading import check_input, reading
from diffkit.sampling import SAMPLERS

from .bench import cases as bench_cases
from .network import MLP

Tensor = torch.Tensor


@dataclass(frozen=True)
class ToyConfig:
    """The MLP and the built-in ring data (the ``[model]`` section)."""

    hidden: int = bounded(128, 1, 8192)
    depth: int = bounded(3, 1, 64)
    time_dim: int = 32
    time_scale: float = 1.0
    n_train: int = bounded(20_000, 1, 10_000_000)
    n_val: int = bounded(2_000, 1, 10_000_000)
    modes: int = bounded(8, 1, 10_000)
    radius: float = 1.0
    std: float = 0.15
    data_seed: int = bounded(0, 0, 2**62)  # evaluation seeds data_seed + 1
    n_eval: int = bounded(2_000, 1, 10_000_000)
    eval_sampler: str = "ddim"
    eval_steps: int = bounded(50, 1, 100_000)

    def __post_init__(self):
        check_bounds(self, "model")
        if self.time_dim < 2 or self.time_dim % 2 or self.time_dim > 4096:
            raise ConfigError(
                f"model.time_dim must be an even number in 2..4096, got {self.time_dim}."
            )
        check_choice("eval_sampler", self.eval_sampler, SAMPLERS)
        if not (self.std > 0 and self.radius >= 0 and self.time_scale > 0):
            raise ConfigError(
                "model.std and model.time_scale must be positive, model.radius not negative."
            )


def build_network(config: ToyConfig, diffusion=None) -> MLP:
    return MLP(2, config.hidden, config.depth, config.time_dim, config.time_scale)


def _ring(config: ToyConfig):
    return toy.ring(config.modes, config.radius, config.std)


def read_points(path: Path) -> Tensor:
    """(N, 2) float points from the first two columns of a .csv (header optional) or .npy."""
    path = check_input(path)
    kind = path.suffix.lower()
    if kind not in (".npy", ".csv"):
        raise ConfigError(f"toy data must be a .csv or .npy file, got {str(path)!r}.")
    fix = "give a .csv of numbers or a .npy array of shape (N, 2)"
    with reading(path, "--data", "a .npy array" if kind == ".npy" else "a CSV of numbers", fix):
        if kind == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            arr = np.genfromtxt(path, delimiter=",", dtype=np.float64, invalid_raise=True)
            if arr.ndim == 2 and np.isnan(arr[0]).all():  # a header row
                arr = arr[1:]
    arr = np.asarray(arr)
    if arr.dtype.kind not in "fiu":
        raise DataError(
            f"{str(path)!r} holds {arr.dtype} values; give real numbers (float or int)."
        )
    if arr.ndim != 2 or arr.shape[1] < 2 or arr.shape[0] < 2:
        raise DataError(
            f"{str(path)!r} must hold at least 2 rows of 2 numeric columns, got shape {arr.shape}."
        )
    arr = arr[:, :2].astype(np.float32)
    if not np.isfinite(arr).all():
        raise DataError(f"{str(path)!r} contains NaN or inf or non-numeric cells; clean it.")
    return torch.from_numpy(arr)


def load_data(config: ToyConfig, path: Path | None) -> DomainData:
    if path is None:
        g = torch.Generator().manual_seed(config.data_seed)
        gm = _ring(config)
        train, val = gm.sample(config.n_train, g), gm.sample(config.n_val, g)
        return DomainData(TensorDataset(train), TensorDataset(val), {"source": "ring"})
    points = read_points(Path(path))
    n_val = max(1, len(points) // 10)
    g = torch.Generator().manual_seed(config.data_seed)
    perm = torch.randperm(len(points), generator=g)
    val, train = points[perm[:n_val]], points[perm[n_val:]]
    return DomainData(TensorDataset(train), TensorDataset(val), {"source": str(path)})


def generate(
    net,
    schedule,
    n: int,
    *,
    config: ToyConfig,
    settings: dict,
    sampler: str,
    steps: int | None,
    prediction: str,
    generator=None,
    options=None,
) -> Tensor:
    return sample(
        net,
        (n, 2),
        schedule,
        sampler=sampler,
        steps=steps,
        prediction=prediction,
        generator=generator,
        device=next(net.parameters()).device,
    )


def evaluate(
    net,
    schedule,
    data: DomainData,
    *,
    config: ToyConfig,
    settings: dict,
    prediction: str,
    generator=None,
    options: EvaluateOptions | None = None,
) -> dict[str, float]:
    """Sliced W1 of ``n_eval`` samples (``--num-samples``) against the mixture or held-out data.

    The reference sets are drawn on the CPU from a generator seeded by ``data_seed``.
    """
    if options is not None:
        config = options.onto(
            config, sampler="eval_sampler", steps="eval_steps", num_samples="n_eval"
        )
    n = config.n_eval
    x = generate(
        net,
        schedule,
        n,
        config=config,
        settings=settings,
        sampler=config.eval_sampler,
        steps=config.eval_steps,
        prediction=prediction,
        generator=generator,
    ).cpu()
    out: dict[str, float] = {}
    g = torch.Generator().manual_seed(config.data_seed + 1)  # CPU, whatever the net is on
    # the data evaluated against: the run's, or the --data given (data.settings says which)
    if data.settings.get("source", "ring") == "ring":
        gm = _ring(config)
        ref, other = gm.sample(n, g), gm.sample(n, g)
        out["mode_tv"] = gm.mode_tv(x)
    else:  # user data: compare with held-out points, subsampled to equal sizes
        val = data.val.tensors[0]
        half = len(val) // 2
        if half < 2:
            raise DataError("evaluation needs at least 4 held-out points; give more data.")
        idx = torch.randint(0, half, (n,), generator=g)
        ref, other = val[:half][idx], val[half : 2 * half][idx]
    out["sliced_wasserstein"] = toy.sliced_wasserstein(x, ref, generator=g)
    out["noise_floor"] = toy.sliced_wasserstein(other, ref, generator=g)
    return out


def save_samples(samples: Tensor, path: Path) -> None:
    save_samples_as(samples, path, ".csv", _save_csv)


def _save_csv(x: Tensor, path: Path) -> None:
    np.savetxt(path, x.numpy(), delimiter=",", header="x,y", comments="")


domain = Domain(
    name="toy",
    config=ToyConfig,
    build_network=build_network,
    load_data=load_data,
    generate=generate,
    evaluate=evaluate,
    save_samples=save_samples,
    description="2-D Gaussian ring with an exact answer; exercises the engine end to end.",
    options={"evaluate": EvaluateOptions},
    bench=bench_cases,
)
