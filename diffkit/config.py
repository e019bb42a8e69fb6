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

from diffkit.errors import ConfigError, check_choice
from diffkit.reading import read_bytes

SECTIONS = ("train", "diffusion", "model")
INT_CAP = 10**12  # the bound of an int field that declares none: no typo allocates the machine
SEED_MAX = 2**63 - 1  # torch's generators take 64-bit signed seeds


def bounded(default: Any, low: float | None = None, high: float | None = None, **metadata):
    """A dataclass field whose value must lie in ``low..high`` (None: no bound that side).

    The bound is declared once, here, and checked in one place (:func:`check_value`) when
    a flag, a TOML key or a saved config is read, and by :func:`check_bounds` for a
    dataclass built in code. ``open_high=True`` excludes ``high`` itself (dropout < 1).
    """
    open_high = metadata.pop("open_high", False)
    return dataclasses.field(
        default=default, metadata={"min": low, "max": high, "open_high": open_high, **metadata}
    )


def check_value(value: Any, metadata, name: str) -> Any:
    """``value`` if it lies in the range ``metadata`` declares, else a ConfigError naming it."""
    low, high = metadata.get("min"), metadata.get("max")
    if value is None or isinstance(value, bool) or (low is None and high is None):
        return value
    for item in value if isinstance(value, tuple) else (value,):
        above = high is not None and (item >= high if metadata.get("open_high") else item > high)
        if (low is not None and item < low) or above:
            shown = range_text(metadata)
            raise ConfigError(
                f"{name} must lie in {shown}, got {item}; pass a value in that range."
            )
    return value


def range_text(metadata) -> str:
    """``1..1000``, ``at least 0``, ``[0, 1)``: how messages and help texts show a range."""
    low, high = metadata.get("min"), metadata.get("max")
    if high is None:
        return f"at least {low}"
    if low is None:
        return f"at most {high}"
    if metadata.get("open_high"):
        return f"[{low}, {high})"
    if isinstance(low, int) and isinstance(high, int):
        return f"{low}..{high}"
    return f"[{low}, {high}]"


def check_bounds(obj, section: str | None = None) -> None:
    """Check every field of dataclass ``obj`` against the range it declares (:func:`bounded`).

    Messages name ``section.field`` (``train.batch_size``) or, for command options (no
    section), the field's flag (``--guidance``). Nested config dataclasses are checked too.
    """
    for f in fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            check_bounds(value, section)
        else:
            check_value(value, f.metadata, f"{section}.{f.name}" if section else flag_of(f))


def flag_of(f: dataclasses.Field) -> str:
    """The flag of an options field: ``metadata["flag"]`` or ``--field-name``."""
    return f.metadata.get("flag") or "--" + f.name.rstrip("_").replace("_", "-")


@dataclass(frozen=True)
class TrainConfig:
    """How to optimise: steps, batch, AdamW, warm-up + cosine LR, EMA, checkpoints."""

    max_steps: int = bounded(2000, 1, 10**9)
    epochs: int = bounded(0, 0, 10**6)  # > 0 overrides max_steps with epochs * batches per epoch
    batch_size: int = bounded(256, 1, 2**20)
    lr: float = 1e-3
    weight_decay: float = bounded(0.0, 0.0, 10.0)
    warmup_steps: int = bounded(100, 0, 10**9)
    min_lr_ratio: float = bounded(0.1, 0.0, 1.0)
    grad_clip: float = bounded(1.0, 0.0, 1e6)
    accumulate: int = bounded(1, 1, 10**4)
    precision: str = "32"  # "32" or "bf16" (autocast where the device supports it)
    ema_max_decay: float = bounded(0.999, 0.0, 1.0, open_high=True)
    checkpoint_every: int = bounded(500, 1, 10**9)
    keep_last: int = bounded(3, 1, 10**6)
    patience: int = bounded(
        0, 0, 10**6
    )  # > 0: stop after this many checks without a better val loss
    log_every: int = bounded(50, 1, 10**9)
    seed: int = bounded(0, 0, SEED_MAX)
    devices: int = bounded(1, 1, 4096)
    strategy: str = "auto"
    accelerator: str = "auto"

    def __post_init__(self):
        check_bounds(self, "train")
        if not 0 < self.lr < 10:
            raise ConfigError(f"train.lr must lie in (0, 10), got {self.lr}.")
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
    T: int = bounded(1000, 2, 100_000)
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
        check_bounds(self, "diffusion")
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
    valid, declared = flat_fields(cls), flat_metadata(cls)
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if key in _nested_names(cls) and isinstance(value, dict):
            flat = {**_flatten(value), **flat}  # a saved nested table; flat keys win
        else:
            flat[key] = value
    for key in list(flat):
        if key not in valid:  # a nested table may hold engine fields or stale keys
            raise ConfigError(f"unknown key {key!r} in [{where}]; valid keys: {', '.join(valid)}.")
        flat[key] = coerce(flat[key], valid[key], f"{where}.{key}", declared[key])
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


def flat_metadata(cls: type) -> dict[str, Any]:
    """Every key of config dataclass ``cls`` with its field's metadata (declared bounds)."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for f in fields(cls):
        if not f.metadata.get("engine"):
            kind = hints[f.name]
            out.update(
                flat_metadata(kind) if dataclasses.is_dataclass(kind) else {f.name: f.metadata}
            )
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


def coerce(value: Any, kind: Any, name: str, metadata=None) -> Any:
    """``value`` as ``kind``: int, float, str, bool, Path, ``tuple[X, ...]`` or ``X | None``.

    Strings from flags are parsed; a tuple takes a TOML array or ``"1,2,4"`` (``""`` is empty).
    A number must lie in the range the field's ``metadata`` declares (:func:`bounded`); an
    int of a field that declares none, within +-:data:`INT_CAP`.
    """
    metadata = metadata or {}
    if isinstance(kind, str):  # postponed annotations resolve to str in odd cases
        kind = {"int": int, "float": float, "str": str, "bool": bool}.get(kind, str)
    inner = optional_inner(kind)
    if inner is not None:  # None, or the string "none" from a flag, leaves it unset
        if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
            return None
        return coerce(value, inner, name, metadata)
    item = tuple_item(kind)
    if item is not None:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",")] if value.strip() else []
        try:
            if not isinstance(value, (list, tuple)):
                raise ConfigError
            items = tuple(coerce(v, item, name) for v in value)
        except ConfigError:
            raise ConfigError(
                f"{name} must be a {type_name(kind)} like 1,2,4, got {value!r}."
            ) from None
        return check_value(items, metadata, name)
    try:
        result = _scalar(value, kind)
    except (ValueError, TypeError, OverflowError):
        tname = type_name(kind)
        if kind is float and _parses_as_float(value):
            tname = "finite float"  # nan and inf parse but are no setting
        article = "an" if tname[0] in "aeiou" else "a"
        raise ConfigError(f"{name} must be {article} {tname}, got {value!r}.") from None
    if kind is int and metadata.get("min") is None and metadata.get("max") is None:
        metadata = {"min": -INT_CAP, "max": INT_CAP}
    return check_value(result, metadata, name)


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
        return int(value)
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
    raw = read_bytes(path, "config file")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{str(path)!r} is not valid TOML ({e}); fix the file.") from None
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
