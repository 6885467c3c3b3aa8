"""A job's run directory: completion marker, resumable checkpoints, atomic result files, clean failure.

A job is *done* when `DONE` exists and holds the hash of the same resolved config (minus keys that do not
change results, see `NON_RESULT_KEYS`); a re-run of a sweep skips it. An unfinished job restarts from
`checkpoints/last.ckpt`, if that checkpoint was written under the same config. A job that fails on bad input
(missing pool, unknown model, infeasible n) leaves nothing behind: its folder is removed unless it already
held a checkpoint of real work.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from core.cache import atomic_write, stable_hash

# Keys (dotted) that do not change a job's results: where files go, how it is logged or displayed, resuming.
NON_RESULT_KEYS = (
    "resume",
    "mode",
    "sweep_dir",
    "paths",
    "logger",
    "checkpoint_every_n_steps",
    "data.run_dir",
    "data.cache_dir",
    "data.num_workers",
    "trainer.default_root_dir",
    "trainer.enable_progress_bar",
    "eval.progress",
)


def config_hash(resolved: dict[str, Any]) -> str:
    """Hash of the resolved config minus `NON_RESULT_KEYS` and every `progress` flag: the job's identity.

    Moving the cache, switching the logger or the progress display does not make a finished job stale.
    """

    def strip(node: Any, prefix: str) -> Any:
        if not isinstance(node, dict):
            return node
        return {
            k: strip(v, f"{prefix}{k}.")
            for k, v in node.items()
            if f"{prefix}{k}" not in NON_RESULT_KEYS and k != "progress"
        }

    return stable_hash(strip(resolved, ""), length=32)


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    def resumable_checkpoint(self, cfg_hash: str) -> str | None:
        """`last.ckpt` if it was written under this very config; stale checkpoints of another config are
        removed (resuming them would evaluate weights trained under different settings)."""
        marker = self.checkpoint_dir / "CONFIG_HASH"
        last = self.checkpoint_dir / "last.ckpt"
        if marker.exists() and marker.read_text().strip() == cfg_hash and last.exists():
            return str(last)
        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
        self.checkpoint_dir.mkdir(parents=True)
        with atomic_write(marker) as fh:
            fh.write(cfg_hash + "\n")
        return None

    def done_hash(self) -> str | None:
        marker = self.path / "DONE"
        return marker.read_text().strip() if marker.exists() else None

    def is_done(self, cfg_hash: str) -> bool:
        return self.done_hash() == cfg_hash and (self.path / "metrics.json").exists()

    def mark_done(self, cfg_hash: str) -> None:
        with atomic_write(self.path / "DONE") as fh:
            fh.write(cfg_hash + "\n")

    def run_id(self, cfg_hash: str) -> str:
        """Tracker run id of this job under this config: a resumed job continues its W&B run."""
        return f"{cfg_hash[:12]}-{stable_hash(str(self.path.resolve()), length=8)}"

    def write_text(self, name: str, text: str) -> Path:
        with atomic_write(self.path / name) as fh:
            fh.write(text)
        return self.path / name

    def write_json(self, name: str, payload: Any) -> Path:
        with atomic_write(self.path / name) as fh:
            json.dump(payload, fh, indent=2, sort_keys=True, default=str)
        return self.path / name

    def read_json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text())

    def discard_if_empty_handed(self) -> bool:
        """Remove the folder after a bad-input failure, unless it holds a checkpoint worth resuming."""
        if (self.checkpoint_dir / "last.ckpt").exists() or self.done_hash():
            return False
        shutil.rmtree(self.path, ignore_errors=True)
        return True
