"""Model settings: frozen dataclasses, TOML files and `--set key=value` overrides, errors on unknown keys.

Every setting declares its type and its range once, where it is defined, as an annotated type:
``dim: Dim = 64`` with ``Dim = Annotated[int, Range(1, 4096)]``, or ``labels: Annotated[str, Choices(...)]``.
:func:`check` holds a config to those declarations (and runs the config's own ``validate()`` for rules that
tie several settings together); :func:`replace` converts and checks every override, so a value outside its
range is a one-line error naming the key and the range before any work starts. Floats must be finite.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import tomli_w

from itemvec.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

SCHEDULES = ("cosine-restarts", "cosine", "linear", "constant")

# A config: a frozen dataclass of settings (a model's ``Config``, the trainer's ``TrainSettings``).
SettingsT = TypeVar("SettingsT", bound="DataclassInstance")


@dataclass(frozen=True)
class Range:
    """A closed (or, with ``*_open``, open) interval; None is unbounded."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True

    def __str__(self) -> str:
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{'(' if self.low_open or self.low is None else '['}{low}, {high}{')' if self.high_open or self.high is None else ']'}"


@dataclass(frozen=True)
class Choices:
    values: tuple[str, ...]

    def __contains__(self, value: object) -> bool:
        return value in self.values

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


# The settings that several models share, each declared once.
Seed = Annotated[int, Range(0, 2**63 - 1)]
Dim = Annotated[int, Range(1, 4096)]
Epochs = Annotated[int, Range(1, 10_000)]
Rate = Annotated[float, Range(0, 10, low_open=True)]
RateFloor = Annotated[float, Range(0, 1)]  # min_lr_fraction: the last rate as a fraction of the first
Schedule = Annotated[str, Choices(SCHEDULES)]
Regularisation = Annotated[float, Range(0, 100)]
BatchSize = Annotated[int, Range(1, 1 << 24)]
EvalEvery = Annotated[int, Range(0, 1 << 31)]  # steps between validation evaluations; 0: each epoch's end
Threads = Annotated[int, Range(0, 256)]  # 0: all cores
InitStd = Annotated[float, Range(0, 10)]
Negatives = Annotated[int, Range(0, 1000)]
AtLeastOneNegative = Annotated[int, Range(1, 1000)]
Power = Annotated[float, Range(0, 2)]  # sampling ∝ count ** power
Subsample = Annotated[float, Range(0, 1)]
Window = Annotated[int, Range(1, 100)]
WalksPerNode = Annotated[int, Range(1, 1000)]
WalkLength = Annotated[int, Range(2, 10_000)]
WalkBias = Annotated[float, Range(0, 1000, low_open=True)]  # node2vec's p and q
Dropout = Annotated[float, Range(0, 1, high_open=True)]
Margin = Annotated[float, Range(0, 100, low_open=True)]
Optimizer = Annotated[str, Choices(("adagrad", "sgd"))]
Source = Annotated[str, Choices(("walks", "sessions"))]
Score = Annotated[str, Choices(("dot", "cosine"))]


@functools.cache
def _specs(config_class: type) -> dict[str, tuple[type, tuple[Range | Choices, ...]]]:
    """name → (type, (Range/Choices rules...)) of every field of a config class."""
    hints = typing.get_type_hints(config_class, include_extras=True)
    specs = {}
    for f in dataclasses.fields(config_class):
        hint = hints[f.name]
        rules: tuple[Range | Choices, ...] = ()
        if typing.get_origin(hint) is Annotated:
            hint, *extras = typing.get_args(hint)
            rules = tuple(e for e in extras if isinstance(e, Range | Choices))
        specs[f.name] = (hint, rules)
    return specs


def field_types(config_class: type) -> dict[str, type]:
    return {name: kind for name, (kind, _) in _specs(config_class).items()}


def _convert(name: str, text: str, kind: type) -> object:
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}: expected true or false, got {text!r}")
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected {kind.__name__}, got {text!r}") from None


def _block(kind: object) -> bool:
    """A nested block of settings (the trainer's ``train``), itself a frozen dataclass of settings."""
    return isinstance(kind, type) and dataclasses.is_dataclass(kind)


def setting_names(config_class: type) -> set[str]:
    """Every key a config class takes: its own fields, the fields of its blocks by their own name (``epochs``)
    and dotted (``train.epochs``)."""
    names: set[str] = set()
    for name, kind in field_types(config_class).items():
        if _block(kind):
            inner = setting_names(kind)
            names |= inner | {f"{name}.{key}" for key in inner}
        else:
            names.add(name)
    return names


def check(config: DataclassInstance, *, source: str | None = None) -> None:
    """Hold every field of ``config`` (and of its blocks) to its declared type and range, then to the config's
    ``validate()``."""
    source = source or f"settings for {type(config).__qualname__.split('.')[0]}"
    config_class: type = type(config)  # `type`: mypy takes no type[X] as Hashable (functools.cache)
    for name, (kind, rules) in _specs(config_class).items():
        value = getattr(config, name)
        if _block(kind):
            check(value, source=source)
            continue
        if kind is float and isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{source}: {name}={value!r} is not a finite number")
        for rule in rules:
            if value not in rule:
                if isinstance(rule, Choices):
                    raise ConfigError(f"{source}: {name}={value!r} is not {rule}")
                shown = f"{value:g}" if isinstance(value, float) else value
                raise ConfigError(f"{source}: {name}={shown} is out of range; expected {rule}")
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate()


def replace(config: SettingsT, values: dict[str, Any], *, source: str = "--set") -> SettingsT:
    """A copy of ``config`` with ``values`` (strings or typed values) applied and checked; unknown keys, values
    of the wrong type and values out of range are errors.

    A block of settings (the trainer's ``train``) takes a table (``train = {epochs = 3}``), dotted keys
    (``train.epochs``) or its keys by their own name (``epochs``): a model's settings read as one flat list,
    as a user types them, while each is declared once, in its block."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a table of settings, got {type(values).__name__}")
    types = field_types(type(config))
    blocks = {name: kind for name, kind in types.items() if _block(kind)}
    changes: dict[str, object] = {}
    inner: dict[str, dict] = {name: {} for name in blocks}
    for key, value in values.items():
        head, dot, rest = key.partition(".")
        if dot and head in blocks:
            inner[head][rest] = value
            continue
        if key in blocks:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {key} expects a table of settings, got {value!r}")
            inner[key].update(value)
            continue
        if key not in types:
            owner = next((name for name, kind in blocks.items() if key in field_types(kind)), None)
            if owner is not None:
                inner[owner][key] = value
                continue
            known = ", ".join(sorted(n for n in setting_names(type(config)) if "." not in n))
            raise ConfigError(f"{source}: unknown setting {key!r} for {type(config).__qualname__}; known: {known}")
        kind = types[key]
        if isinstance(value, str) and kind is not str:
            value = _convert(key, value, kind)
        elif kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"{source}: {key} expects {kind.__name__}, got {value!r}")
        changes[key] = value
    for name, block_values in inner.items():
        if block_values:
            changes[name] = replace(getattr(config, name), block_values, source=source)
    new = dataclasses.replace(config, **changes)
    check(new, source=source)
    return new


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """``["a=1", "mf.dim=32"]`` → ``{"a": "1", "mf.dim": "32"}``."""
    values = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set: expected key=value, got {item!r}")
        values[key.strip()] = value.strip()
    return values


def load_toml(path: str | Path) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, expected a TOML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text, expected a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def settings_for(model: str, file_values: dict[str, Any] | None, set_values: dict[str, str], config_class: type,
                 *, strict_unprefixed: bool = True) -> dict[str, Any]:
    """Select the settings that apply to ``model``: top-level keys of the file, the file's ``[model]`` table,
    then ``--set`` keys without a prefix and ``model.key`` keys (later wins). Unprefixed keys that this model
    does not have are skipped when ``strict_unprefixed`` is False (compare: each model takes what it knows)."""
    known = setting_names(config_class)
    chosen: dict[str, Any] = {}
    for source in (file_values or {}, set_values):
        for key, value in source.items():
            if isinstance(value, dict):
                if key == model:
                    chosen.update(value)
                elif any(name.startswith(f"{key}.") for name in known):  # a block for every model: [train]
                    chosen[key] = {**chosen.get(key, {}), **value}
                continue
            prefix, dot, rest = key.partition(".")
            if dot and key not in known:  # `model.key`; a block's dotted key (`train.epochs`) is the model's own
                if prefix == model:
                    chosen[rest] = value
                continue
            if key in known or strict_unprefixed:
                chosen[key] = value
    return chosen


def seed_of(config: Any) -> int:
    """A run's seed: the trainer's (``train.seed``) for a model the trainer trains, the model's own otherwise."""
    return getattr(config, "train", config).seed


def epochs_of(config: Any) -> int | None:
    """A run's epochs (the trainer's, or gensim's for the word2vec peer); None for a model that does not train."""
    return getattr(getattr(config, "train", config), "epochs", None)


def to_dict(config: DataclassInstance) -> dict[str, Any]:
    return dataclasses.asdict(config)


def toml_text(model: str, config: DataclassInstance) -> str:
    """The resolved settings of a run as written to its ``config.toml``: ``model = NAME`` and a ``[NAME]`` table."""
    return tomli_w.dumps({"model": model, model: to_dict(config)})
