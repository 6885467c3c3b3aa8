"""The control strategy: a uniform random subset, blind to types."""

from __future__ import annotations

import numpy as np

from diversity.selectors.base import Selection, check_request
from diversity.types import TypeAssignment


class RandomSelector:
    """`n` samples uniformly at random without replacement; `level` is recorded but has no effect.

    Complexity: O(n_samples) time and memory (one seeded permutation-based draw).
    """

    def select(self, types: TypeAssignment, n: int, level: float, seed: int) -> Selection:
        """Draw `n` of `types.n_samples` indices with `np.random.default_rng(seed)`; sorted."""
        check_request(n, level, types.n_samples)
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(types.n_samples, size=n, replace=False))
        info = {"selector": "RandomSelector", "candidate_pool_size": types.n_samples}
        return Selection(indices=indices, level=float(level), info=info)
