"""The control strategy: a uniform random subset, blind to types."""

from __future__ import annotations

import numpy as np

from diversity.selectors.base import Selection, check_request
from diversity.selectors.quota import Quota
from diversity.types import TypeAssignment


class RandomSelector:
    """`n` samples uniformly at random without replacement; `level` is recorded but has no effect.

    Complexity: O(n_samples) time and memory (one seeded permutation-based draw).
    """

    def select(self, types: TypeAssignment, n: int, level: float, seed: int, quota: Quota | None = None) -> Selection:
        """Draw `n` of `types.n_samples` indices with `np.random.default_rng(seed)`; sorted. Under a `quota`
        (the length lock) each stratum's count is drawn uniformly from its rows: a length-matched baseline."""
        check_request(n, level, types.n_samples)
        rng = np.random.default_rng(seed)
        if quota is None:
            indices = np.sort(rng.choice(types.n_samples, size=n, replace=False))
        else:
            quota.check(np.arange(types.n_samples), "RandomSelector")
            indices = quota.draw(np.arange(types.n_samples), rng)
        info = {
            "selector": "RandomSelector",
            "candidate_pool_size": types.n_samples,
            "length_locked": quota is not None,
        }
        return Selection(indices=indices, level=float(level), info=info)
