"""A job's run directory: completion marker, resumable checkpoints, atomic result files, clean failure.

A job is *done* when `DONE` exists and holds the hash of the same resolved config (minus keys that do not
change results, such as `resume`); a re-run of a sweep skips it. An unfinished job restarts from
`checkpoints/last.ckpt`. A job that fails on bad input (missing pool, unknown model, infeasible n)
leaves nothing behind: its folder is removed unless it already held a checkpoint of real work.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from diversity.cache import atomic_write, stable_hash

NON_RESULT_KEYS = ("resume", "mode", "sweep_dir")


def config_hash(resolved: dict[str, Any]) -> str:
    """Hash of the resolved config that defines a job's results (paths and resume flags excluded)."""
    keep = {k: v for k, v in resolved.items() if k not in NON_RESULT_KEYS and k != "paths"}
    return stable_hash(keep, length=32)


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    def last_checkpoint(self) -> str | None:
        last = self.checkpoint_dir / "last.ckpt"
        return str(last) if last.exists() else None

    def done_hash(self) -> str | None:
        marker = self.path / "DONE"
        return marker.read_text().strip() if marker.exists() else None

    def is_done(self, cfg_hash: str) -> bool:
        return self.done_hash() == cfg_hash and (self.path / "metrics.json").exists()

    def mark_done(self, cfg_hash: str) -> None:
        with atomic_write(self.path / "DONE") as fh:
            fh.write(cfg_hash + "\n")

    def write_json(self, name: str, payload: Any) -> Path:
        with atomic_write(self.path / name) as fh:
            json.dump(payload, fh, indent=2, sort_keys=True, default=str)
        return self.path / name

    def read_json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text())

    def discard_if_empty_handed(self) -> bool:
        """Remove the folder after a bad-input failure, unless it holds a checkpoint worth resuming."""
        if self.checkpoint_dir.exists() or self.done_hash():
            return False
        shutil.rmtree(self.path, ignore_errors=True)
        return True
