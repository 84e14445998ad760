"""What every model config shares: JSON-safe to_dict / from_dict (tuples travel as lists) and named presets."""
from __future__ import annotations

from dataclasses import asdict, fields, is_dataclass, replace
from typing import Mapping


class ConfigIO:
    """Mixin for frozen dataclass configs. Subclasses name their presets by overriding `presets()`
    (a mapping of name -> config instance or dict of field values)."""

    @classmethod
    def presets(cls) -> Mapping:
        return {}

    @classmethod
    def preset(cls, name: str, **overrides):
        table = cls.presets()
        if name not in table:
            raise KeyError(f"unknown {cls.__name__} preset {name!r}; known: {', '.join(table)}")
        base = table[name]
        return replace(base, **overrides) if is_dataclass(base) else cls(**{**base, **overrides})

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping):
        tuples = {f.name for f in fields(cls) if str(f.type).startswith("tuple")}
        return cls(**{k: tuple(v) if k in tuples else v for k, v in d.items() if k in {f.name for f in fields(cls)}})
