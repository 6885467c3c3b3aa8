"""The part of a text a tagger reads: its first `max_tokens` embedder tokens, as text.

Taggers score tags on an embedding of the text and on words found in it. If the embedding read the first 64
tokens while the words came from the whole text, a long response would collect word matches on ~3x as many
tags as a short one (measured on the default pool), so the tag count would follow response length, the very
variable the response strategies move. Cutting every text to the same window first, and scoring both the
embedding and the words on that window only, removes that bias by construction.

Cost: one fast-tokenizer pass over the texts, O(total characters).
"""

from __future__ import annotations

from collections.abc import Sequence

from diversity.embeddings import MODEL2VEC_PREFIX, load_embedder


def embedding_windows(texts: Sequence[str], embedder: str, max_tokens: int) -> list[str]:
    """The first `max_tokens` tokens of each text under `embedder`'s tokenizer, decoded back to text.

    The decoded window is what the embedder reads (it is embedded with room for its special tokens) and
    what candidate or cue words are taken from. MiniLM's tokenizer lowercases and spaces out punctuation
    ("reverses a list." -> "reverses a list ."), which the word patterns downstream accept.
    """
    texts = [str(t) for t in texts]
    if not texts:
        return []
    if embedder.startswith(MODEL2VEC_PREFIX):  # static embedders read words; cut by whitespace words instead
        return [" ".join(t.split()[:max_tokens]) for t in texts]
    tokenizer = load_embedder(embedder, None).tokenizer  # same cache entry as `embed` uses
    ids = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=max_tokens)["input_ids"]
    return tokenizer.batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)
