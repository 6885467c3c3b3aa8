"""A version of the code behind a computation: the hash of the source files of the project code it reaches.

Cache entries (`core.cache.FeatureCache`) are keyed by what they are computed from, and stamped with this
version, so a change to how types, tags, embeddings or selections are computed makes the old entries stale
instead of silently returning results of the old logic (nobody has to remember to bump a constant).

What "reaches" means: starting from the compute callable (and the save/load functions), follow closures,
bound `self`s, `functools.partial`s, the globals a function's code names, the attributes of objects and the
methods of their classes, keeping every module whose file is outside the standard library and installed
packages. The version is the sha256 over those modules' names and sources. It is conservative: an edit to any
reached module (even a comment) invalidates, which costs a recomputation, never a wrong result. O(size of the
reached code) per call (a few ms: the files are read each time, so an edit is never missed).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import sys
import sysconfig
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# The cache machinery itself: its edits are covered by manifests, and including it would flush every entry.
IGNORED_MODULES = {"core.cache", "core.code_version", "core.progress"}
_LIBRARY_DIRS = tuple(
    str(Path(p).resolve()) for key in ("stdlib", "platstdlib", "purelib", "platlib") if (p := sysconfig.get_path(key))
)
_MAX_ITEMS = 64  # containers longer than this are data (texts, ids), not configuration


def _project_file(module: types.ModuleType | None) -> Path | None:
    """The source file of a project module (not stdlib, not an installed package), else None."""
    if module is None or module.__name__ in IGNORED_MODULES:
        return None
    file = getattr(module, "__file__", None)
    if not file or not file.endswith(".py"):
        return None
    path = Path(file).resolve()
    return None if str(path).startswith(_LIBRARY_DIRS) else path


def _library(module: types.ModuleType | None) -> bool:
    """True for the standard library, installed packages and the cache machinery (not followed further)."""
    if module is None or module.__name__ in IGNORED_MODULES:
        return True
    file = getattr(module, "__file__", None)
    return bool(file) and str(Path(file).resolve()).startswith(_LIBRARY_DIRS)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _names(code: types.CodeType) -> Iterable[str]:
    """Global names a code object (and the functions and lambdas nested in it) refers to."""
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


def _contents(cell: types.CellType) -> Any:
    """A closure cell's value; None for a cell not filled yet."""
    try:
        return cell.cell_contents
    except ValueError:
        return None


def reached_modules(*roots: Any, max_depth: int = 12) -> dict[str, Path]:
    """Project modules (name -> file) whose code `roots` can run or hold (see the module docstring)."""
    found: dict[str, Path] = {}
    seen: set[int] = set()

    def module_of(obj: Any) -> types.ModuleType | None:
        return sys.modules.get(getattr(obj, "__module__", None) or "")

    def add(module: types.ModuleType | None) -> bool:
        path = _project_file(module)
        if path is not None:
            found[module.__name__] = path
        return path is not None

    def walk(obj: Any, depth: int) -> None:
        if depth > max_depth or id(obj) in seen or obj is None or isinstance(obj, (str, bytes, int, float, bool)):
            return
        seen.add(id(obj))
        if isinstance(obj, types.ModuleType):
            add(obj)
        elif isinstance(obj, functools.partial):
            for item in (obj.func, *obj.args, *obj.keywords.values()):
                walk(item, depth + 1)
        elif isinstance(obj, types.MethodType):
            walk(obj.__func__, depth + 1)
            walk(obj.__self__, depth + 1)
        elif isinstance(obj, types.FunctionType):
            if not add(inspect.getmodule(obj)) and _library(inspect.getmodule(obj)):
                return
            for cell in obj.__closure__ or ():
                walk(_contents(cell), depth + 1)
            for name in set(_names(obj.__code__)):
                if name in obj.__globals__:
                    walk(obj.__globals__[name], depth + 1)
        elif isinstance(obj, type):
            for cls in obj.__mro__:
                if add(module_of(cls)):
                    for member in vars(cls).values():
                        walk(getattr(member, "__func__", member), depth + 1)
        elif isinstance(obj, (list, tuple, set, frozenset)):
            if len(obj) <= _MAX_ITEMS:
                for item in obj:
                    walk(item, depth + 1)
        elif isinstance(obj, dict):
            if len(obj) <= _MAX_ITEMS:
                for item in obj.values():
                    walk(item, depth + 1)
        elif _project_file(module_of(type(obj))) is not None:
            walk(type(obj), depth + 1)
            for item in getattr(obj, "__dict__", {}).values():
                walk(item, depth + 1)

    for root in roots:
        walk(root, 0)
    return dict(sorted(found.items()))


def code_version(*roots: Any) -> str:
    """16-hex version of the project code `roots` reach (the same code gives the same version on any machine)."""
    digest = hashlib.sha256()
    for name, path in reached_modules(*roots).items():
        digest.update(f"{name}\0{_digest(path)}\0".encode())
    return digest.hexdigest()[:16]
