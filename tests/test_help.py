"""`python run.py --help` is a page a newcomer can act on, not Hydra's stock page and a config dump."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import run_cli

STRATEGIES = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "conf" / "strategy").glob("*.yaml"))


@pytest.fixture(scope="module")
def help_page() -> str:
    result = run_cli("--help", timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_help_names_modes_strategies_knobs_outputs_and_examples(help_page: str):
    lines = [ln.strip() for ln in help_page.splitlines()]
    for mode in ("train", "select", "analyze"):
        assert any(ln.startswith(mode + " ") for ln in lines), f"mode {mode} is not described"
    for strategy in STRATEGIES:  # every strategy config, each with its one-line description
        line = next((ln for ln in lines if ln.startswith(strategy + " ")), None)
        assert line is not None and len(line.split()) > 3, f"strategy {strategy} is not described"
    for knob in ("diversity.n=", "diversity.level=", "strategy=", "model=", "data.source=", "eval=", "experiment="):
        assert knob in help_page, knob
    for output in ("subset.jsonl", "selection.json", "metrics.json", "outputs/sweeps/", "analysis/"):
        assert output in help_page, output
    examples = [ln for ln in help_page.splitlines() if ln.strip().startswith("python run.py ")]
    assert len(examples) >= 3
    assert any("mode=analyze" in ln for ln in examples) and any(" -m " in ln for ln in examples)


def test_help_has_no_config_dump_or_stock_page(help_page: str):
    assert "is powered by Hydra" not in help_page
    assert "_target_:" not in help_page  # the resolved-config dump without its comments
    assert len(help_page.splitlines()) < 90
