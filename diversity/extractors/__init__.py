"""Type extractors, one per granularity: text -> `TypeAssignment` (see docs/CONTRACTS.md).

Classes are imported on first access, so importing this package stays cheap and a missing optional
dependency of one extractor never breaks the others.
"""

from __future__ import annotations

import importlib
from typing import Any

_CLASSES = {
    "EmbeddingExtractor": "diversity.extractors.embedding",
    "MacroExtractor": "diversity.extractors.macro",
    "MesoExtractor": "diversity.extractors.meso",
    "MicroExtractor": "diversity.extractors.micro",
}

__all__ = sorted(_CLASSES)


def __getattr__(name: str) -> Any:
    if name not in _CLASSES:
        raise AttributeError(f"module 'diversity.extractors' has no attribute {name!r}")
    return getattr(importlib.import_module(_CLASSES[name]), name)
