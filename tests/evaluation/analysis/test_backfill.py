"""Backfilling subset metrics of a committed run: rows are checked by hash against the rebuilt pool, a run that
cannot be matched is skipped with its reason, and a backfilled file keeps every recorded line byte for byte."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from evaluation.analysis.backfill import backfill_run

RUN = Path(__file__).resolve().parents[3] / "docs/results/factorial/runs/short/random/n48/level1/seed0"
NEW = {f"subset/{c}/{m}" for c in ("instruction", "response") for m in ("novelsum", "facility_coverage")}


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A copy of a committed study-2 run, without its novelsum / facility_coverage keys."""
    out = tmp_path / "run"
    out.mkdir()
    for name in ("config.yaml", "selection.json", "subset.jsonl"):
        shutil.copy(RUN / name, out / name)
    recorded = json.loads((RUN / "subset_metrics.json").read_text())
    text = json.dumps({k: v for k, v in recorded.items() if k not in NEW}, indent=2, sort_keys=True)
    (out / "subset_metrics.json").write_text(text)
    return out


def _fake_pool_matrix(texts, model=None, cache=None, **_):
    """Unit rows seeded by the texts: stands in for the sentence embedder (minutes per pool on 2 cores)."""
    rng = np.random.default_rng(len(texts))
    x = rng.normal(size=(len(texts), 16)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_adds_only_missing_keys_and_keeps_recorded_lines_byte_identical(run, monkeypatch):
    import diversity.metrics.pool_embeddings as pool_embeddings

    monkeypatch.setattr(pool_embeddings, "pool_matrix", _fake_pool_matrix)
    before = (run / "subset_metrics.json").read_text().splitlines()
    result = backfill_run(run)
    assert result.skipped is None and set(result.added) == NEW
    after = (run / "subset_metrics.json").read_text().splitlines()
    assert [line for line in after if not any(f'"{k}"' in line for k in NEW)] == before  # the last key stays last
    assert len(after) == len(before) + len(NEW)
    assert backfill_run(run).added == {}  # nothing left to add: the file is not rewritten


def test_a_row_whose_hash_does_not_match_the_rebuilt_pool_is_refused(run):
    rows = [json.loads(line) for line in (run / "subset.jsonl").read_text().splitlines()]
    rows[5]["sha256"] = "0" * 64
    (run / "subset.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = (run / "subset_metrics.json").read_bytes()
    result = backfill_run(run)
    assert result.skipped == "1 of 48 subset rows' sha256 differ from the rebuilt pool's pairs" and not result.added
    assert (run / "subset_metrics.json").read_bytes() == before


def test_another_pool_or_no_manifest_is_skipped_naming_why(run):
    selection = json.loads((run / "selection.json").read_text())
    selection["pool"]["content_hash"] = "f" * 64
    (run / "selection.json").write_text(json.dumps(selection))
    assert backfill_run(run).skipped.startswith("pool content hash ")
    (run / "subset.jsonl").unlink()
    assert backfill_run(run).skipped.startswith("no subset.jsonl")
