"""Run configuration: one frozen dataclass per component, a TOML file, flags on top.

A run's resolved configuration is ``{"domain": name, "train": ..., "diffusion": ...,
"model": ...}``; TOML files use the same sections (``[train]``, ``[diffusion]``, ``[model]``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import tomllib

from diffkit.errors import ConfigError, MissingFileError, check_choice

SECTIONS = ("train", "diffusion", "model")


@dataclass(frozen=True)
class TrainConfig:
    """How to optimise: steps, batch, AdamW, warm-up + cosine LR, EMA, checkpoints."""

    max_steps: int = 2000
    epochs: int = 0  # > 0 overrides max_steps with epochs * batches per epoch
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    accumulate: int = 1
    precision: str = "32"  # "32" or "bf16" (autocast where the device supports it)
    ema_max_decay: float = 0.999
    checkpoint_every: int = 500
    keep_last: int = 3
    patience: int = 0  # > 0: stop after this many checkpoints without a better validation loss
    log_every: int = 50
    seed: int = 0
    devices: int = 1
    strategy: str = "auto"
    accelerator: str = "auto"

    def __post_init__(self):
        for name in ("max_steps", "batch_size", "accumulate", "checkpoint_every", "keep_last"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1, got {getattr(self, name)}.")
        for name in ("epochs", "warmup_steps", "weight_decay", "grad_clip", "seed", "patience"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must not be negative, got {getattr(self, name)}.")
        if not 0 < self.lr < 10:
            raise ConfigError(f"train.lr must lie in (0, 10), got {self.lr}.")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"train.min_lr_ratio must lie in [0, 1], got {self.min_lr_ratio}.")
        if not 0 <= self.ema_max_decay < 1:
            raise ConfigError(f"train.ema_max_decay must lie in [0, 1), got {self.ema_max_decay}.")
        if self.devices < 1 or self.log_every < 1:
            raise ConfigError("train.devices and train.log_every must be at least 1.")
        check_choice("precision", self.precision, ("32", "bf16"))
        check_choice("strategy", self.strategy, ("auto", "ddp", "ddp_spawn"))
        check_choice("accelerator", self.accelerator, ("auto", "cpu", "gpu", "cuda", "mps"))


@dataclass(frozen=True)
class DiffusionConfig:
    """The process: schedule by name (T for discrete ones), prediction and loss weighting.

    Every parameter of every schedule in :data:`diffkit.schedules.SCHEDULES` has a field;
    :meth:`build_schedule` passes the named schedule the ones it takes. ``beta_start`` and
    ``beta_end`` are the beta range of ``linear`` and ``sigmoid`` (DDPM's 1e-4..0.02; TimeGrad
    uses 1e-4..0.1 over 100 steps); ``s`` the offset of ``cosine`` and ``sqrt`` and ``t_min``
    the first time of the continuous ones (None: each schedule's own default, e.g. 0.008 for
    cosine and 1e-4 for sqrt); ``rescale`` gives ``linear``, ``cosine`` and ``sigmoid`` zero
    terminal SNR; ``beta_min``/``beta_max`` belong to ``vp``/``subvp``, ``sigma_min``/
    ``sigma_max`` to ``ve``.
    """

    schedule: str = "linear"
    T: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    prediction: str = "eps"
    weighting: str = "none"
    s: float | None = None
    max_beta: float = 0.999
    rescale: bool = False
    beta_min: float = 0.1
    beta_max: float = 20.0
    sigma_min: float = 0.01
    sigma_max: float = 50.0
    t_min: float | None = None

    def __post_init__(self):
        from diffkit.losses import WEIGHTINGS
        from diffkit.process import Prediction
        from diffkit.schedules import SCHEDULES

        check_choice("schedule", self.schedule, SCHEDULES)
        if self.T < 2 or self.T > 100_000:
            raise ConfigError(f"diffusion.T must lie in 2..100000, got {self.T}.")
        if not 0 < self.beta_start < self.beta_end < 1:
            raise ConfigError(
                "diffusion.beta_start and beta_end must satisfy 0 < beta_start < beta_end < 1, "
                f"got {self.beta_start} and {self.beta_end}."
            )
        if self.s is not None and not 0 < self.s < 1:
            raise ConfigError(f"diffusion.s must lie in (0, 1), got {self.s}.")
        if not 0 < self.max_beta < 1:
            raise ConfigError(f"diffusion.max_beta must lie in (0, 1), got {self.max_beta}.")
        if self.schedule in ("vp", "subvp", "ve"):
            self.build_schedule()  # the continuous schedules check their own parameters
        Prediction.parse(self.prediction)
        check_choice("weighting", self.weighting, WEIGHTINGS)

    def build_schedule(self):
        """The :class:`~diffkit.schedules.Schedule` this config names."""
        import inspect

        from diffkit.schedules import SCHEDULES, get_schedule

        takes = inspect.signature(SCHEDULES[self.schedule]).parameters
        params = {k: getattr(self, k) for k in takes if hasattr(self, k)}
        return get_schedule(self.schedule, **{k: v for k, v in params.items() if v is not None})


def build(cls: type, values: dict[str, Any], where: str):
    """An instance of config dataclass ``cls`` from ``values``, each checked against its type.

    A field that is itself a config dataclass (a ``[model]`` that holds a network's config)
    is flattened: its fields are keys of the same section (:func:`flat_fields`), given flat
    (``num_cells = 40``, from flags and TOML) or nested as saved (``network = {...}``; flat
    keys win). Fields marked ``metadata={"engine": True}`` are set by the engine, not keys.
    Unknown keys and wrongly typed values raise a one-line ConfigError naming ``where``.
    """
    if not isinstance(values, dict):
        raise ConfigError(f"[{where}] must be a table of key = value pairs.")
    valid = flat_fields(cls)
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if key in _nested_names(cls) and isinstance(value, dict):
            flat = {**_flatten(value), **flat}  # a saved nested table; flat keys win
        else:
            flat[key] = value
    for key in list(flat):
        if key not in valid:  # a nested table may hold engine fields or stale keys
            raise ConfigError(f"unknown key {key!r} in [{where}]; valid keys: {', '.join(valid)}.")
        flat[key] = coerce(flat[key], valid[key], f"{where}.{key}")
    return _construct(cls, flat)


def flat_fields(cls: type) -> dict[str, Any]:
    """Every key of config dataclass ``cls`` with its type, nested configs flattened."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for f in fields(cls):
        if f.metadata.get("engine"):
            continue
        kind = hints[f.name]
        inner = flat_fields(kind) if dataclasses.is_dataclass(kind) else {f.name: kind}
        for key in inner:
            if key in out:
                raise TypeError(f"{cls.__name__} has two keys named {key!r}")
        out.update(inner)
    return out


def _nested_names(cls: type) -> dict[str, type]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls) if dataclasses.is_dataclass(hints[f.name])}


def _flatten(table: dict) -> dict:
    out = {}
    for key, value in table.items():
        out.update(_flatten(value) if isinstance(value, dict) else {key: value})
    return out


def _construct(cls: type, flat: dict[str, Any]):
    """``cls`` from flat values: each nested config from the keys that are its own."""
    kwargs = {}
    for f in fields(cls):
        kind = _nested_names(cls).get(f.name)
        if kind is not None:
            own = {k: v for k, v in flat.items() if k in flat_fields(kind)}
            if own:
                kwargs[f.name] = _construct(kind, own)
        elif f.name in flat and not f.metadata.get("engine"):
            kwargs[f.name] = flat[f.name]
    return cls(**kwargs)


def coerce(value: Any, kind: Any, name: str) -> Any:
    """``value`` as ``kind``: int, float, str, bool, Path, ``tuple[X, ...]`` or ``X | None``.

    Strings from flags are parsed; a tuple takes a TOML array or ``"1,2,4"`` (``""`` is empty).
    """
    if isinstance(kind, str):  # postponed annotations resolve to str in odd cases
        kind = {"int": int, "float": float, "str": str, "bool": bool}.get(kind, str)
    inner = optional_inner(kind)
    if inner is not None:  # None, or the string "none" from a flag, leaves it unset
        if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
            return None
        return coerce(value, inner, name)
    item = tuple_item(kind)
    if item is not None:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",")] if value.strip() else []
        try:
            if not isinstance(value, (list, tuple)):
                raise ConfigError
            return tuple(coerce(v, item, name) for v in value)
        except ConfigError:
            raise ConfigError(
                f"{name} must be a {type_name(kind)} like 1,2,4, got {value!r}."
            ) from None
    try:
        return _scalar(value, kind)
    except (ValueError, TypeError, OverflowError):
        tname = type_name(kind)
        if kind is float and _parses_as_float(value):
            tname = "finite float"  # nan and inf parse but are no setting
        article = "an" if tname[0] in "aeiou" else "a"
        raise ConfigError(f"{name} must be {article} {tname}, got {value!r}.") from None


def _parses_as_float(value: Any) -> bool:
    try:
        float(value)
    except (ValueError, TypeError):
        return False
    return not isinstance(value, bool)


def _scalar(value: Any, kind: Any) -> Any:
    if kind is bool:
        if isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise ValueError
        return value
    if kind is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        result = int(value)
        # one bound for every count so a typo cannot allocate the machine away
        if abs(result) > 10**12:
            raise ValueError
        return result
    if kind is float:
        if isinstance(value, bool):
            raise ValueError
        result = float(value)
        if result != result or result in (float("inf"), float("-inf")):
            raise ValueError
        return result
    if kind is Path:
        if not isinstance(value, (str, Path)):
            raise ValueError
        return Path(value)
    if isinstance(value, (list, tuple, dict)):
        raise ValueError
    return str(value)


def optional_inner(kind: Any) -> Any:
    """``X`` for a ``X | None`` annotation, else None."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(kind)) == 2:
            return args[0]
    return None


def tuple_item(kind: Any) -> Any:
    """``X`` for a ``tuple[X, ...]`` annotation, else None."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return args[0]
    return None


def type_name(kind: Any) -> str:
    """``int``, ``list of int``, ``int or none``: how help texts and errors name a type."""
    inner = optional_inner(kind)
    if inner is not None:
        return f"{type_name(inner)} or none"
    item = tuple_item(kind)
    if item is not None:
        return f"list of {type_name(item)}"
    return {Path: "path"}.get(kind, getattr(kind, "__name__", "str"))


def read_toml(path: Path) -> dict[str, dict]:
    """Read a config file; each top-level table must be one of ``SECTIONS``."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"config file {str(path)!r} does not exist.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{str(path)!r} is not valid TOML ({e}).") from None
    for key, value in data.items():
        if key not in SECTIONS or not isinstance(value, dict):
            raise ConfigError(
                f"unknown section {key!r} in {str(path)!r}; valid sections: {', '.join(SECTIONS)}."
            )
    return data


def parse_sets(pairs: list[str]) -> dict[str, dict[str, str]]:
    """``["train.lr=3e-4", "hidden=64"]`` as sections; a bare key belongs to ``[model]``."""
    out: dict[str, dict[str, str]] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--set takes key=value, got {pair!r}.")
        section, dot, name = key.strip().rpartition(".")
        section = section if dot else "model"
        if section not in SECTIONS:
            raise ConfigError(
                f"unknown section {section!r} in --set; valid: {', '.join(SECTIONS)}."
            )
        out.setdefault(section, {})[name] = value.strip()
    return out


def merge(*layers: dict[str, dict]) -> dict[str, dict]:
    """Later layers override earlier ones key by key."""
    out: dict[str, dict] = {s: {} for s in SECTIONS}
    for layer in layers:
        for section, values in layer.items():
            out.setdefault(section, {}).update(values)
    return out


def as_dict(config) -> dict:
    """A config dataclass as JSON-ready data; fields set by the engine are left out."""
    out = {}
    for f in fields(config):
        if f.metadata.get("engine"):
            continue
        value = getattr(config, f.name)
        out[f.name] = as_dict(value) if dataclasses.is_dataclass(value) else value
    return out


def describe(cls: type) -> list[tuple[str, str, Any]]:
    """``(key, type name, default)`` per key (nested configs flattened), for help texts."""
    return [(key, type_name(kind), _default_of(cls, key)) for key, kind in flat_fields(cls).items()]


def _default_of(cls: type, key: str) -> Any:
    for f in fields(cls):
        if f.name == key:
            return f.default
        kind = _nested_names(cls).get(f.name)
        if kind is not None and key in flat_fields(kind):
            return _default_of(kind, key)
    raise KeyError(key)
