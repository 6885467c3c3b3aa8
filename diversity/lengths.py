"""Response length as a controlled variable: token counts, a length window, a length lock, and the drift report.

Every diversity degree moves response length with it (low micro degrees keep short, plain texts), so a trend
with the degree can be a length effect. Two controls, both under `diversity.length`:

* **window** `[min_tokens, max_tokens]`: only samples whose response has that many tokens are candidates
  (the paper's length-control ablation; types are still extracted on the whole pool).
* **lock**: every subset has the reference's response-length distribution, where the reference is the
  candidate pool (the window's samples when a window is set). The reference's token counts are cut into
  `bins` strata of equal mass and each stratum gets its share of `n` as a quota; selectors draw within the
  quotas (`diversity.selectors.quota`). With b strata the subset's CDF equals the reference's at every
  stratum edge, so the KS distance is at most ~1/b plus the within-stratum drift. The mean is set by the long
  tail, so the longest 10% is cut into one-sample strata and the longest 1/(2n) of the reference (half a sample
  of a random subset, on average) is left out: a type-rich degree would otherwise pick that outlier.

`length_drift` describes any subset against its reference (mean, quartiles, two-sample KS), locked or not, and
is written into every `selection.json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from core.cache import FeatureCache

MAX_BINS = 100  # 1/100 = 0.01 of KS from the strata edges at most, whatever n
TAIL = 0.1  # the longest 10% of the reference is cut into one-sample strata (it sets the mean)
MAX_TAIL_STRATA = 50


@dataclass(frozen=True)
class LengthControl:
    """`diversity.length`: a response-length window and/or a length lock (see the module docstring).

    Attributes:
        window: (min_tokens, max_tokens), inclusive, or None for no window.
        lock: draw every subset with the reference's response-length distribution.
        bins: strata of the lock's body; "auto" = clamp(n // 2, 2, 100) (about 2 samples per stratum).
        instruction_bins: with the lock, also hold the instruction-length distribution: each response stratum's
            quota is shared among this many equal-mass instruction-length strata by their mass inside it
            (`split_quota`), so the response quotas stay exact and the joint distribution follows the reference;
            with `bins="auto"` the response body gets n / 2 / instruction_bins strata, so cells keep ~2 samples.
            Coarser cells hold less tightly: on a synthetic pool whose instruction types grow with instruction
            length, instruction-degree subsets at n = 120 drift at most ~15% in mean instruction length with 8
            bins (58-78% without), response length within 3% (tests/diversity/test_lengths.py). None = response
            length only.
        tokenizer: the model whose tokens are counted (the fine-tuned model's).
        name: a label of the length condition (e.g. "short"), recorded with it.
    """

    window: tuple[int, int] | None = None
    lock: bool = False
    bins: int | str = "auto"
    instruction_bins: int | None = None
    tokenizer: str | None = None
    name: str | None = None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> LengthControl:
        """From `diversity.length`; a key left out keeps the dataclass default (its one home)."""
        cfg = dict(cfg or {})
        if cfg.get("window") is not None:
            cfg["window"] = (int(cfg["window"][0]), int(cfg["window"][1]))
        if "lock" in cfg:
            cfg["lock"] = bool(cfg["lock"])
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in cfg.items() if key in known})

    @property
    def active(self) -> bool:
        return self.window is not None or self.lock

    def n_bins(self, n: int) -> int:
        """Response strata of the body; "auto" shares about n / 2 cells with the instruction strata, if any."""
        if self.bins == "auto":
            cells = int(min(max(n // 2, 2), MAX_BINS))
            return max(2, cells // self.instruction_bins) if self.instruction_bins else cells
        return int(self.bins)

    def as_dict(self) -> dict[str, Any]:
        window = None if self.window is None else list(self.window)
        return {
            "name": self.name, "window": window, "lock": self.lock, "bins": self.bins,
            "instruction_bins": self.instruction_bins,
        }  # fmt: skip


def _save(lengths: np.ndarray, path: Path) -> None:
    np.save(path / "lengths.npy", lengths, allow_pickle=False)


def _load(path: Path) -> np.ndarray:
    return np.load(path / "lengths.npy", allow_pickle=False)


def token_lengths(pool: Any, component: str, tokenizer: str, cache: FeatureCache | None = None) -> np.ndarray:
    """Token counts of every pool text of `component` under `tokenizer` (cached by pool content and tokenizer)."""
    from diversity.extractors.micro import count_tokens

    texts = pool.texts(component)
    if cache is None:
        return count_tokens(texts, tokenizer)
    key = {"pool": pool.content_hash, "component": component, "tokenizer": tokenizer}
    return cache.get_or_compute("lengths", key, lambda: count_tokens(texts, tokenizer), _save, _load)


def in_window(lengths: np.ndarray, window: tuple[int, int]) -> np.ndarray:
    """Indices whose length lies in the inclusive window."""
    low, high = window
    return np.flatnonzero((lengths >= low) & (lengths <= high))


def strata(reference: np.ndarray, n: int, bins: int, tail: float = TAIL) -> tuple[np.ndarray, np.ndarray]:
    """Cut `reference` lengths into strata and share `n` among them by mass.

    `bins` strata of equal mass cover the body; the longest `tail` share of the reference is cut finer, into strata
    of one sample's mass each (at most MAX_TAIL_STRATA), because the mean length is set by the long tail: within a
    wide top stratum a selector that favours type-rich (long) or type-poor (short) texts would move the mean by
    several percent, within one-sample strata it cannot.

    Returns:
        (edges, quota): `edges` are the inner cut points, lengths of the reference (a length l falls in stratum
        `searchsorted(edges, l, side="left")`: stratum s holds (edges[s-1], edges[s]]); `quota[s]` is n times
        stratum s's share of the reference, rounded by largest remainder so the quotas sum to exactly n. Ties in
        the reference can merge strata, so fewer may come back.

    Complexity: O(m log m) for m reference lengths.
    """
    bins = max(1, min(int(bins), n))
    body = np.arange(1, bins) / bins
    n_tail = int(min(max(round(n * tail), 0), MAX_TAIL_STRATA))
    cuts = body if n_tail == 0 else np.union1d(body[body < 1 - tail], 1 - tail + tail * np.arange(n_tail) / n_tail)
    edges = np.unique(np.quantile(reference, cuts, method="lower"))
    mass = np.bincount(stratum_of(reference, edges), minlength=len(edges) + 1) / len(reference)
    return edges, _largest_remainder(mass, n)


def _largest_remainder(mass: np.ndarray, total: int) -> np.ndarray:
    """Integers proportional to `mass` (shares summing to 1) that sum to exactly `total`."""
    quota = np.floor(mass * total).astype(np.int64)
    order = np.argsort(-(mass * total - quota), kind="stable")
    quota[order[: total - int(quota.sum())]] += 1
    return quota


def split_quota(
    outer: np.ndarray, counts: np.ndarray, inner_lengths: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Share each outer stratum's quota among `bins` equal-mass strata of a second length, by their mass inside it.

    `outer[i]` is reference row i's response stratum and `counts` that stratum's quota; `inner_lengths[i]` its
    instruction length. A joint stratum is `outer * n_inner + inner`. Rounding happens inside each outer stratum
    (largest remainder), so the outer quotas, and with them the response-length distribution, are unchanged.

    Returns:
        (inner_edges, joint_counts, joint stratum of every reference row). O(m log m) for m reference rows.
    """
    inner_edges = np.unique(np.quantile(inner_lengths, np.arange(1, max(int(bins), 1)) / bins, method="lower"))
    n_inner = len(inner_edges) + 1
    joint = joint_stratum(outer, inner_lengths, inner_edges)
    mass = np.bincount(joint, minlength=len(counts) * n_inner).reshape(len(counts), n_inner).astype(np.float64)
    joint_counts = np.zeros_like(mass, dtype=np.int64)
    for s, total in enumerate(counts):
        if total and mass[s].sum():
            joint_counts[s] = _largest_remainder(mass[s] / mass[s].sum(), int(total))
    return inner_edges, joint_counts.ravel(), joint


def joint_stratum(outer: np.ndarray, inner_lengths: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    """The joint stratum `split_quota` assigns, for rows outside its reference (the candidates)."""
    return outer * (len(inner_edges) + 1) + stratum_of(inner_lengths, inner_edges)


def stratum_of(lengths: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.searchsorted(edges, lengths, side="left").astype(np.int64)


def length_drift(subset: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """How far a subset's lengths are from the reference's: mean (and relative drift), quartiles, KS.

    KS is scipy's two-sample Kolmogorov-Smirnov statistic (its p-value is reported but the subset is drawn
    from the reference, so it is descriptive, not a test of independent samples).
    """
    from scipy.stats import ks_2samp

    subset, reference = np.asarray(subset, dtype=float), np.asarray(reference, dtype=float)
    ks = ks_2samp(subset, reference)
    q_sub, q_ref = np.quantile(subset, [0.25, 0.5, 0.75]), np.quantile(reference, [0.25, 0.5, 0.75])
    return {
        "mean": float(subset.mean()),
        "reference_mean": float(reference.mean()),
        "mean_drift": float(subset.mean() / reference.mean() - 1) if reference.mean() else 0.0,
        "quartiles": [float(q) for q in q_sub],
        "reference_quartiles": [float(q) for q in q_ref],
        "ks": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
        "n": int(subset.size),
        "reference_n": int(reference.size),
    }
