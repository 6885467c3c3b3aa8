"""The datamodule's pool handling: decontamination, the held-out split by conversation, small pools, one n knob."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from diversity.pools import PoolError
from diversity.strategy import Strategy
from evaluation.benchmarks import load_benchmark
from training.datamodule import SFTDataModule

ROOT = Path(__file__).resolve().parents[2]


def alpaca_file(path: Path, n: int, extra: list[dict] | None = None) -> Path:
    rows = [{"instruction": f"Question number {i} about topic {i % 7}?", "output": f"Answer {i}."} for i in range(n)]
    path.write_text(json.dumps(rows + (extra or [])))
    return path


def datamodule(tmp_path: Path, source: Path, n: int, **kwargs) -> SFTDataModule:
    return SFTDataModule(
        strategy=Strategy("random"),
        source=str(source),
        n=n,
        level=1.0,
        seed=0,
        tokenizer="unused",
        run_dir=str(tmp_path / "run"),
        cache_dir=str(tmp_path / "cache"),
        **kwargs,
    )


def test_small_pool_holds_out_less_with_a_warning(tmp_path, caplog):
    dm = datamodule(tmp_path, alpaca_file(tmp_path / "p.json", 250), n=200, heldout_size=64)
    with caplog.at_level(logging.WARNING):
        dm.prepare_subset()
    assert len(dm.heldout_indices_) == 25 and "data.heldout_size=64" in caplog.text
    info = json.loads((tmp_path / "run" / "selection.json").read_text())
    assert info["heldout"]["size"] == 25 and info["heldout"]["requested"] == 64
    assert info["heldout"]["by"] == "conversation" and "k_target" in info


def test_too_small_pool_names_both_knobs(tmp_path):
    dm = datamodule(tmp_path, alpaca_file(tmp_path / "p.json", 150), n=200, heldout_size=64)
    with pytest.raises(PoolError, match=r"diversity.n=200: lower diversity.n or data.heldout_size"):
        dm.prepare_subset()


def test_benchmark_prompts_leave_the_pool_before_split_and_selection(tmp_path):
    mtbench = [item.prompt for item in load_benchmark("mtbench")]
    copies = [
        {"instruction": mtbench[0], "output": "copied"},
        {"instruction": mtbench[1].upper() + "!!", "output": "copied, re-cased"},
    ]
    source = alpaca_file(tmp_path / "p.json", 100, copies)
    dm = datamodule(tmp_path, source, n=80, heldout_size=8, exclude_prompts={"mtbench": mtbench, "other": []})
    dm.prepare_subset()
    used = set(dm.subset_indices_) | set(dm.heldout_indices_)
    assert not used & {100, 101}  # the two copies are neither selectable nor held out
    info = json.loads((tmp_path / "run" / "selection.json").read_text())
    assert info["decontamination"]["mtbench"] == 2 and info["decontamination"]["total"] == 2
    assert info["decontamination"]["other"] == 0 and "13-grams" in info["decontamination"]["method"]
    assert info["pool"]["decontaminated"] == 2 and info["pool"]["size"] == 102


def test_heldout_is_by_conversation_without_repeated_instructions(tmp_path):
    rows = []
    for c in range(40):
        turns = [("human", f"Start {c}"), ("gpt", f"Reply {c}"), ("human", "continue"), ("gpt", f"More {c}")]
        rows.append({"id": f"c{c}", "conversations": [{"from": r, "value": v} for r, v in turns]})
    path = tmp_path / "conv.json"
    path.write_text(json.dumps(rows))
    dm = datamodule(tmp_path, path, n=20, heldout_size=6)
    dm.prepare_subset()
    pool = dm.pool_
    held = {pool.groups[i] for i in dm.heldout_indices_}
    assert not held & {pool.groups[i] for i in dm.subset_indices_}
    info = json.loads((tmp_path / "run" / "selection.json").read_text())
    assert info["heldout"]["removed_duplicates"] == 40 - 3  # every other conversation's "continue" turn
    assert all(pool.instructions[i] != "continue" for i in dm.subset_indices_)


@pytest.mark.slow
def test_data_n_is_not_a_second_knob(tmp_path):
    cmd = [sys.executable, "run.py", "mode=select", "data.n=7", "logger=none", "eval=none"]
    cmd += [f"paths.root={tmp_path / 'out'}", f"paths.cache_dir={tmp_path / 'cache'}"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "data.n=7 differs from diversity.n=200: set only diversity.n" in done.stderr + done.stdout
