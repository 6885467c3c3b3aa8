"""Content-addressed, atomic, verified on-disk cache for features (embeddings, types, token counts, subsets).

Keys are hashes of (pool content hash, extractor config, ...), so a second selection on the same pool
recomputes nothing, and every job of a sweep shares one cache. Files are numpy/JSON/safetensors, never pickle.
Writes go to a temp file or folder beside their target and are renamed into place, so a killed job never leaves
a half-written entry. Each entry ends with a `MANIFEST.json` (size and sha256 of every file), checked on every
load: a truncated or edited entry is discarded with a warning and recomputed, never trusted. Temp folders of
killed writers are removed by the next writer of the same namespace.

The cache outlives code: each manifest also records the version of the code that computed the entry
(`core.code_version`: a hash of the project modules the compute, save and load functions reach, found without
any change at the call sites). An entry of another code version, or one written before entries had manifests,
is stale: it is replaced by a fresh computation (logged), never returned.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

MANIFEST = "MANIFEST.json"
STALE_TEMP_SECONDS = 3600  # a temp folder of another machine's writer this old is a leftover (writes take seconds)
_HOST = socket.gethostname().replace("~", "-")


def default_cache_root() -> Path:
    """`$MACRO2MICRO_CACHE`, else `~/.cache/macro2micro`: what `paths.cache_dir` resolves to by default."""
    return Path(os.environ.get("MACRO2MICRO_CACHE", Path.home() / ".cache" / "macro2micro"))


_cache_root: Path | None = None


def use_cache_root(path: str | Path) -> None:
    """Make `path` (a run's `paths.cache_dir`) the root of every cache in this process: features, converted
    models and distilled embedders alike, so one setting moves them all."""
    global _cache_root
    _cache_root = Path(path)


def cache_root() -> Path:
    """The root set by `use_cache_root`, else `default_cache_root()` (library use outside run.py)."""
    return _cache_root if _cache_root is not None else default_cache_root()


def stable_hash(obj: Any, length: int = 16) -> str:
    """SHA-256 of a JSON-serialisable object with sorted keys (stable across runs and machines)."""
    blob = json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask alone must set it to read it)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temp_prefix(name: str) -> str:
    """`.<name>.tmp~<host>~<pid>~`: whoever finds the temp later can tell whether its writer is still alive."""
    return f".{name}.tmp~{_HOST}~{os.getpid()}~"


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Open a temp file beside `path`; rename it over `path` only if the block finishes without error.

    The file gets the permissions of a plain `open` under the user's umask (mkstemp alone would give 0600,
    unreadable to a group sharing the results).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path.name), suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(final: str | Path, replace: bool = False) -> Iterator[Path]:
    """Yield a temp folder beside `final`, filled by the block, then renamed to `final` in one step.

    If `final` appeared meanwhile (a concurrent job of the sweep finished the same entry), theirs is kept
    unless `replace`, in which case the old folder is swapped out and removed. On error nothing is left.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=_temp_prefix(final.name)))
    try:
        tmp.chmod(0o777 & ~_umask())
        yield tmp
        if replace and final.exists():
            old = Path(tempfile.mkdtemp(dir=final.parent, prefix=_temp_prefix(final.name)))
            os.replace(final, old / final.name)
            _rmtree(old)
        try:
            os.replace(tmp, final)
        except OSError:  # final exists and is not empty: another job finished first, keep theirs
            _rmtree(tmp)
    except BaseException:
        _rmtree(tmp)
        raise


def _writer_alive(name: str) -> bool | None:
    """For a temp name made by `_temp_prefix`: whether its writer runs (None: unknown, another host or format)."""
    parts = name.split("~")
    if len(parts) < 4 or parts[-3] != _HOST or not parts[-2].isdigit():
        return None
    try:
        os.kill(int(parts[-2]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def clean_stale_temps(folder: str | Path, max_age: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Remove temp files/folders left in `folder` by killed writers; returns what was removed.

    Only dot-names are temps (entries are hashes). A temp of a dead process on this host goes at once; one
    of another host (or of an older version, without a pid) once it is older than `max_age` seconds.
    """
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    now = time.time()
    for path in folder.iterdir():
        if not path.name.startswith("."):
            continue
        alive = _writer_alive(path.name)
        with contextlib.suppress(FileNotFoundError):
            if alive is False or (alive is None and now - path.lstat().st_mtime > max_age):
                _rmtree(path) if path.is_dir() else path.unlink()
                removed.append(path)
    if removed:
        log.info("cache: removed %d temp leftover(s) of killed writers in %s", len(removed), folder)
    return removed


def write_entry_manifest(directory: Path, code: str | None = None) -> None:
    """Record size and sha256 of every file in `directory` and the `code` version (written last, before `DONE`)."""
    files = {
        p.relative_to(directory).as_posix(): {"size": p.stat().st_size, "sha256": file_sha256(p)}
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name not in (MANIFEST, "DONE")
    }
    with atomic_write(directory / MANIFEST) as fh:
        json.dump({"files": files, "code": code}, fh, indent=1, sort_keys=True)


def manifest_code(directory: Path) -> str | None:
    """The code version an entry's manifest records (None: no manifest, or written before versions)."""
    try:
        return json.loads((directory / MANIFEST).read_text()).get("code")
    except (OSError, ValueError, AttributeError):
        return None


def verify_manifest(directory: Path) -> str | None:
    """What is wrong with a cache entry (missing, truncated or changed file), or None if it is intact."""
    try:
        files = json.loads((directory / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"unreadable {MANIFEST} ({type(err).__name__})"
    for name, want in files.items():
        path = directory / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != want["size"]:
            return f"{name} has {path.stat().st_size} bytes, {want['size']} were written"
        if file_sha256(path) != want["sha256"]:
            return f"{name} was changed after it was written (sha256 differs)"
    return None


class FeatureCache:
    """A directory of entries `<namespace>/<key>/`, each complete once its `DONE` marker exists."""

    def __init__(self, root: str | Path | None = None, enabled: bool = True) -> None:
        self.root = Path(root) if root is not None else cache_root()
        self.enabled = enabled

    def entry(self, namespace: str, key_obj: Any) -> Path:
        return self.root / namespace / stable_hash(key_obj)

    def fresh(self, namespace: str, key_obj: Any, code: str) -> Path | None:
        """The entry's folder if it is complete and of code version `code`, else None: for readers that map an
        entry's files directly (memory-mapped embeddings) instead of calling `get_or_compute(..., code=code)`."""
        final = self.entry(namespace, key_obj)
        return final if self.enabled and (final / "DONE").exists() and manifest_code(final) == code else None

    def get_or_compute(
        self,
        namespace: str,
        key_obj: Any,
        compute: Callable[[], T],
        save: Callable[[T, Path], None],
        load: Callable[[Path], T],
        code: str | None = None,
    ) -> T:
        """Return the cached value for `key_obj`, computing and storing it on a miss.

        A hit is checked against its manifest and must load; otherwise it is discarded (with a warning naming
        the entry and what is wrong) and recomputed. A hit of another code version (`code`, by default
        `core.code_version.code_version(compute, save, load)`) or without a manifest is stale: recomputed and
        replaced. The entry is filled in a temp directory and renamed into place, so concurrent jobs of a sweep
        either see a complete entry or none.
        """
        if not self.enabled:
            return compute()
        if code is None:
            from core.code_version import code_version

            code = code_version(compute, save, load)
        final = self.entry(namespace, key_obj)
        if (final / "DONE").exists():
            value = self._load_verified(final, load, code)
            if value is not None:
                return value[0]
        clean_stale_temps(final.parent)
        value = compute()
        with atomic_dir(final) as tmp:
            save(value, tmp)
            (tmp / "key.json").write_text(json.dumps(key_obj, sort_keys=True, default=str, indent=1))
            write_entry_manifest(tmp, code)
            (tmp / "DONE").write_text("ok\n")
        return value

    def _load_verified(self, final: Path, load: Callable[[Path], T], code: str) -> tuple[T] | None:
        """(value,) of an intact entry of this code version; None after discarding a stale or corrupt one."""
        if not (final / MANIFEST).exists():
            log.info("cache entry %s predates manifests and code versions: stale, recomputing it", final)
            discard(final)
            return None
        if (written := manifest_code(final)) != code:
            log.info("cache entry %s was computed by other code (%s, now %s): recomputing it", final, written, code)
            discard(final)
            return None
        problem = verify_manifest(final)
        if problem is None:
            try:
                return (load(final),)
            except Exception as err:  # any way a damaged file fails to parse: BadZipFile, JSONDecodeError, ...
                problem = f"does not load ({type(err).__name__}: {str(err)[:200]})"
        log.warning("cache entry %s is corrupt (%s): discarding it and recomputing", final, problem)
        discard(final)
        return None


def discard(entry: Path) -> None:
    """Remove a cache entry: renamed aside first, so no reader sees it half-deleted."""
    aside = entry.parent / f"{_temp_prefix(entry.name)}discard"
    try:
        os.replace(entry, aside)
    except OSError:  # already gone: a concurrent job discarded it first
        return
    _rmtree(aside)


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
