"""Numeric pool columns: per-row numbers (a quality score, a reward) read beside the texts, one value per pair.

A column is named by a row field, or by a dotted path into nested objects ("scores.reward" reads
`{"scores": {"reward": 4.5}}`; a field whose own name holds the dot wins). Every pair of a row gets the row's
value, and the value travels with its pair through every filter (`Pool.take`), so `pool.columns[name][i]` always
belongs to pair i. Only rows that yield a kept pair are read: a row dropped as empty, too long or a duplicate is
never asked for its score.

Bad input raises one `PoolError` naming the file, the row and the column: a column no row has so far (with the
fields the row does have), a missing or null value, a value that is not a number (text, a boolean, a list), or a
value that is not finite (NaN, Infinity).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np

from diversity.pools.base import PoolError


class ColumnReader:
    """Reads the requested numeric columns of each record and collects them in pool order."""

    def __init__(self, source: str, names: Sequence[str] | str) -> None:
        names = [names] if isinstance(names, str) else list(names)
        bad = [name for name in names if not isinstance(name, str) or not name.strip()]
        if bad:
            raise PoolError(f"{source}: column names must be non-empty strings, got {bad}")
        if len(set(names)) != len(names):
            raise PoolError(f"{source}: column names repeat: {names}")
        self.source = source
        self.names = names
        self.values: dict[str, list[float]] = {name: [] for name in names}
        self._found: set[str] = set()  # columns some earlier row had: a later row without one is a gap, not a typo

    def read(self, record: Any, where: str) -> list[float]:
        """The record's value of every requested column, validated (`where` names the row in errors)."""
        return [self._value(record, name, where) for name in self.names]

    def append(self, values: list[float]) -> None:
        for name, value in zip(self.names, values, strict=True):
            self.values[name].append(value)

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(values, dtype=np.float64) for name, values in self.values.items()}

    def _value(self, record: Any, name: str, where: str) -> float:
        value = lookup(record, name)
        if isinstance(value, _Missing):
            if name in self._found:
                raise self._error(where, f"column '{name}' is missing in this row{value.detail}")
            raise self._error(where, f"the pool has no column '{name}'{value.detail}")
        self._found.add(name)
        if value is None:
            raise self._error(where, f"column '{name}' is null (every kept row needs a number)")
        if isinstance(value, bool) or not isinstance(value, Real):
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            raise self._error(where, f"column '{name}' is not a number ({type(value).__name__}: {shown})")
        number = float(value)
        if not math.isfinite(number):
            raise self._error(where, f"column '{name}' is not finite ({number})")
        return number

    def _error(self, where: str, message: str) -> PoolError:
        return PoolError(f"{self.source}: {where}: {message}")


class _Missing:
    """A lookup that found nothing; `detail` says which fields were there instead."""

    def __init__(self, detail: str) -> None:
        self.detail = detail


def lookup(record: Any, name: str) -> Any:
    """The value at `name` in `record`: the field itself, else a dotted path through nested objects."""
    if not isinstance(record, Mapping):
        return _Missing(f" (the row is not an object: {type(record).__name__})")
    if name in record:
        return record[name]
    node: Any = record
    parts = name.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, Mapping):
            inside = ".".join(parts[:depth])
            return _Missing(f" ('{inside}' is not an object: {type(node).__name__})")
        if part not in node:
            inside = ".".join(parts[:depth])
            fields = sorted(str(key) for key in node)
            shown = fields[:20] + (["..."] if len(fields) > 20 else [])
            return _Missing(f" ({f'fields of {inside!r}' if inside else 'fields of the row'}: {shown})")
        node = node[part]
    return node
