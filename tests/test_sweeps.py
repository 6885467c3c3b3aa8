"""Real Hydra multiruns: one W&B run per job, launchers, resuming a killed sweep, and the analysis of a sweep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import NOTEBOOK, ROOT, cli_env, inject_parameters, run_cli

pytestmark = pytest.mark.slow


def job_dirs(sweep: Path) -> list[Path]:
    return sorted(p.parent for p in sweep.rglob("config.yaml") if p.parent.name.startswith("seed"))


def test_multirun_gives_one_wandb_run_per_job_with_its_subset_artifact(tmp_path, tiny_overrides):
    result = run_cli("-m", "strategy=micro_response,random", *tiny_overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = job_dirs(tmp_path / "outputs" / "sweeps" / "dev")
    assert [j.relative_to(tmp_path / "outputs" / "sweeps" / "dev").parts[0] for j in jobs] == [
        "micro_response",
        "random",
    ]
    run_ids = set()
    for job in jobs:
        assert (job / "DONE").exists()
        runs = list((job / "wandb").glob("offline-run-*/run-*.wandb"))
        assert len(runs) == 1, f"{job}: {runs}"  # no run leaked across jobs of one process
        run_ids.add(runs[0].stem)
        data = runs[0].read_bytes()
        assert f"subset-{job.parts[-4]}".encode() in data  # the manifest artifact is recorded in the run
    assert len(run_ids) == 2


def test_joblib_sweep_then_rerun_skips_finished_jobs(tmp_path, tiny_overrides):
    args = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "diversity.level=0,1", "strategy=micro_response"]
    first = run_cli(*args, *tiny_overrides, "logger=none")
    assert first.returncode == 0, first.stderr[-3000:]
    jobs = job_dirs(tmp_path / "outputs" / "sweeps" / "dev")
    assert len(jobs) == 2
    stamps = {j: (j / "DONE").stat().st_mtime_ns for j in jobs}
    ks = [json.loads((j / "selection.json").read_text())["k"] for j in jobs]
    assert ks[0] < ks[1]  # level 0 covers fewer types than level 1
    second = run_cli(*args, *tiny_overrides, "logger=none")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "already done" in second.stdout + second.stderr
    assert stamps == {j: (j / "DONE").stat().st_mtime_ns for j in jobs}


def test_killed_job_resumes_from_its_checkpoint_with_the_same_subset(tmp_path, tiny_overrides):
    args = [
        "-m",
        "strategy=micro_response",
        *tiny_overrides,
        "trainer.max_steps=100",  # the kill comes ~0.5 s after the first checkpoint: a few steps of the tiny model
        "trainer.val_check_interval=100",
        "checkpoint_every_n_steps=1",
    ]
    sweep = tmp_path / "outputs" / "sweeps" / "dev"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), *args],
        cwd=ROOT,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and not list(sweep.rglob("last.ckpt")):
        time.sleep(0.05)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    (job,) = job_dirs(sweep)
    assert (job / "checkpoints" / "last.ckpt").exists() and not (job / "DONE").exists()
    subset_before = (job / "subset.jsonl").read_text()

    result = run_cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((job / "metrics.json").read_text())
    assert metrics["train/steps"] == 100
    assert 0 < metrics["train/steps_this_run"] < 100  # resumed, not restarted
    assert (job / "subset.jsonl").read_text() == subset_before
    run_ids = {p.name.rsplit("-", 1)[-1] for p in (job / "wandb").glob("offline-run-*")}
    assert len(run_ids) == 1  # the resumed job continued its W&B run instead of opening a second one


def test_submitit_local_runs_a_two_job_sweep(tmp_path, tiny_overrides):
    result = run_cli(
        "-m", "hydra/launcher=submitit_local", "strategy=micro_response,random", *tiny_overrides, "logger=none"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = job_dirs(tmp_path / "outputs" / "sweeps" / "dev")
    assert len(jobs) == 2 and all((j / "DONE").exists() for j in jobs)


def test_smoke_grid_sweep_then_analysis_produces_the_paper_tables(tmp_path, tiny_overrides):
    result = run_cli("-m", "experiment=smoke_grid", *tiny_overrides, "logger=none")
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "outputs" / "sweeps" / "smoke_grid"
    assert len(job_dirs(sweep)) == 4
    analysis = run_cli("mode=analyze", f"sweep_dir={sweep}", "logger=none", f"paths.root={tmp_path / 'outputs'}")
    assert analysis.returncode == 0, analysis.stderr[-3000:]
    assert [p.name.rsplit("_", 1)[-1] for p in (tmp_path / "outputs" / "runs").iterdir()] == ["analyze"]
    out = sweep / "analysis"
    slopes = (out / "slopes.csv").read_text()
    assert "R-Micro" in slopes and "heldout/loss" in slopes
    assert (out / "metric_correlations.csv").exists()
    assert list(out.glob("*.png"))

    # The notebook rebuilds the same tables from the same real sweep.
    import nbformat
    from nbclient import NotebookClient

    nb_out = tmp_path / "notebook_out"
    nb = inject_parameters(nbformat.read(NOTEBOOK, as_version=4), sweep_dir=str(sweep), out_dir=str(nb_out), n_boot=200)
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    assert (nb_out / "slopes.csv").read_text() == slopes
