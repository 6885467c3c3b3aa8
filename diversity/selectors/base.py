"""What every selector returns, and the argument checks they all share."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from diversity.manifest import jsonable


@dataclass
class Selection:
    """One subset of a pool, chosen at one degree of diversity.

    Attributes:
        indices: sorted, unique pool indices; exactly `n` of them.
        level: the requested degree of diversity in [0, 1].
        k: number of types the subset covers, as achieved (None for selectors that do not work on
            discrete types).
        k_target: number of types `level` asks for, k_min + level * (k_max - k_min) rounded; `k` meets it
            within about 1% (None where not applicable).
        k_min: fewest types that still yield `n` samples (None where not applicable).
        k_max: most types `n` samples reach (for DegreeSelector: what Algorithm 2 covers with `n` samples
            from the whole typed pool; None where not applicable).
        n_types: number of types the extractor produced (None where not applicable).
        info: everything else a report should show (candidate pool size, covered type preview, lengths ...).
    """

    indices: np.ndarray
    level: float
    k: int | None = None
    k_target: int | None = None
    k_min: int | None = None
    k_max: int | None = None
    n_types: int | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.indices)

    def save(self, directory: Path) -> None:
        """Cache codec (write): the selection as JSON (`cached_selection.json`, not a run's `selection.json`)."""
        payload = asdict(self)
        payload["indices"] = [int(i) for i in self.indices]
        (Path(directory) / CACHE_FILE).write_text(json.dumps(payload, default=jsonable))

    @classmethod
    def load(cls, directory: Path) -> Selection:
        """Cache codec (read): the `Selection` written by `save`."""
        payload = json.loads((Path(directory) / CACHE_FILE).read_text())
        payload["indices"] = np.asarray(payload["indices"], dtype=np.int64)
        return cls(**payload)


CACHE_FILE = "cached_selection.json"


def check_request(n: int, level: float, n_samples: int) -> None:
    """Reject impossible requests before any work starts, naming the bad argument."""
    if not 0.0 <= float(level) <= 1.0:
        raise ValueError(f"level must lie in [0, 1], got {level}")
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n}")
    if n > n_samples:
        raise ValueError(f"cannot select n={n} samples from a pool of {n_samples}")
