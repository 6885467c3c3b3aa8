"""What a job sends to W&B, read back from the offline run file: each value once, in its one place."""

from __future__ import annotations

import json
import struct
import time
from collections import Counter
from pathlib import Path

import lightning as L
import pytest
import torch
from helpers import TINY_LORA

from training import tracking
from training.module import SFTModule
from training.tokenization import PadCollator, encode_pair

_BLOCK = 32768  # the .wandb file is a LevelDB-style log: 32 KiB blocks of chunks with a 7-byte header


def read_wandb_records(path: Path) -> list:
    """Every `Record` protobuf of an offline `run-*.wandb` file (chunk checksums are not verified)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    records, payload, pos = [], b"", 7
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7]) if left >= 7 else (0, 0, 0)
        if left < 7 or (kind == 0 and length == 0):  # block padding
            pos += left
            continue
        payload += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST chunk: a record is complete
            record = pb.Record()
            record.ParseFromString(payload)
            records.append(record)
            payload = b""
    return records


def finished_run_records(path: Path, timeout: float = 60.0) -> list:
    """The records once the run's closing `exit` record is on disk (W&B's writer may lag behind `finish`)."""
    deadline = time.monotonic() + timeout
    while True:
        records = read_wandb_records(path)
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def _updates(records: list, kind: str) -> list[tuple[str, object]]:
    """(key, value) of every config / summary / history update, in file order."""
    out = []
    for record in records:
        which = record.WhichOneof("record_type")
        if which == kind or (kind == "config" and which == "run"):
            container = record.run.config if which == "run" else getattr(record, kind)
            for item in container.item if kind == "history" else container.update:
                key = item.key or "/".join(item.nested_key)
                out.append((key, json.loads(item.value_json)))
    return out


@pytest.mark.slow
def test_wandb_run_holds_each_value_once(tmp_path, tiny_model_dir, tokenizer):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "selection.json").write_text("{}")
    wandb_cfg = {"_target_": "lightning.pytorch.loggers.WandbLogger", "project": "t", "save_dir": str(run_dir)}
    logger = tracking.build_logger(wandb_cfg, run_id="dedup1")
    lora = TINY_LORA
    resolved = {
        "seed": 0,
        "diversity": {"level": 0.5, "n": 24},
        "strategy": {"name": "random"},
        "model": {"name_or_path": str(tiny_model_dir), "lora": lora},
        "hydra": {"run": {"dir": "x"}},
    }
    selection = {"strategy": "random", "component": None, "level": 0.5, "n": 24, "seed": 0, "k": 7, "k_min": 2}
    selection |= {"k_max": 9, "n_types": 11, "pool": {"size": 120}, "info": {"detail": 1}}
    tracking.log_config(logger, resolved)
    tracking.log_selection(logger, run_dir, "random_n24_l0.5_s0", selection, {"subset/response/vendi": 2.5})

    module = SFTModule(str(tiny_model_dir), lora=lora)
    batch = PadCollator(tokenizer.pad_token_id)([encode_pair(tokenizer, "2+2?", "4.", 64)] * 2)
    trainer = L.Trainer(
        max_steps=1,
        accelerator="cpu",
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=False,
        log_every_n_steps=1,
    )
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader([batch], batch_size=None))
    module.save_final(run_dir / "model")
    for folder in ("generations", "verdicts"):
        (run_dir / folder).mkdir()
        (run_dir / folder / "bench.jsonl").write_text('{"id": "0"}\n')
    metrics = {"heldout/loss": 1.5, "eval/pairwise/bench_win_rate": 40.0, "k": 7, "level": 0.5, "n": 24}
    tracking.log_final(logger, metrics, {"bench": [{"id": "0", "prompt": "p"}]}, run_dir)
    tracking.finish(logger)

    (run_file,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    records = finished_run_records(run_file)
    config = _updates(records, "config")
    counts = Counter(key for key, _ in config if not key.startswith("_"))
    assert all(n == 1 for n in counts.values()), counts
    assert {"seed", "diversity", "strategy", "model", "subset", "subset/response/vendi"} <= set(counts)
    assert not {"name_or_path", "lora", "k", "level", "n"} & set(counts)  # no module hparams or design repeats
    subset = dict(config)["subset"]
    assert subset["k"] == 7 and not {"level", "n", "seed", "strategy", "info"} & set(subset)

    history_keys = {key for key, _ in _updates(records, "history")}
    assert "train/loss" in history_keys and any(key.startswith("eval/bench/table/") for key in history_keys)
    assert not {"heldout/loss", "eval/pairwise/bench_win_rate"} & history_keys  # finals are not a history row
    summary = [(k, v) for k, v in _updates(records, "summary") if k in metrics]
    assert sorted(summary) == [("eval/pairwise/bench_win_rate", 40.0), ("heldout/loss", 1.5)]

    artifacts = {r.artifact.type: r.artifact for r in records if r.WhichOneof("record_type") == "artifact"}
    assert {"subset", "evaluation", "model"} <= set(artifacts)
    paths = {entry.path for entry in artifacts["evaluation"].manifest.contents}
    assert paths == {"generations/bench.jsonl", "verdicts/bench.jsonl"}
    assert "adapter_config.json" in {entry.path for entry in artifacts["model"].manifest.contents}
