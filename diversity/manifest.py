"""What a run records about its subset: `subset.jsonl` (the manifest) and `selection.json` (every count behind it).

The files a study is audited from are written in one place, atomically (`core.cache.atomic_write`: a reader
never sees half a file). The selection *cache* stores its own codec (`Selection.save` / `Selection.load`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from core.cache import atomic_write
from core.jsonl import dump_json


def describe(obj: Any) -> Any:
    """A stable description of a configured object for cache keys (class + public init attributes)."""
    if hasattr(obj, "cache_key"):
        return obj.cache_key()
    if isinstance(obj, (str, int, float, bool, type(None))):
        return obj
    if isinstance(obj, dict):
        return {k: describe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [describe(v) for v in obj]
    attrs = {k: describe(v) for k, v in vars(obj).items() if not k.startswith("_") and not k.endswith("_")}
    return {"class": f"{type(obj).__module__}.{type(obj).__qualname__}", **attrs}


def jsonable(value: Any) -> Any:
    """`json.dump(default=...)` for numpy values (anything else as its string)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def write_subset(run_dir: Path, pool: Any, indices: Iterable[int]) -> None:
    """`subset.jsonl`: one line per trained sample, with its pool index, id and content hash."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(run_dir / "subset.jsonl") as fh:
        for i in indices:
            fh.write(json.dumps({"pool_index": int(i), "id": pool.ids[i], "sha256": pool.sample_hash(i)}) + "\n")


def update_selection_json(run_dir: Path, blocks: dict[str, Any], fresh: bool = False) -> dict[str, Any]:
    """Merge top-level blocks into `run_dir/selection.json` (`fresh`: replace the record); returns the record."""
    path = run_dir / "selection.json"
    record = {**({} if fresh or not path.exists() else json.loads(path.read_text())), **blocks}
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as fh:
        dump_json(record, fh, indent=1, default=jsonable)
    return record


def write_manifest(run_dir: Path, subset: Any) -> dict[str, Any]:
    """A run's record of its `diversity.select.Subset`: `subset.jsonl` and a fresh `selection.json`."""
    write_subset(run_dir, subset.pool, subset.indices)
    return update_selection_json(run_dir, subset.record, fresh=True)
