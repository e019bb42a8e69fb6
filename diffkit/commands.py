"""The ``train``, ``sample``, ``forecast``, ``impute``, ``evaluate``, ``fit-steps`` and ``bench``
commands: thin wrappers.

:mod:`diffkit.cli` registers them on its app (this module does not import the CLI, so
``python -m diffkit.cli`` sees a single app). No flag of any domain is named here: ``train``
takes the domain's ``[model]`` keys as extra flags (:func:`domain_flags`), and the CLI adds
the flags of the checkpoint's domain to ``sample``, ``forecast`` and ``evaluate``
(``Domain.options``), whose given values arrive in :data:`DOMAIN_OPTIONS`.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from pathlib import Path
from typing import Optional

import typer

from diffkit.config import SEED_MAX
from diffkit.errors import ConfigError
from diffkit.options import markup_safe
from diffkit.paths import check_new_outputs, check_output_dir, check_output_file
from diffkit.reading import check_input, check_run_path, from_run

DEVICE_HELP = "auto (a GPU when present), cpu, cuda, cuda:N or mps."
THREADS_HELP = "CPU threads for torch (default torch's own; 1-2 is fastest on a small CPU)."
SPACING_HELP = (
    "Step placement: trailing (default), leading, linspace, logsnr, karras, or fitted "
    "(the checkpoint's own for this sampler and number of model calls; `diffkit fit-steps`)."
)


def checkpoint_option():
    """The ``--checkpoint`` of every command that reads a run."""
    return typer.Option(..., help="Run directory or checkpoints/step-* folder.")


def seed_option():
    return typer.Option(0, min=0, max=SEED_MAX, help="Random seed.")


def ema_option():
    return typer.Option(True, help="Use the EMA weights (default) or the raw ones.")


def device_option():
    return typer.Option("auto", help=DEVICE_HELP)


def spacing_option():
    return typer.Option(None, help=SPACING_HELP)


def holding(pairs, fn):
    """``fn``, called with the ``--sampler-option`` strings ``pairs`` held for the samplers
    (:func:`diffkit.sampling.given.given_options`; imported on the call, since importing the
    samplers loads torch, which the command line's start does not)."""

    def call(*args, **kwargs):
        from diffkit.sampling.given import given_options

        with given_options(pairs):
            return fn(*args, **kwargs)

    return call


def sampler_option_option():
    return typer.Option(
        None,
        "--sampler-option",
        help="A sampler option as KEY=VALUE, repeatable: step_lr=1e-4 for langevin, eta=0.5 "
        "for ddim, snr=0.1 for pc (an unknown KEY lists the sampler's options).",
    )


# the values of the checkpoint domain's own flags that the user gave (set by DomainCommand)
DOMAIN_OPTIONS: ContextVar[dict] = ContextVar("domain_options", default={})  # noqa: B039


class DomainCommand(typer.core.TyperCommand):
    """A command that also takes the flags of its ``--checkpoint``'s domain.

    Before parsing, the checkpoint named in the arguments is read (its config only) and its
    domain's options for this command (``Domain.options[name]``) become extra parameters;
    their given values are handed to the command in :data:`DOMAIN_OPTIONS`. Without a
    readable checkpoint, ``--help`` says how to list them, and a run reports the checkpoint.
    """

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        self.domain_params = self._domain_params(args, "--help" in args or "-h" in args)
        self._check_flags(ctx, args)
        return super().parse_args(ctx, args)

    def _check_flags(self, ctx, args: list[str]) -> None:
        """A ConfigError naming the domain for a flag neither it nor the command has."""
        domain = getattr(self, "domain_name", None)
        known = {o for p in self.get_params(ctx) for o in (*p.opts, *p.secondary_opts)}
        for arg in args:
            flag = arg.split("=", 1)[0]
            if domain and flag.startswith("--") and flag not in known:
                own = [p.opts[0] for p in self.domain_params] or ["none"]
                raise ConfigError(
                    f"domain {domain!r} does not support {flag} in `diffkit {self.name}`; "
                    f"its own options are: {', '.join(own)}."
                )

    def get_params(self, ctx) -> list:
        params, extra = super().get_params(ctx), getattr(self, "domain_params", [])
        at = len(params) - (params[-1:] and params[-1].name == "help")  # before --help
        return [*params[:at], *extra, *params[at:]]

    def invoke(self, ctx):
        names = [p.name for p in getattr(self, "domain_params", [])]
        given = {name: ctx.params.pop(name, None) for name in names}
        token = DOMAIN_OPTIONS.set({k: v for k, v in given.items() if v is not None})
        try:
            return super().invoke(ctx)
        finally:
            DOMAIN_OPTIONS.reset(token)

    def _domain_params(self, args: list[str], helping: bool) -> list:
        from diffkit.checkpoint import read_config, resolve
        from diffkit.errors import UserError
        from diffkit.options import click_options
        from diffkit.registry import get_domain

        path = value_of(args, "--checkpoint")
        if path is None:
            self.epilog = "Add --checkpoint RUN to list the options of its domain."
            return []
        try:
            domain = get_domain(read_config(resolve(Path(path)))["domain"])
        except UserError as e:
            if helping:
                self.epilog = f"(--checkpoint {path}: {e} So no domain options are listed.)"
                return []
            raise
        self.domain_name = domain.name
        cls = domain.options.get(self.name)
        if cls is None:
            self.epilog = f"The {domain.name!r} domain adds no options to {self.name}."
            return []
        self.epilog = f"The options after --threads are the {domain.name!r} domain's."
        return click_options(cls)


def value_of(args: list[str], name: str) -> str | None:
    """The value of option ``name`` in raw arguments (``--name V`` or ``--name=V``)."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def domain_help(name: str | None) -> str:
    """The help epilog listing the ``--set`` keys of domain ``name`` (or how to see them)."""
    from diffkit.config import DiffusionConfig, TrainConfig, describe, flat_metadata, range_text
    from diffkit.errors import UserError
    from diffkit.registry import available, get_domain

    lines = [
        "Options for --set KEY=VALUE (also the [train], [diffusion] and [model]"
        " tables of --config FILE.toml):"
    ]
    sections: list[tuple[str, type]] = [("train", TrainConfig), ("diffusion", DiffusionConfig)]
    defaults: dict[str, dict] = {}
    if name is None:
        lines.append(
            f"  (add --domain NAME to list its [model] keys; domains: {', '.join(available())})"
        )
    else:
        try:
            domain = get_domain(name)
            sections.append(("model", domain.config))
            defaults = domain.defaults
            lines.insert(1, f"Domain {name}: {domain.description}")
        except UserError as e:
            lines.append(f"  ({e})")
    for section, cls in sections:
        lines.append(f"  [{section}]")
        declared = flat_metadata(cls)
        for key, kind, default in describe(cls):
            default = defaults.get(section, {}).get(key, default)  # the domain's own first
            shown = f"default {default!r}"
            if declared[key].get("min") is not None or declared[key].get("max") is not None:
                shown += f", range {range_text(declared[key])}"
            if section == "model":  # also a flag of its own
                flag = "--" + key.replace("_", "-")
                lines.append(f"    --set {key}=<{kind}> or {flag} <{kind}>  ({shown})")
            else:
                lines.append(f"    --set {section}.{key}=<{kind}>  ({shown})")
    return markup_safe("\n".join(lines))


def domain_flags(args: list[str], config: type) -> dict[str, str | bool]:
    """``--prediction-length 30 --scaling`` as ``[model]`` values of the domain ``config``.

    A flag names a field with dashes for underscores; a flag without a value sets a
    boolean field to true. Unknown flags raise a ConfigError listing the valid ones.
    """
    from diffkit.config import flat_fields

    valid = flat_fields(config)
    out: dict[str, str | bool] = {}
    i = 0
    while i < len(args):
        token = args[i]
        name, eq, value = token.removeprefix("--").partition("=")
        key = name.replace("-", "_")
        if not token.startswith("--") or key not in valid:
            listed = ", ".join("--" + k.replace("_", "-") for k in valid)
            raise ConfigError(
                f"unknown option {token!r} for this domain; core options are in `diffkit train "
                f"--help`, the domain's are: {listed}."
            )
        if not eq:
            following = args[i + 1] if i + 1 < len(args) else None
            if following is None or following.startswith("--"):
                value = "true"  # a bare flag
            else:
                value, i = following, i + 1
        out[key] = value
        i += 1
    return out


def train(
    ctx: typer.Context,
    domain: str = typer.Option(..., help="Domain to train (see `diffkit info`)."),
    data: Optional[Path] = typer.Option(None, help="Data file or folder; default built-in."),
    config: Optional[Path] = typer.Option(
        None,
        help=markup_safe("TOML file with [train], [diffusion], [model] tables; flags override it."),
    ),
    out: Optional[Path] = typer.Option(None, help="Run directory (default runs/DOMAIN)."),
    max_steps: Optional[int] = typer.Option(None, help="Optimizer steps to train for."),
    epochs: Optional[int] = typer.Option(None, help="Passes over the data (overrides steps)."),
    batch_size: Optional[int] = typer.Option(None, help="Examples per device and step."),
    lr: Optional[float] = typer.Option(None, help="Peak learning rate (AdamW)."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last checkpoint."),
    devices: Optional[int] = typer.Option(None, help="Devices (processes) to train on."),
    strategy: Optional[str] = typer.Option(None, help="auto or ddp."),
    seed: Optional[int] = typer.Option(None, help="Random seed (reproducible on one machine)."),
    quiet: bool = typer.Option(False, help="Log lines instead of a progress bar."),
    verbose: bool = typer.Option(False, help="Also show Lightning's banner and model summary."),
    device: Optional[str] = typer.Option(None, help="Accelerator: " + DEVICE_HELP),
    threads: Optional[int] = typer.Option(None, help=THREADS_HELP),
    set_: list[str] = typer.Option(
        [], "--set", help="KEY=VALUE override, repeatable; `--domain NAME --help` lists the keys."
    ),
) -> None:
    """Train a diffusion model for a domain and save checkpoints in the run directory.

    Every key of the domain's model section is also a flag: `--prediction-length 30` is
    `--set prediction_length=30`.
    """
    from diffkit.config import merge, parse_sets, read_toml
    from diffkit.devices import accelerator, set_threads
    from diffkit.registry import get_domain
    from diffkit.runner import fit, resolve_config

    set_threads(threads)
    dom = get_domain(domain)
    out = check_output_dir(out or Path("runs") / domain)
    layers = []
    saved, borne = out / "config.json", None
    if resume and saved.is_file():  # the run's own config first; files and flags extend it
        try:
            previous = json.loads(saved.read_text())
        except ValueError:
            msg = f"{str(saved)!r} is not valid JSON; the run cannot be resumed."
            raise ConfigError(msg) from None
        layers.append({k: previous.get(k, {}) for k in ("train", "diffusion", "model")})
        if data is None and previous.get("data"):
            borne = check_run_path(previous["data"], repr(str(saved)))
    if config is not None:
        layers.append(read_toml(config))
    flags = {
        "max_steps": max_steps,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "devices": devices,
        "strategy": strategy,
        "seed": seed,
        "accelerator": accelerator(device) if device is not None else None,
    }
    layers.append({"train": {k: v for k, v in flags.items() if v is not None}})
    layers.append({"model": domain_flags(ctx.args, dom.config)})
    layers.append(parse_sets(set_))
    if data is not None:
        check_input(data, "--data", folder=True)
    elif borne is not None:
        data = Path(borne)
    # stored resolved, so evaluate, forecast and --resume work from any directory
    with from_run(borne, repr(str(saved))):  # the saved path's content stays out of messages
        run = resolve_config(dom, merge(*layers), str(data.resolve()) if data else None)
        fit(dom, run, out=out, resume=resume, quiet=quiet, verbose=verbose)


def sample(
    checkpoint: Path = checkpoint_option(),
    n: int = typer.Option(64, min=1, max=10_000_000, help="Number of samples."),
    sampler: str = typer.Option("ddim", help="Sampler name."),
    steps: int = typer.Option(50, min=1, max=100_000, help="Number of model evaluations."),
    spacing: Optional[str] = spacing_option(),
    out: Path = typer.Option(Path("samples.csv"), help="Output file (the domain's formats)."),
    seed: int = seed_option(),
    ema: bool = ema_option(),
    device: str = device_option(),
    threads: Optional[int] = typer.Option(None, help=THREADS_HELP),
    sampler_option: Optional[list[str]] = sampler_option_option(),
) -> None:
    """Draw samples from a trained checkpoint and save them.

    The checkpoint's domain adds its own options (`--checkpoint RUN --help` lists them).
    """
    from diffkit.devices import set_threads
    from diffkit.inference import sample_checkpoint

    set_threads(threads)
    check_output_file(out)
    samples = holding(sampler_option, sample_checkpoint)(
        checkpoint,
        n,
        sampler=sampler,
        steps=steps,
        seed=seed,
        ema=ema,
        options=DOMAIN_OPTIONS.get(),
        device=device,
        spacing=spacing,
    )
    from diffkit.checkpoint import describe, load_checkpoint
    from diffkit.registry import get_domain

    get_domain(load_checkpoint(checkpoint).domain).save_samples(samples, out)
    typer.echo(describe(checkpoint))
    typer.echo(f"saved {n} samples to {out}")


def forecast(
    checkpoint: Path = checkpoint_option(),
    data: Optional[Path] = typer.Option(
        None, help="Series to forecast past the end of; default the run's data."
    ),
    sampler: str = typer.Option("ddpm", help="Sampler name (dpmpp_2m for speed)."),
    steps: Optional[int] = typer.Option(
        None, min=1, max=100_000, help="Model calls per step (default: all)."
    ),
    spacing: Optional[str] = spacing_option(),
    out: Path = typer.Option(Path("forecasts.csv"), help="Forecast table (.csv or .parquet)."),
    seed: int = seed_option(),
    overwrite: bool = typer.Option(False, help="Replace --out and its chart if they exist."),
    ema: bool = ema_option(),
    device: str = device_option(),
    threads: Optional[int] = typer.Option(None, help=THREADS_HELP),
    sampler_option: Optional[list[str]] = sampler_option_option(),
) -> None:
    """Forecast the horizon after the data with a checkpoint that forecasts: table + chart.

    The checkpoint's domain adds its own options (`--checkpoint RUN --help` lists them).
    """
    from diffkit.checkpoint import describe
    from diffkit.devices import set_threads
    from diffkit.inference import forecast_checkpoint

    set_threads(threads)
    check_output_file(out)
    check_new_outputs([out, out.with_suffix(".png")], overwrite)  # the table and its chart
    if data is not None:
        check_input(data, "--data", folder=True)
    written = holding(sampler_option, forecast_checkpoint)(
        checkpoint,
        out,
        data,
        sampler=sampler,
        steps=steps,
        seed=seed,
        ema=ema,
        options=DOMAIN_OPTIONS.get(),
        device=device,
        spacing=spacing,
    )
    typer.echo(describe(checkpoint))
    for path in written:
        typer.echo(f"saved {path}")


def impute(
    checkpoint: Path = checkpoint_option(),
    data: Path = typer.Option(..., help="Table with missing values (empty cells) to fill."),
    out: Path = typer.Option(Path("filled.csv"), help="Filled table (.csv or .parquet)."),
    sampler: str = typer.Option("ddpm", help="Sampler name (dpmpp_2m for speed)."),
    steps: Optional[int] = typer.Option(
        None, min=1, max=100_000, help="Model calls per drawn step (default: all)."
    ),
    seed: int = seed_option(),
    overwrite: bool = typer.Option(False, help="Replace --out and its chart if they exist."),
    ema: bool = ema_option(),
    device: str = device_option(),
    threads: Optional[int] = typer.Option(None, help=THREADS_HELP),
    sampler_option: Optional[list[str]] = sampler_option_option(),
) -> None:
    """Sample the missing values of a table, given everything observed: table + chart.

    The checkpoint's domain adds its own options (`--checkpoint RUN --help` lists them).
    """
    from diffkit.checkpoint import describe
    from diffkit.devices import set_threads
    from diffkit.inference import impute_checkpoint

    set_threads(threads)
    check_output_file(out)
    check_input(data, "--data")
    if out.resolve() == data.resolve():
        raise ConfigError("--out names the --data file; write the filled table elsewhere.")
    check_new_outputs([out, out.with_suffix(".png")], overwrite)
    written = holding(sampler_option, impute_checkpoint)(
        checkpoint,
        data,
        out,
        sampler=sampler,
        steps=steps,
        seed=seed,
        ema=ema,
        options=DOMAIN_OPTIONS.get(),
        device=device,
    )
    typer.echo(describe(checkpoint))
    for path in written:
        typer.echo(f"saved {path}")


def evaluate(
    checkpoint: Path = checkpoint_option(),
    data: Optional[Path] = typer.Option(None, help="Data to compare with; default the run's."),
    out: Optional[Path] = typer.Option(None, help="Metrics JSON (default RUN/metrics.json)."),
    spacing: Optional[str] = spacing_option(),
    seed: int = seed_option(),
    ema: bool = ema_option(),
    device: str = device_option(),
    threads: Optional[int] = typer.Option(None, help=THREADS_HELP),
    sampler_option: Optional[list[str]] = sampler_option_option(),
) -> None:
    """Compute the domain's metrics for a checkpoint; print them and save them as JSON.

    The checkpoint's domain adds its own options, such as the sampler, its steps and the
    number of samples where it samples (`--checkpoint RUN --help` lists them).
    """
    from diffkit.checkpoint import describe, resolve
    from diffkit.devices import set_threads
    from diffkit.inference import evaluate_checkpoint, write_metrics

    set_threads(threads)
    if data is not None:
        check_input(data, "--data", folder=True)
    # checked before the work: the run's own metrics.json by default
    path = check_output_file(out or resolve(checkpoint).parent.parent / "metrics.json")
    metrics = holding(sampler_option, evaluate_checkpoint)(
        checkpoint,
        data,
        seed=seed,
        ema=ema,
        options=DOMAIN_OPTIONS.get(),
        device=device,
        spacing=spacing,
    )
    typer.echo(describe(checkpoint))
    for key, value in metrics.items():
        typer.echo(f"{key}: {value:.6g}" if isinstance(value, float) else f"{key}: {value}")
    write_metrics(metrics, path)
    typer.echo(f"saved {path}")


def fit_steps(
    checkpoint: Path = checkpoint_option(),
    sampler: str = typer.Option("dpmpp_2m", help="Deterministic sampler to fit the steps of."),
    nfe: int = typer.Option(10, help="Model calls per sample the steps may spend."),
    n: int = typer.Option(1024, help="Calibration samples (the domain's own generate)."),
    reference_steps: int = typer.Option(500, help="Steps of the reference solve."),
    max_evals: Optional[int] = typer.Option(None, help="Sampling runs the search may spend."),
    seed: int = typer.Option(0, help="Random seed of the calibration batch."),
    ema: bool = ema_option(),
    device: str = device_option(),
    threads: Optional[int] = typer.Option(None, help=THREADS_HELP),
) -> None:
    """Fit a sampler's step schedule to a checkpoint and store it there for --spacing fitted.

    The steps are placed where a calibration batch comes closest to a many-step reference
    from the same noise (diffkit.sampling.fit_steps); the checkpoint's config.json is
    rewritten atomically, its weights are not touched.
    """
    from diffkit.devices import set_threads
    from diffkit.errors import check_choice
    from diffkit.fitted import fit_checkpoint
    from diffkit.sampling import SAMPLERS

    set_threads(threads)
    check_choice("sampler", sampler, SAMPLERS)
    if not 1 <= nfe <= 1000:
        raise ConfigError(f"--nfe must lie in 1..1000, got {nfe}.")
    if max_evals is not None and not 1 <= max_evals <= 100_000:
        raise ConfigError(f"--max-evals must lie in 1..100000, got {max_evals}.")
    path, result = fit_checkpoint(
        checkpoint,
        sampler=sampler,
        nfe=nfe,
        n=n,
        reference_steps=reference_steps,
        seed=seed,
        ema=ema,
        max_evals=max_evals,
        device=device,
    )
    best = min(result.fixed, key=result.fixed.get)
    typer.echo(
        f"fitted {len(result.times)} steps of {sampler} ({result.nfe} model calls) in "
        f"{result.seconds:.1f} s: distance to the reference {result.error:.4g}, best fixed "
        f"spacing {best} {result.fixed[best]:.4g}"
    )
    typer.echo(f"times: {', '.join(f'{t:.2f}' for t in result.times)}")
    typer.echo(f"saved in {path}; use it with --spacing fitted --sampler {sampler} --steps {nfe}")


def bench(
    suite: str = typer.Option("smoke", help="smoke (minutes), quick (under 20 min) or full."),
    domains: Optional[str] = typer.Option(
        None, help="Comma-separated domains to run, e.g. toy,images; default all with cases."
    ),
    samplers: str = typer.Option(
        "ddpm,ddim,heun,dpmpp_2m,unipc", help="Comma-separated samplers to compare."
    ),
    nfe: str = typer.Option("5,10,20,50", help="Comma-separated budgets of network calls."),
    data_dir: Optional[Path] = typer.Option(
        None, help="Folder of the real data sets (MNIST, Exchange, ETTh1); default built-ins."
    ),
    out: Path = typer.Option(Path("report"), help="Folder for report.md, report.json, PNGs."),
    seed: int = typer.Option(0, min=0, max=SEED_MAX, help="Random seed of every case."),
    fresh: bool = typer.Option(False, help="Rerun every case instead of reusing --out's cache."),
    report_only: bool = typer.Option(
        False, help="Write the report of the cases --out has cached; run none (e.g. mid-run)."
    ),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
    threads: Optional[int] = typer.Option(None, help=THREADS_HELP),
) -> None:
    """Benchmark every domain's samplers against NFE beside the reference implementations.

    Writes report.md (each domain's metric against network calls per sampler, wall
    time, machine, versions, seeds), report.json and PNG figures into --out. Each
    case is cached in --out/cases, so an interrupted run resumes where it stopped.
    """
    from diffkit.bench import CALLS, Context
    from diffkit.bench import bench as run_bench
    from diffkit.devices import resolve_device, set_threads
    from diffkit.errors import check_choice
    from diffkit.sampling import SAMPLERS

    if fresh and report_only:
        raise ConfigError("--fresh reruns every case and --report-only runs none; pass one.")
    set_threads(threads)
    names = _csv(samplers, "samplers")
    for name in names:
        check_choice("sampler", name, SAMPLERS)
        check_choice("sampler for the bench (one with a call count)", name, CALLS)
    try:
        budgets = tuple(sorted({int(n) for n in _csv(nfe, "nfe")}))
    except ValueError:
        raise ConfigError(
            f"--nfe must be whole numbers separated by commas, got {nfe!r}."
        ) from None
    if budgets[0] < 1 or budgets[-1] > 1000:
        raise ConfigError(f"--nfe budgets must lie in 1..1000, got {nfe!r}.")
    if data_dir is not None and not check_input(data_dir, "--data-dir", folder=True).is_dir():
        raise ConfigError(f"--data-dir {str(data_dir)!r} is a file; pass the folder holding it.")
    context = Context(
        suite=suite,
        samplers=tuple(names),
        nfes=budgets,
        data_dir=data_dir,
        device=str(resolve_device(device)),
        seed=seed,
    )
    run_bench(
        context,
        out,
        _csv(domains, "domains") if domains else None,
        fresh=fresh,
        report_only=report_only,
        command=[
            f"--suite {suite}",
            *([f"--domains {domains}"] if domains else []),
            f"--samplers {','.join(names)} --nfe {','.join(map(str, budgets))}",
            *([f"--data-dir {data_dir}"] if data_dir else []),
            f"--seed {seed} --device {context.device} --out {out}",
            *(["--report-only"] if report_only else []),
        ],
        echo=typer.echo,
    )


def _csv(value: str, flag: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise ConfigError(f"--{flag.replace('_', '-')} needs at least one name; got {value!r}.")
    return items
