"""SFTDataModule: pool -> held-out split -> diversity selection -> manifest -> tokenized train/held-out sets.

Selection happens in `prepare_subset` (called by `setup`, or alone by `mode=select`), with the strategy object
injected by Hydra, so the subset a model trains on is always the one its run dir's `subset.jsonl` records.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np

from core.cache import FeatureCache
from diversity.pools import Pool, PoolError, load_pool
from training.manifest import describe, load_selection, save_selection, update_selection_json, write_subset
from training.packing import PackedCollator, pack
from training.tokenization import PadCollator, TruncationStats, encode_pairs

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
        heldout_size: pool items set aside for held-out loss (whole conversations), never selectable; fixed by
            `heldout_seed`. At most `heldout_max_fraction` of the pool (a small pool holds out less, with a warning).
        allow_truncated_tail, conversation_id: see `load_pool`.
        decontaminate: {enabled, ngram, min_share}: drop pool items copying a prompt in `exclude_prompts`
            (benchmark name -> prompts, from `evaluation.benchmarks.configured_prompts`) before the split.
        heldout_eval_size: how many of them are scored each validation (all when None).
        loss_on: "response" (default: labels only on response tokens) or "all".
        packing: pack whole training samples into rows of `max_length` tokens, without attention across
            samples (see `training.packing`).
        group_by_length: batch samples of similar length together (less padding; see `training.sampling`).
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
        group_by_length: bool = False,
        heldout_max_fraction: float = 0.1,
        allow_truncated_tail: bool | None = None,
        conversation_id: str = "auto",
        decontaminate: dict[str, Any] | None = None,
        exclude_prompts: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__()
        self.pool_kwargs = {
            "source": source,
            "max_samples": max_samples,
            "seed": pool_seed,
            "first_turn_only": first_turn_only,
            "max_chars": max_chars,
            "split": split,
            "allow_truncated_tail": allow_truncated_tail,
            "conversation_id": conversation_id,
        }
        self.heldout_max_fraction = float(heldout_max_fraction)
        self.decontaminate = {"enabled": True, "ngram": 13, "min_share": 0.5, **(decontaminate or {})}
        self.exclude_prompts = {name: list(prompts) for name, prompts in (exclude_prompts or {}).items()}
        self.decontamination_: dict[str, Any] = {}
        self.heldout_: dict[str, Any] = {}
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
        self.group_by_length = group_by_length
        self.match_length = dict(match_length) if match_length else None
        self.run_dir = Path(run_dir)
        self.cache = FeatureCache(cache_dir)
        self.pool_: Pool | None = None
        self.candidates_: Pool | None = None
        self.selection_: Any = None
        self.subset_indices_: np.ndarray | None = None
        self.heldout_indices_: np.ndarray | None = None
        self.encoded_subset_: tuple[list[dict[str, list[int]]], TruncationStats] | None = None
        self.truncation_: dict[str, Any] | None = None

    # ---- selection -------------------------------------------------------------------------------------
    def prepare_subset(self) -> Any:
        """Load the pool, hold out the evaluation split, select, and write the manifest. Idempotent."""
        if self.selection_ is not None:
            return self.selection_
        pool = self.pool_ = load_pool(**self.pool_kwargs)
        log.info("pool %s: %d pairs (%s)", pool.source, len(pool), pool.stats)
        clean = self._decontaminate(pool)  # indices of `pool` that copy no benchmark prompt
        size = self._heldout_size(len(clean))
        split = pool.take(clean).split_heldout(size, self.heldout_seed)
        selectable, heldout = clean[split.selectable], clean[split.heldout]
        self.heldout_ = {"size": len(heldout), "requested": self.heldout_size, "seed": self.heldout_seed}
        self.heldout_ |= {"by": "conversation", "conversations": split.groups}
        self.heldout_["removed_duplicates"] = split.removed_duplicates
        if len(selectable) < self.n:
            raise PoolError(
                f"pool {pool.source} has {len(selectable)} selectable samples ({len(pool)} pairs, minus "
                f"{len(pool) - len(clean)} benchmark copies, {len(heldout)} held out and "
                f"{split.removed_duplicates} repeating a held-out instruction) but diversity.n={self.n}: "
                "lower diversity.n or data.heldout_size (or raise data.max_samples)"
            )
        candidates = pool.take(selectable)
        key = {
            "pool": candidates.content_hash,
            "strategy": describe(self.strategy),
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
            save_selection,
            load_selection,
        )
        self.candidates_ = candidates
        self.subset_indices_ = selectable[np.asarray(selection.indices)]
        self.heldout_indices_ = heldout
        self.selection_ = selection
        self._write_manifest(pool, selection)
        return selection

    def _decontaminate(self, pool: Pool) -> np.ndarray:
        """Indices of pool items whose instruction copies no configured benchmark prompt (counts recorded)."""
        from diversity.decontaminate import find_contaminated

        ngram, min_share = int(self.decontaminate["ngram"]), float(self.decontaminate["min_share"])
        if not self.decontaminate["enabled"] or not self.exclude_prompts:
            why = "off (data.decontaminate.enabled=false)" if not self.decontaminate["enabled"] else "no benchmarks"
            self.decontamination_ = {"total": 0, "benchmarks": [], "method": why}
            return np.arange(len(pool))
        found = find_contaminated(pool.instructions, self.exclude_prompts, ngram, min_share)
        self.decontamination_ = {**found.report(ngram, min_share), "benchmarks": sorted(self.exclude_prompts)}
        log.info("decontamination dropped %d pool items %s", len(found.dropped), found.counts)
        return found.keep

    def _heldout_size(self, pool_size: int) -> int:
        """`heldout_size`, capped at `heldout_max_fraction` of a small pool (with a warning)."""
        cap = int(self.heldout_max_fraction * pool_size)
        if self.heldout_size <= cap:
            return self.heldout_size
        log.warning(
            "pool has %d pairs: holding out %d instead of data.heldout_size=%d (data.heldout_max_fraction=%g)",
            pool_size,
            cap,
            self.heldout_size,
            self.heldout_max_fraction,
        )
        return cap

    def _write_manifest(self, pool: Pool, selection: Any) -> None:
        """`subset.jsonl` and `selection.json` (see `training.manifest`); every count that shapes the study."""
        write_subset(self.run_dir, pool, self.subset_indices_)
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
            "k_target": getattr(selection, "k_target", None),
            "pool": {
                "source": pool.source,
                "content_hash": pool.content_hash,
                "size": len(pool),
                **pool.stats,
                "decontaminated": self.decontamination_.get("total", 0),
                "heldout": len(self.heldout_indices_),
                "heldout_duplicates_removed": self.heldout_.get("removed_duplicates", 0),
                "selectable": len(self.candidates_),
            },
            "decontamination": self.decontamination_,
            "heldout": self.heldout_,
            "info": selection.info,
        }
        update_selection_json(self.run_dir, info, fresh=True)

    # ---- Lightning hooks -------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if getattr(self, "train_set_", None) is not None:
            return
        from core.assets import load_tokenizer

        tokenizer = load_tokenizer(self.tokenizer_name)
        self.train_set_, _ = self._encode_subset()
        self.truncation_report()
        if self.packing:
            self.train_set_ = pack(self.train_set_, self.max_length)
        heldout = self.heldout_indices_
        if self.heldout_eval_size is not None:
            heldout = heldout[: self.heldout_eval_size]
        self.heldout_set_, _ = self._encode(tokenizer, heldout)
        # PackedCollator pads the unpacked held-out rows exactly as PadCollator does.
        self.collate_ = (PackedCollator if self.packing else PadCollator)(tokenizer.pad_token_id)
        lengths = [len(x["input_ids"]) for x in self.train_set_]
        log.info(
            "tokenized %d train samples (mean %.0f tokens), %d held-out",
            len(lengths),
            np.mean(lengths),
            len(heldout),
        )

    def _encode(self, tokenizer: Any, indices: np.ndarray) -> tuple[list[dict[str, list[int]]], TruncationStats]:
        pool = self.pool_
        instructions = [pool.instructions[i] for i in indices]
        responses = [pool.responses[i] for i in indices]
        return encode_pairs(tokenizer, instructions, responses, self.max_length, self.loss_on)

    def _encode_subset(self) -> tuple[list[dict[str, list[int]]], TruncationStats]:
        """The subset tokenized once: `setup` and `truncation_report` share it."""
        if self.encoded_subset_ is None:
            from core.assets import load_tokenizer

            self.prepare_subset()
            self.encoded_subset_ = self._encode(load_tokenizer(self.tokenizer_name), self.subset_indices_)
        return self.encoded_subset_

    def truncation_report(self) -> dict[str, Any]:
        """What `max_length` cuts from the subset, also written as selection.json's "truncation" block.

        Works in mode=select too (it tokenizes the subset without training). Warns when more than 10% of the
        subset is cut: those responses are trained without their end, which skews what the run measures.
        """
        if self.truncation_ is None:
            _, stats = self._encode_subset()
            self.truncation_ = stats.as_dict()
            if self.truncation_["share_cut"] > 0.1:
                log.warning(
                    "max_length=%d cuts %d of %d training samples (%.0f%%, %d tokens dropped): raise data.max_length",
                    self.max_length,
                    stats.n_cut,
                    stats.n,
                    100 * self.truncation_["share_cut"],
                    stats.tokens_dropped,
                )
            update_selection_json(self.run_dir, {"truncation": self.truncation_})
        return self.truncation_

    def train_dataloader(self):
        """Batches in a seeded, resumable order (see `training.sampling`), grouped by length if configured."""
        from training.sampling import ResumableLoader, ResumableSampler

        trainer = getattr(self, "trainer", None)
        sampler = ResumableSampler(
            [len(x["input_ids"]) for x in self.train_set_],
            self.batch_size,
            seed=self.seed,
            group_by_length=self.group_by_length,
            num_replicas=trainer.world_size if trainer else 1,
            rank=trainer.global_rank if trainer else 0,
        )
        return ResumableLoader(self.train_set_, sampler, collate_fn=self.collate_, num_workers=self.num_workers)

    def val_dataloader(self):
        from torch.utils.data import DataLoader

        return DataLoader(self.heldout_set_, batch_size=self.batch_size, collate_fn=self.collate_, num_workers=0)
