"""select_subset: decontamination, the held-out split by conversation, small pools, the record it writes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from core.cache import FeatureCache
from diversity.manifest import write_manifest
from diversity.pools import PoolError, load_pool
from diversity.select import HeldoutSpec, Subset, select_subset
from diversity.strategy import Strategy
from evaluation.benchmarks import load_benchmark


def alpaca_file(path: Path, n: int, extra: list[dict] | None = None) -> Path:
    rows = [{"instruction": f"Question number {i} about topic {i % 7}?", "output": f"Answer {i}."} for i in range(n)]
    path.write_text(json.dumps(rows + (extra or [])))
    return path


def select(tmp_path: Path, source: Path, n: int, heldout_size: int = 64, turns: str = "first", **kwargs) -> Subset:
    """The random strategy's subset of `source`, its record written to tmp_path/run as run.py writes it."""
    subset = select_subset(
        load_pool(str(source), turns=turns),
        Strategy("random"),
        n=n,
        level=1.0,
        seed=0,
        heldout=HeldoutSpec(size=heldout_size),
        cache=FeatureCache(tmp_path / "cache"),
        **kwargs,
    )
    write_manifest(tmp_path / "run", subset)
    return subset


def test_a_pool_that_decontamination_empties_says_so(tmp_path):
    """It said "held-out size 0 must be in [0, 0)" after a warning that the pool had 0 pairs."""
    mtbench = [item.prompt for item in load_benchmark("mtbench")]
    source = tmp_path / "copies.json"
    source.write_text(json.dumps([{"instruction": prompt, "output": "copied"} for prompt in mtbench[:20]]))
    with pytest.raises(PoolError, match=r"all 20 pairs copy a benchmark prompt \(mtbench 20\)"):
        select(tmp_path, source, n=5, heldout_size=2, exclude_prompts={"mtbench": mtbench})


def test_small_pool_holds_out_less_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        subset = select(tmp_path, alpaca_file(tmp_path / "p.json", 250), n=200, heldout_size=64)
    assert len(subset.heldout) == 25 and "data.heldout_size=64" in caplog.text
    info = json.loads((tmp_path / "run" / "selection.json").read_text())
    assert info["heldout"]["size"] == 25 and info["heldout"]["requested"] == 64
    assert info["heldout"]["by"] == "conversation" and "k_target" in info


def test_too_small_pool_names_both_knobs(tmp_path):
    with pytest.raises(PoolError, match=r"diversity.n=200: lower diversity.n or data.heldout_size"):
        select(tmp_path, alpaca_file(tmp_path / "p.json", 150), n=200, heldout_size=64)


def test_benchmark_prompts_leave_the_pool_before_split_and_selection(tmp_path):
    mtbench = [item.prompt for item in load_benchmark("mtbench")]
    copies = [
        {"instruction": mtbench[0], "output": "copied"},
        {"instruction": mtbench[1].upper() + "!!", "output": "copied, re-cased"},
    ]
    source = alpaca_file(tmp_path / "p.json", 100, copies)
    subset = select(tmp_path, source, n=80, heldout_size=8, exclude_prompts={"mtbench": mtbench, "other": []})
    used = set(subset.indices) | set(subset.heldout)
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
    subset = select(tmp_path, path, n=20, heldout_size=6, turns="all")  # later turns too: their "continue"s
    pool = subset.pool
    held = {pool.groups[i] for i in subset.heldout}
    assert not held & {pool.groups[i] for i in subset.indices}
    info = json.loads((tmp_path / "run" / "selection.json").read_text())
    assert info["heldout"]["removed_duplicates"] == 40 - 3  # every other conversation's "continue" turn
    assert all(pool.instructions[i] != "continue" for i in subset.indices)


def test_same_request_same_subset_byte_for_byte(tmp_path):
    source = alpaca_file(tmp_path / "p.json", 300)
    first = select(tmp_path / "a", source, n=50, heldout_size=10)
    second = select(tmp_path / "b", source, n=50, heldout_size=10)
    assert (tmp_path / "a/run/subset.jsonl").read_bytes() == (tmp_path / "b/run/subset.jsonl").read_bytes()
    assert list(first.indices) == list(second.indices)
    instructions, _ = first.pairs("train")
    assert instructions == [first.pool.instructions[i] for i in first.indices]
