"""SFTDataModule: pool -> held-out split -> diversity selection -> manifest -> tokenized train/held-out sets.

Selection happens in `prepare_subset` (called by `setup`, or alone by `mode=select`), with the strategy object
injected by Hydra, so the subset a model trains on is always the one its run dir's `subset.jsonl` records.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np

from core.cache import FeatureCache, atomic_write
from core.prompting import render_segments
from diversity.pools import Pool, PoolError, load_pool
from training.tokenization import PadCollator, encode_pair, pack

log = logging.getLogger(__name__)


class SFTDataModule(L.LightningDataModule):
    """Selects a subset of `n` samples at degree `level` and serves it for supervised fine-tuning.

    Args:
        strategy: a `diversity.strategy.Strategy` (extractor + component + selector), injected by Hydra.
        source, max_samples, pool_seed, first_turn_only, max_chars, split: how the pool is loaded
            (see `diversity.pools.load_pool`; `pool_seed` seeds the `max_samples` cap).
        n: subset size. level: degree of diversity in [0, 1]. seed: selection seed.
        tokenizer: model name or path whose tokenizer and chat template are used.
        max_length: tokens per sample after truncation. batch_size: per device.
        heldout_size: pool items set aside for held-out loss, never selectable; fixed by `heldout_seed`.
        heldout_eval_size: how many of them are scored each validation (all when None).
        loss_on: "response" (default: labels only on response tokens) or "all".
        packing: concatenate short training samples up to `max_length` (see `training.tokenization.pack`).
        match_length: the paper's length-control ablation, passed to the strategy (None = off).
        run_dir: where `subset.jsonl` and `selection.json` are written. cache_dir: feature/selection cache.
    """

    def __init__(
        self,
        strategy: Any,
        source: str,
        n: int,
        level: float,
        seed: int,
        tokenizer: str,
        max_length: int = 256,
        batch_size: int = 4,
        heldout_size: int = 64,
        heldout_seed: int = 0,
        heldout_eval_size: int | None = None,
        loss_on: str = "response",
        match_length: dict[str, Any] | None = None,
        run_dir: str = ".",
        cache_dir: str | None = None,
        num_workers: int = 0,
        max_samples: int | None = None,
        pool_seed: int = 0,
        first_turn_only: bool = False,
        max_chars: int | None = None,
        split: str = "train",
        packing: bool = False,
    ) -> None:
        super().__init__()
        self.pool_kwargs = {
            "source": source,
            "max_samples": max_samples,
            "seed": pool_seed,
            "first_turn_only": first_turn_only,
            "max_chars": max_chars,
            "split": split,
        }
        self.strategy = strategy
        self.n, self.level, self.seed = int(n), float(level), int(seed)
        self.tokenizer_name = tokenizer
        self.max_length, self.batch_size, self.num_workers = max_length, batch_size, num_workers
        self.heldout_size, self.heldout_seed, self.heldout_eval_size = (
            heldout_size,
            heldout_seed,
            heldout_eval_size,
        )
        self.loss_on = loss_on
        self.packing = packing
        self.match_length = dict(match_length) if match_length else None
        self.run_dir = Path(run_dir)
        self.cache = FeatureCache(cache_dir)
        self.pool_: Pool | None = None
        self.candidates_: Pool | None = None
        self.selection_: Any = None
        self.subset_indices_: np.ndarray | None = None
        self.heldout_indices_: np.ndarray | None = None

    # ---- selection -------------------------------------------------------------------------------------
    def prepare_subset(self) -> Any:
        """Load the pool, hold out the evaluation split, select, and write the manifest. Idempotent."""
        if self.selection_ is not None:
            return self.selection_
        pool = self.pool_ = load_pool(**self.pool_kwargs)
        log.info("pool %s: %d pairs (%s)", pool.source, len(pool), pool.stats)
        selectable, heldout = pool.split_heldout(self.heldout_size, self.heldout_seed)
        if len(selectable) < self.n:
            raise PoolError(
                f"pool {pool.source} has {len(selectable)} selectable samples "
                f"({len(pool)} minus {self.heldout_size} held out) but n={self.n} were requested"
            )
        candidates = pool.take(selectable)
        key = {
            "pool": candidates.content_hash,
            "strategy": _describe(self.strategy),
            "n": self.n,
            "level": self.level,
            "seed": self.seed,
            "match_length": self.match_length,
        }
        selection = self.cache.get_or_compute(
            "selections",
            key,
            lambda: self.strategy.select(
                candidates,
                n=self.n,
                level=self.level,
                seed=self.seed,
                cache=self.cache,
                match_length=self.match_length,
            ),
            _save_selection,
            _load_selection,
        )
        self.candidates_ = candidates
        self.subset_indices_ = selectable[np.asarray(selection.indices)]
        self.heldout_indices_ = heldout
        self.selection_ = selection
        self._write_manifest(pool, selection)
        return selection

    def _write_manifest(self, pool: Pool, selection: Any) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.run_dir / "subset.jsonl") as fh:
            for i in self.subset_indices_:
                fh.write(json.dumps({"pool_index": int(i), "id": pool.ids[i], "sha256": pool.sample_hash(i)}) + "\n")
        info = {
            "strategy": getattr(self.strategy, "name", type(self.strategy).__name__),
            "component": getattr(self.strategy, "component", None),
            "level": self.level,
            "n": self.n,
            "seed": self.seed,
            "k": selection.k,
            "k_min": selection.k_min,
            "k_max": selection.k_max,
            "n_types": selection.n_types,
            "pool": {
                "source": pool.source,
                "content_hash": pool.content_hash,
                "size": len(pool),
                **pool.stats,
            },
            "heldout": {"size": len(self.heldout_indices_), "seed": self.heldout_seed},
            "info": selection.info,
        }
        with atomic_write(self.run_dir / "selection.json") as fh:
            json.dump(info, fh, indent=1, default=_jsonable)

    # ---- Lightning hooks -------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if getattr(self, "train_set_", None) is not None:
            return
        from core.assets import load_tokenizer

        self.prepare_subset()
        tokenizer = load_tokenizer(self.tokenizer_name)
        segments = render_segments(tokenizer)
        pool = self.pool_

        def encode(indices: np.ndarray) -> list[dict[str, list[int]]]:
            return [
                encode_pair(
                    tokenizer,
                    pool.instructions[i],
                    pool.responses[i],
                    self.max_length,
                    self.loss_on,
                    segments,
                )
                for i in indices
            ]

        heldout = self.heldout_indices_
        if self.heldout_eval_size is not None:
            heldout = heldout[: self.heldout_eval_size]
        self.train_set_ = encode(self.subset_indices_)
        if self.packing:
            self.train_set_ = pack(self.train_set_, self.max_length)
        self.heldout_set_ = encode(heldout)
        self.collate_ = PadCollator(tokenizer.pad_token_id)
        lengths = [len(x["input_ids"]) for x in self.train_set_]
        log.info(
            "tokenized %d train samples (mean %.0f tokens), %d held-out",
            len(lengths),
            np.mean(lengths),
            len(heldout),
        )

    def train_dataloader(self):
        from torch.utils.data import DataLoader

        return DataLoader(
            self.train_set_,
            batch_size=self.batch_size,
            shuffle=True,
            collate_fn=self.collate_,
            num_workers=self.num_workers,
        )

    def val_dataloader(self):
        from torch.utils.data import DataLoader

        return DataLoader(self.heldout_set_, batch_size=self.batch_size, collate_fn=self.collate_, num_workers=0)


def _describe(obj: Any) -> Any:
    """A stable description of a configured object for cache keys (class + public init attributes)."""
    if hasattr(obj, "cache_key"):
        return obj.cache_key()
    if isinstance(obj, (str, int, float, bool, type(None))):
        return obj
    if isinstance(obj, dict):
        return {k: _describe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_describe(v) for v in obj]
    attrs = {k: _describe(v) for k, v in vars(obj).items() if not k.startswith("_") and not k.endswith("_")}
    return {"class": f"{type(obj).__module__}.{type(obj).__qualname__}", **attrs}


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _save_selection(selection: Any, directory: Path) -> None:
    from dataclasses import asdict

    payload = asdict(selection)
    payload["indices"] = [int(i) for i in selection.indices]
    (directory / "selection.json").write_text(json.dumps(payload, default=_jsonable))


def _load_selection(directory: Path) -> Any:
    from diversity.strategy import Selection

    payload = json.loads((directory / "selection.json").read_text())
    payload["indices"] = np.asarray(payload["indices"], dtype=np.int64)
    return Selection(**payload)
