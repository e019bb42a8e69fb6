"""The ``diffkit`` command line (typer).

Every user error prints one line saying what is wrong and how to fix it and exits with
code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Optional

import typer

from diffkit import commands
from diffkit.config import SEED_MAX
from diffkit.errors import ConfigError, UserError
from diffkit.paths import check_output_file

app = typer.Typer(
    help="Train, sample and evaluate diffusion models for images, time series and text.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.command()
def info() -> None:
    """Print the versions of diffkit and its engines, threads and devices."""
    import torch

    from diffkit.version import __version__

    rows = {"diffkit": __version__, "python": platform.python_version(), "torch": torch.__version__}
    for name in ("lightning", "gluonts", "pytorch_forecasting", "diffusers"):
        rows[name] = _version_of(name)
    rows["threads"] = str(torch.get_num_threads())
    rows["cpu cores"] = str(os.cpu_count())
    rows["cuda"] = (
        ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        if torch.cuda.is_available()
        else "not available"
    )
    rows["mps"] = "available" if torch.backends.mps.is_available() else "not available"
    from diffkit.registry import available

    rows["domains"] = ", ".join(available()) or "none installed"
    width = max(map(len, rows))
    for key, value in rows.items():
        typer.echo(f"{key:<{width}}  {value}")


def _version_of(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    name = {"pytorch_forecasting": "pytorch-forecasting"}.get(module, module)
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


@app.command()
def toy(
    out: Path = typer.Option(Path("toy.png"), help="Where to save the scatter plot (PNG)."),
    sampler: str = typer.Option("ddim", help="Sampler name (see `diffkit info`)."),
    steps: int = typer.Option(50, min=1, max=100_000, help="Number of model evaluations."),
    n: int = typer.Option(5000, min=2, max=1_000_000, help="Number of samples."),
    seed: int = typer.Option(0, min=0, max=SEED_MAX, help="Random seed."),
    threads: Optional[int] = typer.Option(None, help=commands.THREADS_HELP),
) -> None:
    """Sample the 8-mode ring with its exact denoiser and save a scatter plot.

    No training is involved: the mixture's optimal denoiser is known in closed form, so
    what the plot shows is the sampler alone.
    """
    import torch

    from diffkit import sample, schedules
    from diffkit import toy as toy_data
    from diffkit.devices import set_threads

    set_threads(threads)

    if out.suffix.lower() != ".png":
        raise ConfigError(f"--out must name a .png file, got {str(out)!r}.")
    check_output_file(out)
    gm = toy_data.ring()
    schedule = schedules.linear()
    g = torch.Generator().manual_seed(seed)
    x = sample(gm.denoiser(schedule), (n, 2), schedule, sampler=sampler, steps=steps, generator=g)
    ref = gm.sample(n, g)
    sw = toy_data.sliced_wasserstein(x, ref, generator=g)
    floor = toy_data.sliced_wasserstein(gm.sample(n, g), ref, generator=g)
    _scatter(x, ref, out, f"{sampler}, {steps} steps: SW1 {sw:.4f} (noise floor {floor:.4f})")
    typer.echo(
        f"sliced Wasserstein-1 {sw:.4f}, noise floor {floor:.4f}, mode TV {gm.mode_tv(x):.4f}"
    )
    typer.echo(f"saved {out}")


def _scatter(x, ref, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(ref[:, 0], ref[:, 1], s=2, alpha=0.3, label="exact samples")
    ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.3, label="diffkit samples")
    ax.set_title(title, fontsize=9)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=5)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning user errors into one line and exit code 2.

    A user error is a :class:`~diffkit.errors.UserError` or a usage error of click (an
    unknown flag, a value that is no number or out of an option's range); both print
    ``error: <one sentence>`` and exit with code 2. Anything else is a bug and keeps its
    traceback.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        command = typer.main.get_command(app)
        if argv[:1] == ["train"] and ("--help" in argv or "-h" in argv):
            # --help is eager, so the domain's options are added before click parses
            command.commands["train"].epilog = commands.domain_help(
                commands.value_of(argv, "--domain")
            )
        code = command.main(args=argv, prog_name="diffkit", standalone_mode=False)
    except _usage_error() as e:
        if debug:
            raise
        if not e.format_message():  # no command given: typer has printed the help
            sys.exit(2)
        _fail(usage_line(e))
    except typer.Abort as e:  # click's stand-in for an EOFError: a bug, shown as one
        raise (e.__cause__ or e) from None
    except UserError as e:
        if debug:
            raise
        _fail(str(e))
    sys.exit(code if isinstance(code, int) else 0)


def _usage_error() -> type:
    try:  # typer 0.2x carries its own copy of click
        from typer._click.exceptions import UsageError
    except ImportError:
        from click.exceptions import UsageError
    return UsageError


def usage_line(error) -> str:
    """A click usage error as one sentence ending in where to read the command's flags."""
    message = error.format_message().rstrip(".")
    where = error.ctx.command_path if error.ctx is not None else "diffkit"
    return f"{message}; see `{where} --help`."


def _fail(message: str) -> None:
    # one line whatever the message quotes (a path or value with a line break in it)
    line = message.replace("\r", "\\r").replace("\n", "\\n")
    typer.echo(f"error: {line}", err=True)
    sys.exit(2)


# train takes the domain's [model] keys as extra flags (commands.domain_flags)
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
    commands.train
)
# sample, forecast, impute and evaluate also take the flags of the --checkpoint's domain
for _command in (commands.sample, commands.forecast, commands.impute, commands.evaluate):
    app.command(cls=commands.DomainCommand)(_command)
app.command()(commands.bench)

if __name__ == "__main__":
    main()
