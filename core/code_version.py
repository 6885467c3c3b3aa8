"""A version of the code behind a computation: the hash of the source files of the project code it reaches.

Cache entries (`core.cache.FeatureCache`) are keyed by what they are computed from, and stamped with this
version, so a change to how types, tags, embeddings or selections are computed makes the old entries stale
instead of silently returning results of the old logic (nobody has to remember to bump a constant).

What "reaches" means: starting from the compute callable (and the save/load functions), follow closures,
bound `self`s, `functools.partial`s, the globals a function's code names, what a function imports inside its body
(`from core.generate import generate` in a function: the module and the imported names, read from the function's
bytecode, nested functions included; a project module not imported yet is imported then, as the function would),
the attributes of objects and the methods of their classes, keeping every module whose file is outside the
standard library and installed packages (those are never imported here). The version is the sha256 over those
modules' names and sources. It is conservative: an edit to any reached module (even a comment) invalidates,
which costs a recomputation, never a wrong result. O(size of the reached code) per call (a few ms: the files
are read each time, so an edit is never missed).
"""

from __future__ import annotations

import dis
import functools
import hashlib
import importlib
import importlib.util
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


def _in_library(file: str | Path) -> bool:
    """True for a file of the standard library or an installed package."""
    return str(Path(file).resolve()).startswith(_LIBRARY_DIRS)


def _project_file(module: types.ModuleType | None) -> Path | None:
    """The source file of a project module (not stdlib, not an installed package), else None."""
    if module is None or module.__name__ in IGNORED_MODULES:
        return None
    file = getattr(module, "__file__", None)
    if not file or not file.endswith(".py"):
        return None
    return None if _in_library(file) else Path(file).resolve()


def _library(module: types.ModuleType | None) -> bool:
    """True for the standard library, installed packages and the cache machinery (not followed further)."""
    if module is None or module.__name__ in IGNORED_MODULES:
        return True
    file = getattr(module, "__file__", None)
    return bool(file) and _in_library(file)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _names(code: types.CodeType) -> Iterable[str]:
    """Global names a code object (and the functions and lambdas nested in it) refers to."""
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


@functools.lru_cache(maxsize=4096)
def _imports(code: types.CodeType) -> frozenset[tuple[int, str, tuple[str, ...]]]:
    """(level, module, imported names) of every import statement in a code object's body (and in the functions
    and lambdas nested in it): `from .x import a, b` is (1, "x", ("a", "b")), `import a.b` is (0, "a.b", ())."""
    found = set()
    previous: list[Any] = [None, None]
    for instruction in dis.get_instructions(code):
        if instruction.opname == "IMPORT_NAME":
            level, fromlist = previous
            found.add(((level if isinstance(level, int) else 0), instruction.argval, tuple(fromlist or ())))
        previous = [previous[1], instruction.argval]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= _imports(const)
    return frozenset(found)


def _import_project(name: str) -> types.ModuleType | None:
    """Project module `name`, imported now if it is not yet (as the function importing it will when it runs);
    None for the standard library, installed packages (never imported here) and a module that fails to import."""
    module = sys.modules.get(name)
    if module is None:
        try:
            spec = importlib.util.find_spec(name.partition(".")[0])  # a top-level lookup imports nothing
        except (ImportError, ValueError):
            return None
        places = [] if spec is None else [spec.origin, *(spec.submodule_search_locations or ())]
        where = next((place for place in places if place and place not in ("built-in", "frozen")), None)
        if not where or _in_library(where):
            return None
        try:
            module = importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the function would fail the same way; nothing of it to version
            return None
    return None if _library(module) else module


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
            for level, name, fromlist in _imports(obj.__code__):
                walk_import(level, name, fromlist, obj.__globals__.get("__package__"), depth + 1)
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

    def walk_import(level: int, name: str, fromlist: tuple[str, ...], package: str | None, depth: int) -> None:
        """An import inside a function body: the module (if it is the project's) and every name taken from it."""
        try:
            name = importlib.util.resolve_name("." * level + name, package) if level else name
        except (ImportError, ValueError):
            return
        module = _import_project(name)
        if module is None:
            return
        add(module)
        for member in fromlist:
            if member == "*":
                continue
            value = getattr(module, member, None)
            if value is None:  # `from package import submodule` before the submodule was imported
                value = _import_project(f"{name}.{member}")
            walk(value, depth)

    for root in roots:
        walk(root, 0)
    return dict(sorted(found.items()))


def code_version(*roots: Any) -> str:
    """16-hex version of the project code `roots` reach (the same code gives the same version on any machine)."""
    digest = hashlib.sha256()
    for name, path in reached_modules(*roots).items():
        digest.update(f"{name}\0{_digest(path)}\0".encode())
    return digest.hexdigest()[:16]
