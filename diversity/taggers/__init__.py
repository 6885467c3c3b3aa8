"""Taggers give each text a few short tags (meso types, InsTag-style); the meso extractor merges them.

Every tagger has `tag(texts, ids=None) -> list[list[str]]` (one list per text, in order) and `cache_key()`
(class name + every parameter that changes the tags), so tag results can be cached per pool. Taggers that
score their tags (`phrase`, the default, and `intent`) keep only tags above `min_relevance` and also offer
`tag_with_scores(texts) -> list[list[(tag, relevance)]]`.
"""

from diversity.taggers.intent import IntentTagger
from diversity.taggers.jsonl import JsonlTagger
from diversity.taggers.keyword import KeywordTagger
from diversity.taggers.llm import LLMTagger, parse_tags
from diversity.taggers.phrase import PhraseTagger

__all__ = ["IntentTagger", "JsonlTagger", "KeywordTagger", "LLMTagger", "PhraseTagger", "parse_tags"]
