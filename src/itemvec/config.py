"""Model settings: frozen dataclasses, TOML files and `--set key=value` overrides, errors on unknown keys."""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path

import tomli_w

from itemvec.errors import ConfigError


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


def field_types(config_class: type) -> dict[str, type]:
    hints = typing.get_type_hints(config_class)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_class)}


def replace(config, values: dict[str, object], *, source: str = "--set"):
    """A copy of ``config`` with ``values`` (strings or typed values) applied; unknown keys are an error."""
    types = field_types(type(config))
    changes = {}
    for key, value in values.items():
        if key not in types:
            known = ", ".join(sorted(types))
            raise ConfigError(f"{source}: unknown setting {key!r} for {type(config).__name__}; known: {known}")
        kind = types[key]
        if isinstance(value, str) and kind is not str:
            value = _convert(key, value, kind)
        elif kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"{source}: {key} expects {kind.__name__}, got {value!r}")
        changes[key] = value
    new = dataclasses.replace(config, **changes)
    validate = getattr(new, "validate", None)
    if validate is not None:
        validate()
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


def load_toml(path: Path) -> dict:
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def settings_for(model: str, file_values: dict | None, set_values: dict[str, str], config_class: type,
                 *, strict_unprefixed: bool = True) -> dict[str, object]:
    """Select the settings that apply to ``model``: top-level keys of the file, the file's ``[model]`` table,
    then ``--set`` keys without a prefix and ``model.key`` keys (later wins). Unprefixed keys that this model
    does not have are skipped when ``strict_unprefixed`` is False (compare: each model takes what it knows)."""
    known = field_types(config_class)
    chosen: dict[str, object] = {}
    for source in (file_values or {}, set_values):
        for key, value in source.items():
            if isinstance(value, dict):
                if key == model:
                    chosen.update(value)
                continue
            prefix, dot, rest = key.partition(".")
            if dot:
                if prefix == model:
                    chosen[rest] = value
                continue
            if key in known or strict_unprefixed:
                chosen[key] = value
    return chosen


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def write_toml(path: Path, model: str, config) -> None:
    Path(path).write_text(tomli_w.dumps({"model": model, model: to_dict(config)}))


def read_toml_config(path: Path) -> tuple[str, dict]:
    values = load_toml(path)
    model = values["model"]
    return model, values[model]
