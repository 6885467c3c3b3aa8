"""notebooks/analysis.ipynb executes on a sweep dir and reproduces the tables and plots."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from helpers import NOTEBOOK, ROOT, cli_env, inject_parameters
from nbclient import NotebookClient

from evaluation.analysis.synthetic import write_synthetic_sweep


def test_notebook_has_a_parameters_cell():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and 'sweep_dir = os.environ.get("SWEEP_DIR")' in params[0].source
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # stored without outputs


@pytest.mark.slow
def test_notebook_reproduces_tables_and_plots(tmp_path):
    sweep = tmp_path / "sweep"
    write_synthetic_sweep(sweep, seeds=(0, 1), noise=0.5)
    out = tmp_path / "out"
    nb = inject_parameters(nbformat.read(NOTEBOOK, as_version=4), sweep_dir=str(sweep), out_dir=str(out), n_boot=200)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream"
    )
    assert "86 finished run(s), 2 incomplete" in text
    assert "R-Micro" in text and "mean_tokens" in text
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 5  # win rate, held-out loss, held-out ppl, heatmap, metric validity
    with open(out / "slopes.csv", newline="", encoding="utf-8") as fh:
        strategies = [row["strategy"] for row in csv.DictReader(fh)]
    assert strategies == ["I-Macro", "I-Meso", "I-Micro", "R-Macro", "R-Meso", "R-Micro", "Random"]
    assert (out / "metric_correlations.png").is_file() and (out / "incomplete.csv").is_file()


def test_notebook_documents_the_command_the_next_test_runs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert "SWEEP_DIR=outputs/sweeps/<name> jupyter execute notebooks/analysis.ipynb" in nb.cells[0].source
    assert "papermill" not in "".join(cell.source for cell in nb.cells)  # not installed by any extra


@pytest.mark.slow
def test_jupyter_execute_with_sweep_dir_as_documented(tmp_path):
    """`SWEEP_DIR=<relative to the repo root> jupyter execute notebooks/analysis.ipynb`, run from the repo root."""
    sweep = tmp_path / "sweep"
    write_synthetic_sweep(sweep, levels=(0.0, 0.5, 1.0), seeds=(0,), broken=False)
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or "jupyter"
    env = {**cli_env(), "SWEEP_DIR": os.path.relpath(sweep, ROOT), "N_BOOT": "50"}
    result = subprocess.run(
        [jupyter, "execute", "notebooks/analysis.ipynb"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = sweep / "analysis"
    with open(out / "slopes.csv", newline="", encoding="utf-8") as fh:
        assert [row["strategy"] for row in csv.DictReader(fh)] == [
            "I-Macro", "I-Meso", "I-Micro", "R-Macro", "R-Meso", "R-Micro", "Random"
        ]  # fmt: skip
    assert (out / "notes.txt").is_file() and list(out.glob("score_vs_degree_*.png"))
    assert not list(NOTEBOOK.parent.glob("*.nbconvert.ipynb"))  # nothing written beside the notebook
