"""Content-addressed, atomic on-disk cache for features (embeddings, types, token counts, subsets).

Keys are hashes of (pool content hash, extractor config, ...), so a second selection on the same pool
recomputes nothing, and every job of a sweep shares one cache. Files are numpy/JSON/safetensors, never pickle.
Writes go to a temp file in the same directory and are renamed into place, so a killed job never leaves a
half-written entry that a later job would trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

T = TypeVar("T")

DEFAULT_CACHE_DIR = Path(os.environ.get("MACRO2MICRO_CACHE", Path.home() / ".cache" / "macro2micro"))


def stable_hash(obj: Any, length: int = 16) -> str:
    """SHA-256 of a JSON-serialisable object with sorted keys (stable across runs and machines)."""
    blob = json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def text_hash(text: str, length: int = 16) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:length]


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Open a temp file beside `path`; rename it over `path` only if the block finishes without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
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
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}."))
    try:
        yield tmp
        if replace and final.exists():
            old = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.old."))
            os.replace(final, old / final.name)
            _rmtree(old)
        try:
            os.replace(tmp, final)
        except OSError:  # final exists and is not empty: another job finished first, keep theirs
            _rmtree(tmp)
    except BaseException:
        _rmtree(tmp)
        raise


class FeatureCache:
    """A directory of entries `<namespace>/<key>/`, each complete once its `DONE` marker exists."""

    def __init__(self, root: str | Path | None = None, enabled: bool = True) -> None:
        self.root = Path(root) if root is not None else DEFAULT_CACHE_DIR
        self.enabled = enabled

    def entry(self, namespace: str, key_obj: Any) -> Path:
        return self.root / namespace / stable_hash(key_obj)

    def get_or_compute(
        self,
        namespace: str,
        key_obj: Any,
        compute: Callable[[], T],
        save: Callable[[T, Path], None],
        load: Callable[[Path], T],
    ) -> T:
        """Return the cached value for `key_obj`, computing and storing it on a miss.

        The entry directory is filled in a temp directory and renamed into place, so concurrent jobs of a
        sweep either see a complete entry or none.
        """
        if not self.enabled:
            return compute()
        final = self.entry(namespace, key_obj)
        if (final / "DONE").exists():
            return load(final)
        value = compute()
        with atomic_dir(final) as tmp:
            save(value, tmp)
            (tmp / "key.json").write_text(json.dumps(key_obj, sort_keys=True, default=str, indent=1))
            (tmp / "DONE").write_text("ok\n")
        return value


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
