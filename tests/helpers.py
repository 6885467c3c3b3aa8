"""Helpers shared by tests (importable: pyproject puts tests/ on the path)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path = ROOT, timeout: int = 900, env: dict | None = None):
    """Run `python run.py ...` as a user would; returns the CompletedProcess (output captured)."""
    import subprocess
    import sys

    full_env = {**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
