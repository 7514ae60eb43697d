"""Typed configs: nested dataclasses filled from TOML, dotted overrides, TOML output.

Each stage owns its dataclass (FeatureConfig in logmel.py, ModelConfig in model_config.py,
ServeConfig in serve/config.py, ...);
this module only knows how to fill, override and write any of them. Config files hold
values, never object construction.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from asr.jsonsafe import check_bounds
from asr.usererror import UserError

__all__ = [
    "option",
    "ConfigError",
    "apply_overrides",
    "check_choice",
    "check_ranges",
    "from_dict",
    "load_toml",
    "to_dict",
    "to_toml",
]

T = TypeVar("T")


def option(default, help: str, flag: str | None = None, cli: bool = True, **metadata):
    """A dataclass field that is also a command-line flag: its default, its help, its flag
    (`--<field name>` unless `flag` names another; `cli` False: none), and what else the
    CLI's flag builder reads (`nargs`, `parse`). A verb's options are written once, here."""
    metadata |= {"help": help, "flag": flag, "cli": cli}
    return dataclasses.field(default=default, metadata=metadata)


class ConfigError(UserError, ValueError):
    """A config value or key that does not fit the dataclass it is meant for."""


def check_ranges(section: str, config: Any, ranges: dict[str, tuple[float, float]]) -> None:
    """ValueError naming `section.field` for each field of `config` outside its closed
    `ranges[field]` = (low, high); NaN is inside no range. A dataclass's __post_init__
    calls it with its table, so every number is checked where the config is built (from_dict
    turns the ValueError into a ConfigError naming the file or the override)."""
    for name, (low, high) in ranges.items():
        value = getattr(config, name)
        values = value if isinstance(value, list | tuple) else [value]
        if not all(low <= v <= high for v in values):
            raise ValueError(f"{section}.{name} must be >= {low} and <= {high}, got {value!r}")


def check_choice(key: str, value: Any, choices: Any) -> None:
    """ValueError naming `key` unless `value` is one of `choices` (a table's keys too)."""
    if value not in choices:
        raise ValueError(f"{key} must be one of {sorted(choices)}, got {value!r}")


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check `value` against a field's annotation, converting where it is lossless."""
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return from_dict(annotation, value, where)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError("; ".join(errors))
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_type, *_) = typing.get_args(annotation) or (Any,)
        items = [_coerce(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if annotation is Any:
        return value
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if annotation is int and isinstance(value, bool):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if not isinstance(value, annotation):
        raise ConfigError(f"{where}: expected {annotation.__name__}, got {value!r}")
    if isinstance(value, float) and math.isnan(value):  # NaN is never a setting
        raise ConfigError(f"{where}: expected a number, got nan")
    return value


def from_dict(cls: type[T], values: dict, where: str = "config") -> T:
    """Build dataclass `cls` from a (nested) dict; unknown keys and wrong types are errors."""
    types_ = _field_types(cls)
    unknown = set(values) - set(types_)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(types_)}")
    kwargs = {k: _coerce(v, types_[k], f"{where}.{k}") for k, v in values.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from err


def to_dict(config: Any) -> dict:
    """Dataclass -> plain nested dict (None values dropped: TOML has no null)."""
    return _drop_none(dataclasses.asdict(config))


def _drop_none(values: dict) -> dict:
    return {
        k: _drop_none(v) if isinstance(v, dict) else v for k, v in values.items() if v is not None
    }


def _read_toml(path: Path) -> dict:
    try:
        text = path.read_text()
        check_bounds(text, str(path))  # 5,001 digits: a ValueError from tomllib
        return tomllib.loads(text)
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: no such config file") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML ({err})") from err


def load_toml(cls: type[T], path: str | Path, overrides: list[str] = ()) -> T:
    """Read a TOML file into `cls`, then apply `key.sub=value` overrides."""
    path = Path(path)
    config = from_dict(cls, _read_toml(path), where=str(path))
    return apply_overrides(config, overrides)


def load_toml_section(cls: type[T], path: str | Path, section: str) -> T:
    """One [section] of a TOML file into `cls` (defaults where it is absent), the rest
    unread: what a tool that needs one part of an experiment config reads."""
    path = Path(path)
    values = _read_toml(path).get(section, {})
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: [{section}] must be a table, got {values!r}")
    return from_dict(cls, values, where=f"{path}: {section}")


def _parse_value(text: str) -> Any:
    """An override's value: a TOML literal (1, 0.5, true, "x", [1, 2]) or a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(config: T, overrides: list[str]) -> T:
    """Apply dotted `section.key=value` overrides, type-checked like the file itself."""
    values = to_dict(config)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r}: expected key=value")
        *parents, leaf = key.strip().split(".")
        node = values
        cls = type(config)
        for part in parents:
            hints = _field_types(cls)
            if part not in hints or not dataclasses.is_dataclass(hints[part]):
                raise ConfigError(f"override {item!r}: {part!r} is not a section of {cls.__name__}")
            cls = hints[part]
            node = node.setdefault(part, {})
        if leaf not in _field_types(cls):
            known = sorted(_field_types(cls))
            raise ConfigError(f"override {item!r}: unknown key {leaf!r}; known: {known}")
        check_bounds(raw, f"override {key.strip()}")
        node[leaf] = _parse_value(raw.strip())
    return from_dict(type(config), values, where="overrides")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic strings
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {value!r} to TOML")


def to_toml(config: Any) -> str:
    """Dataclass -> TOML text that `load_toml` reads back to an equal config."""
    lines: list[str] = []
    _write_table(to_dict(config), [], lines)
    return "\n".join(lines).strip() + "\n"


def _write_table(values: dict, path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in values.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in values.items() if isinstance(v, dict)}
    if path:
        lines.append(f"\n[{'.'.join(path)}]")
    lines.extend(f"{k} = {_toml_value(v)}" for k, v in scalars.items())
    for key, table in tables.items():
        _write_table(table, [*path, key], lines)
