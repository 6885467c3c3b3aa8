"""A client for any OpenAI-compatible chat endpoint (vLLM, llama.cpp server, a hosted API).

The judge (`evaluation.judge`) and the LLM tagger (`diversity.taggers.llm`) both talk to endpoints through it.
The API key is read from an environment variable whose *name* is configured, never the key itself, and error
messages are redacted (`core.secrets.redact`): an endpoint that echoes the Authorization header in a 401 body,
or a key pasted into `api_key_env`, never reaches a log.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from core.secrets import check_env_name, redact


@dataclass
class ChatClient:
    """A judge behind an OpenAI-compatible `POST <base_url>/chat/completions` endpoint.

    Attributes:
        base_url: e.g. `http://127.0.0.1:8000/v1` (a full `.../chat/completions` URL also works).
        model: Model name sent in the request.
        api_key_env: Name of the environment variable holding the API key; None sends no key (local servers).
        temperature: 0 for reproducible verdicts.
        max_tokens: Room for the reasoning before the verdict line.
        timeout: Seconds per request.
        max_workers: Concurrent requests (hosted APIs are latency-bound).
    """

    base_url: str
    model: str
    api_key_env: str | None = None
    temperature: float = 0.0
    max_tokens: int = 1024
    timeout: float = 120.0
    max_workers: int = 4

    def _url(self) -> str:
        url = self.base_url.rstrip("/")
        return url if url.endswith("/chat/completions") else f"{url}/chat/completions"

    def _key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key_env:
            problem = check_env_name(self.api_key_env, "judge api_key_env")
            if problem:
                raise RuntimeError(problem)
            key = self._key()
            if not key:
                raise RuntimeError(f"judge API key: environment variable '{self.api_key_env}' is not set")
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _ask(self, prompt: str) -> str:
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        request = urllib.request.Request(
            self._url(), data=json.dumps(body).encode(), headers=self._headers(), method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as err:
            detail = self._redact(err.read().decode(errors="replace"))[:300]
            message = f"judge endpoint {self._redact(self._url())} returned HTTP {err.code}: {detail}"
            raise RuntimeError(message) from None  # the chained HTTPError would carry the unredacted body
        except (urllib.error.URLError, TimeoutError) as err:
            reason = self._redact(str(getattr(err, "reason", err)))
            raise RuntimeError(f"endpoint {self._redact(self._url())} unreachable: {reason}") from None
        try:
            return payload["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            detail = self._redact(str(payload))[:300]
            raise RuntimeError(f"judge endpoint {self._redact(self._url())}: unexpected response {detail}") from None

    def _redact(self, text: str) -> str:
        """`text` without the key (as sent, and in any common key shape)."""
        key = self._key() if self.api_key_env and check_env_name(self.api_key_env) is None else None
        return redact(text, [key])

    def complete(self, prompts: Sequence[str], progress: bool = False, desc: str = "requests") -> list[str]:
        """Answers in prompt order (requests run concurrently). A failed request raises: a half-empty
        result must never be mistaken for (and cached as) a real one."""
        from tqdm.auto import tqdm

        with ThreadPoolExecutor(max_workers=max(1, self.max_workers)) as pool:
            return list(tqdm(pool.map(self._ask, prompts), total=len(prompts), desc=desc, disable=not progress))
