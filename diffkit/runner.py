"""``fit``: train a domain with the Lightning engine (``diffkit.inference`` uses the result)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from diffkit import checkpoint as ckpt
from diffkit.config import DiffusionConfig, TrainConfig, as_dict, build
from diffkit.domain import Domain, DomainData, build_network
from diffkit.errors import ConfigError, TrainingError
from diffkit.lock import run_lock
from diffkit.registry import get_domain
from diffkit.training import DiffusionModule, StepBatches, validation_loss


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; saved as the run directory's ``config.json``."""

    domain: str
    model: Any
    train: TrainConfig = field(default_factory=TrainConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    data: str | None = None

    def to_json(self) -> dict:
        return {
            "domain": self.domain,
            "model": as_dict(self.model),
            "train": as_dict(self.train),
            "diffusion": as_dict(self.diffusion),
            "data": self.data,
        }


def resolve_config(domain: Domain, sections: dict[str, dict], data: str | None = None) -> RunConfig:
    """Build a RunConfig from merged ``{"train": ..., "diffusion": ..., "model": ...}``.

    The sections extend the domain's own defaults (``defaults``, then ``defaults_for`` of
    the run's model values), which extend the dataclass defaults. A key a nested table of
    the sections sets (a saved run's ``network = {...}``, read back by ``--resume``) is
    the run's own: no flat default of the same key overrides it.
    """
    defaults = {name: dict(values) for name, values in domain.defaults.items()}
    defaults["model"] = without_nested(defaults.get("model", {}), sections.get("model", {}))
    if domain.defaults_for is not None:
        model = {**defaults["model"], **sections.get("model", {})}
        for name, values in domain.defaults_for(model).items():
            defaults[name] = {**defaults.get(name, {}), **values}
        defaults["model"] = without_nested(defaults["model"], sections.get("model", {}))
    merged = {
        name: {**defaults.get(name, {}), **sections.get(name, {})}
        for name in ("train", "diffusion", "model")
    }
    return RunConfig(
        domain=domain.name,
        model=build(domain.config, merged["model"], "model"),
        train=build(TrainConfig, merged["train"], "train"),
        diffusion=build(DiffusionConfig, merged["diffusion"], "diffusion"),
        data=data,
    )


def without_nested(defaults: dict, section: dict) -> dict:
    """``defaults`` less the keys that a nested table of ``section`` sets."""
    nested = {key for value in section.values() if isinstance(value, dict) for key in value}
    return {k: v for k, v in defaults.items() if k not in nested}


def _rank() -> int:
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")))


def _say(msg: str) -> None:
    if _rank() == 0:
        print(msg, flush=True)


def total_steps(train: TrainConfig, n_train: int) -> int:
    """Optimizer steps of the run: ``max_steps``, or ``epochs`` passes over the data."""
    if train.epochs > 0:
        per_step = train.batch_size * train.accumulate * train.devices
        return max(1, math.ceil(train.epochs * n_train / per_step))
    return train.max_steps


class _StepData(pl.LightningDataModule):
    def __init__(self, data: DomainData, train: TrainConfig, start: int, total: int):
        super().__init__()
        self.data, self.cfg, self.start, self.total = data, train, start, total

    def train_dataloader(self):
        acc = self.cfg.accumulate
        sampler = StepBatches(
            len(self.data.train),
            self.cfg.batch_size,
            self.cfg.seed,
            self.start * acc,
            self.total * acc,
            self.trainer.global_rank,
            self.trainer.world_size,
        )
        return torch.utils.data.DataLoader(self.data.train, batch_sampler=sampler)


class _Checkpointer(pl.Callback):
    """Saves every ``checkpoint_every`` steps and at the end; tracks the best val loss.

    The validation loss is the domain's validation set's, or the first training batches'
    when it has none. With ``train.patience`` > 0 and a validation set, training stops
    once that many checkpoints in a row did not lower the best validation loss.
    """

    def __init__(self, root: Path, meta: dict, data: DomainData, train: TrainConfig, total: int):
        self.root, self.meta, self.data, self.cfg, self.total = root, meta, data, train, total
        self.saved = -1
        self.best = ckpt.best(root)
        self.stale = 0  # checkpoints since the best one
        self.stopped_at: int | None = None

    def save(self, trainer, module: DiffusionModule) -> None:
        if module.step == self.saved:
            return
        module.check_finite()
        if trainer.is_global_zero:
            val = self.data.val if self.data.val is not None else self.data.train
            loss = validation_loss(module, val, seed=self.cfg.seed, batch_size=self.cfg.batch_size)
            path = ckpt.save_checkpoint(
                self.root,
                module.step,
                {**self.meta, "val_loss": loss},
                module.net.state_dict(),
                module.ema.state_dict(),
                module.training_state(),
            )
            if self.best is None or loss < self.best["val_loss"]:
                ckpt.mark_best(self.root, path, loss)
                self.best = {"name": path.name, "val_loss": loss}
                self.stale = 0
            else:
                self.stale += 1
            ckpt.prune(self.root, self.cfg.keep_last)
        trainer.strategy.barrier()
        self.saved = module.step
        patient = self.cfg.patience > 0 and self.data.val is not None
        stop = trainer.strategy.broadcast(patient and self.stale >= self.cfg.patience)
        if stop and module.step < self.total:
            trainer.should_stop = True
            self.stopped_at = module.step
            _say(
                f"stopped early at step {module.step}: the validation loss has not improved "
                f"for {self.cfg.patience} checkpoints (best: {self.best['name']})."
            )

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if module.step % self.cfg.checkpoint_every == 0 or module.step >= self.total:
            self.save(trainer, module)

    def on_train_end(self, trainer, module):
        self.save(trainer, module)

    def on_exception(self, trainer, module, exception):
        """Ctrl-C or SIGTERM: save the step reached (a NaN loss saves nothing)."""
        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)) and module.step > 0:
            self.save(trainer, module)
            last = ckpt.list_checkpoints(self.root)
            where = str(last[-1]) if last else "no checkpoint"
            _say(f"interrupted at step {module.step}: saved {where}; continue with --resume.")


class _LogLines(pl.Callback):
    """One line per ``log_every`` steps, for ``--quiet`` runs and logs."""

    def __init__(self, every: int, total: int):
        self.every, self.total, self.last, self.t0 = every, total, -1, time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        step = module.step
        if step == self.last or (step % self.every and step != self.total):
            return
        rate = (step - module.start_step) / max(time.perf_counter() - self.t0, 1e-9)
        loss = float(trainer.callback_metrics.get("loss", float("nan")))
        lr = trainer.optimizers[0].param_groups[0]["lr"]
        _say(f"step {step}/{self.total}  loss {loss:.4f}  lr {lr:.2e}  {rate:.1f} it/s")
        self.last = step


class _ProgressBar(pl.callbacks.RichProgressBar):
    """Rich bar with loss, it/s and ETA; the run is one pass of step-indexed batches."""

    def get_metrics(self, trainer, module):
        metrics = super().get_metrics(trainer, module)
        metrics.pop("v_num", None)
        return metrics

    def _get_train_description(self, current_epoch: int) -> str:  # Lightning's hook for it
        return "train"


def _logger(out: Path, start: int):
    from lightning.pytorch.loggers import CSVLogger

    version = "run" if start == 0 else f"resumed-at-{start}"
    loggers = [CSVLogger(out, name="logs", version=version)]
    try:
        import tensorboard  # noqa: F401
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(out, name="tensorboard", version=version))
    except ImportError:
        pass
    return loggers


def _hide_banner() -> None:
    """Lightning's start-up lines ("GPU available: False", tips) are info-level logs."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


def fit(
    domain: Domain | str,
    config: RunConfig | None = None,
    *,
    out: Path | str = "runs/run",
    resume: bool = False,
    quiet: bool = False,
    verbose: bool = False,
    callbacks: tuple = (),
) -> Path:
    """Train ``domain`` with ``config`` and return the run directory.

    Parameters
    ----------
    domain
        A :class:`~diffkit.domain.Domain` or a registered domain name.
    config
        The run configuration; defaults to the domain's defaults.
    out
        The run directory: ``config.json``, ``checkpoints/``, ``logs/``.
    resume
        Continue from the latest checkpoint in ``out`` (same weights as an uninterrupted run).
    quiet
        Log lines instead of a progress bar.
    verbose
        Also show Lightning's banner (devices found, tips) and its model summary.

    A second trainer into the same ``out`` is refused while this one runs (``train.lock``).
    """
    domain = get_domain(domain) if isinstance(domain, str) else domain
    config = config or RunConfig(domain.name, domain.config())
    out = Path(out)
    # rank 0 holds the lock; the other DDP ranks are its own children
    with run_lock(out) if _rank() == 0 else contextlib.nullcontext():
        return _fit(domain, config, out, resume, quiet, verbose, callbacks)


def _fit(domain, config, out: Path, resume, quiet, verbose, callbacks) -> Path:
    root = out / "checkpoints"
    existing = ckpt.list_checkpoints(root)
    if existing and not resume:
        raise ConfigError(
            f"{str(out)!r} already holds checkpoints; pass --resume to continue "
            "it or choose another --out."
        )
    found = ckpt.load_checkpoint(root, domain=domain.name, with_state=True) if existing else None
    _say(f"run directory: {out} (checkpoints in {root}, logs in {out / 'logs'})")
    if not verbose:
        _hide_banner()

    data = domain.load_data(config.model, Path(config.data) if config.data else None)
    if data.config is not None:  # completed from the data: what the network is built from
        config = dataclasses.replace(config, model=data.config)
    cfg = config.train
    total = total_steps(cfg, len(data.train))
    torch.manual_seed(cfg.seed)  # network initialisation
    net = build_network(domain, config.model, config.diffusion)
    if domain.prepare is not None:  # e.g. a latent domain trains its autoencoder first
        data = domain.prepare(net, data, config.model)
    module = DiffusionModule(
        net, config.diffusion, cfg, total, found.state if found else None, loss=domain.loss
    )
    if found:
        try:
            net.load_state_dict(found.model)
            module.ema.load_state_dict(found.ema)
        except RuntimeError:
            raise ckpt.CheckpointError(
                f"the weights in {str(found.path)!r} do not fit the network this config builds; "
                "resume with the run's own [model] settings."
            ) from None
        _say(f"resuming from {found.path} at step {module.step}")
    if module.step >= total:  # the run directory stays as it was
        _say(f"nothing to do: the run already reached step {module.step} of {total}.")
        return out
    if _rank() == 0:  # only now that the configuration built a network its weights fit
        out.mkdir(parents=True, exist_ok=True)
        ckpt.write_json_atomic(out / "config.json", config.to_json())
    schedule = config.diffusion.build_schedule()
    meta = {
        **config.to_json(),
        "schedule": schedule.config(),
        "prediction": config.diffusion.prediction,
        "settings": data.settings,
    }
    progress = [] if quiet else [_ProgressBar()]
    trainer = pl.Trainer(
        max_steps=total - module.step,
        accumulate_grad_batches=cfg.accumulate,
        gradient_clip_val=cfg.grad_clip or None,
        precision="bf16-mixed" if cfg.precision == "bf16" else "32-true",
        devices=cfg.devices,
        strategy=cfg.strategy,
        accelerator=cfg.accelerator,
        logger=_logger(out, module.step),
        log_every_n_steps=cfg.log_every,
        callbacks=[
            *progress,
            _LogLines(cfg.log_every, total) if quiet else pl.Callback(),
            _Checkpointer(root, meta, data, cfg, total),
            *callbacks,
        ],
        enable_checkpointing=False,
        enable_progress_bar=not quiet,
        enable_model_summary=verbose,
        deterministic=True,
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        max_epochs=-1,
    )
    try:
        with warnings.catch_warnings():
            # the EMA copy is in eval mode on purpose; the pytree notice is Lightning's own
            warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")
            # the run is one pass of step-indexed batches: Lightning's epoch-length notice
            warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
            trainer.fit(module, datamodule=_StepData(data, cfg, module.step, total))
    except TrainingError as e:
        last = ckpt.list_checkpoints(root)
        where = f"the last good checkpoint is {last[-1]}" if last else "no checkpoint was saved"
        raise TrainingError(f"{e} {where}.") from None
    except SIGTERMException:  # the checkpointer saved the step reached
        raise TrainingError(
            f"training was stopped by SIGTERM; continue it with --resume --out {out}."
        ) from None
    _say(f"trained {module.step} steps; checkpoints in {root}, logs in {out / 'logs'}")
    return out
