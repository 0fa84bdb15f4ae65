"""Typed configs: dataclasses loaded from dicts, YAML files and dotted CLI overrides.

An unknown key is an error (a typo must never silently do nothing), and values are
coerced to the field's declared type, so `train.lr=1e-3` from the command line is a float.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"`{where}` must be a mapping but is {value!r}.")
        return from_dict(annotation, value, prefix=f"{where}.")
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except (ValueError, TypeError) as err:
                errors.append(str(err))
        raise ValueError(f"`{where}` does not fit {annotation}: {'; '.join(errors)}")
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise ValueError(f"`{where}` must be a list but is {value!r}.")
        args = typing.get_args(annotation)
        item_type = args[0] if args else Any
        items = [_coerce(v, item_type, where) for v in value]
        return tuple(items) if origin is tuple else items
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ValueError(f"`{where}` must be a boolean but is {value!r}.")
    if annotation in (int, float):
        if isinstance(value, bool):
            raise ValueError(f"`{where}` must be a number but is {value!r}.")
        try:
            number = annotation(value) if not isinstance(value, str) else annotation(float(value))
        except (TypeError, ValueError):
            raise ValueError(f"`{where}` must be {annotation.__name__} but is {value!r}.") from None
        if annotation is int and float(value) != number:
            raise ValueError(f"`{where}` must be an integer but is {value!r}.")
        return number
    if annotation is str:
        return str(value)
    return value


def from_dict(cls: type[T], data: dict, prefix: str = "") -> T:
    """Build dataclass `cls` from `data`; unknown keys raise ValueError naming them."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(
            f"unknown config key(s) {[prefix + k for k in unknown]}; known keys are {[prefix + k for k in fields]}."
        )
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(value, hints[name], prefix + name) for name, value in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def apply_overrides(cfg: T, overrides: list[str]) -> T:
    """Apply `section.key=value` strings to a dataclass config; returns a new config."""
    data = to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override must look like `section.key=value` but is {item!r}.")
        dotted, raw = item.split("=", 1)
        node = data
        parts = dotted.strip().split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ValueError(f"unknown config section {part!r} in override {item!r}.")
            node = node[part]
        if parts[-1] not in node:
            raise ValueError(f"unknown config key {dotted!r} in override {item!r}; known: {sorted(node)}.")
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else raw
    return from_dict(type(cfg), data)


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Defaults of `cls`, then a YAML file, then dotted overrides."""
    cfg = cls()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"`config` must be an existing YAML file but {str(path)!r} does not exist.")
        data = yaml.safe_load(path.read_text()) or {}
        merged = to_dict(cfg)
        _deep_update(merged, data, cls)
        cfg = from_dict(cls, merged)
    return apply_overrides(cfg, overrides or [])


def _deep_update(base: dict, new: dict, cls: Any, prefix: str = "") -> None:
    if not isinstance(new, dict):
        raise ValueError(f"config `{prefix or 'root'}` must be a mapping but is {new!r}.")
    for key, value in new.items():
        if key not in base:
            raise ValueError(f"unknown config key {prefix + key!r}; known keys are {sorted(base)}.")
        if isinstance(base[key], dict) and isinstance(value, dict):
            _deep_update(base[key], value, cls, prefix=f"{prefix}{key}.")
        else:
            base[key] = value


def save_config(cfg: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
