"""A client for any OpenAI-compatible chat endpoint (vLLM, llama.cpp server, a hosted API).

The judge (`evaluation.judge`) and the LLM tagger (`diversity.taggers.llm`) both talk to endpoints through it.
The API key is read from an environment variable whose *name* is configured, never the key itself, and error
messages are redacted (`core.secrets.redact`): an endpoint that echoes the Authorization header in a 401 body,
or a key pasted into `api_key_env`, never reaches a log. A `base_url` with a credential in it is refused.

Transient failures are retried, so one rate limit late in ~1,600 judge calls does not end a run: HTTP 408/409/
425/429 and every 5xx, timeouts, refused or dropped connections and truncated bodies get up to `max_attempts`
tries, waiting exponential backoff with jitter, or the server's `Retry-After`, capped at `max_wait_s`: a longer
`Retry-After` is shortened to `max_wait_s`, with a warning the first time (later ones are logged at debug level and
counted in `stats["capped_waits"]`); raise `max_wait_s` to honour it in full. Anything else (401, 400, a malformed
reply) fails at once. `complete` hands every answer to `on_answer` as soon as it
arrives, so a caller can persist it before a later request fails; `stats` counts calls, retries and failures.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from core.secrets import check_env_name, check_url, redact

log = logging.getLogger(__name__)
RETRY_STATUS = {408, 409, 425, 429}  # and every 5xx


class EndpointError(RuntimeError):
    """A request failed for good (after its retries, or at once when retrying cannot help).

    The message names the endpoint and the last failure. Raised through `evaluation.judge.judge_pairs` with a verdict
    cache, it also says how many judgements are kept there and that a rerun with the same cache resumes.
    """


class _Transient(Exception):
    """A failure worth retrying; `wait` is the server's Retry-After in seconds, if it gave one."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass
class ChatClient:
    """A judge behind an OpenAI-compatible `POST <base_url>/chat/completions` endpoint.

    Attributes:
        base_url: e.g. `http://127.0.0.1:8000/v1` (a full `.../chat/completions` URL also works); no credentials.
        model: Model name sent in the request.
        api_key_env: Name of the environment variable holding the API key; None sends no key (local servers).
        temperature: 0 for reproducible verdicts.
        max_tokens: Room for the reasoning before the verdict line.
        timeout: Seconds per request.
        max_workers: Concurrent requests (hosted APIs are latency-bound).
        max_attempts: Tries per request before giving up (1 = no retry).
        backoff_s: First retry waits about this long; each further retry doubles it (with +-50% jitter).
        max_wait_s: Longest wait between tries, also the cap on a server's `Retry-After` (a longer one is cut to it,
            with a warning).
    """

    base_url: str
    model: str
    api_key_env: str | None = None
    temperature: float = 0.0
    max_tokens: int = 1024
    timeout: float = 120.0
    max_workers: int = 4
    max_attempts: int = 6
    backoff_s: float = 1.0
    max_wait_s: float = 60.0
    stats: Counter = field(default_factory=Counter, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        self._lock = threading.Lock()
        self._rng = random.Random()

    def _url(self) -> str:
        problem = check_url(self.base_url, "base_url", "api_key_env")
        if problem:
            raise EndpointError(problem)
        url = self.base_url.rstrip("/")
        return url if url.endswith("/chat/completions") else f"{url}/chat/completions"

    def _key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key_env:
            problem = check_env_name(self.api_key_env, "judge api_key_env")
            if problem:
                raise EndpointError(problem)
            key = self._key()
            if not key:
                raise EndpointError(f"judge API key: environment variable '{self.api_key_env}' is not set")
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _count(self, name: str) -> None:
        with self._lock:
            self.stats[name] += 1

    def _once(self, request: urllib.request.Request) -> str:
        """One HTTP request; raises `_Transient` for what a retry may fix, `EndpointError` for the rest."""
        where = f"endpoint {self._redact(request.full_url)}"
        self._count("calls")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as err:
            detail = self._redact(err.read().decode(errors="replace"))[:300]
            message = f"{where} returned HTTP {err.code}: {detail}"
            if err.code in RETRY_STATUS or err.code >= 500:
                raise _Transient(message, retry_after(err.headers.get("Retry-After"))) from None
            raise EndpointError(message) from None  # the chained HTTPError would carry the unredacted body
        except (urllib.error.URLError, OSError, http.client.HTTPException, json.JSONDecodeError) as err:
            reason = self._redact(str(getattr(err, "reason", err)) or type(err).__name__)
            raise _Transient(f"{where} unreachable or cut off: {reason}") from None
        try:
            return payload["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            detail = self._redact(str(payload))[:300]
            raise EndpointError(f"judge {where}: unexpected response {detail}") from None

    def _backoff(self, attempt: int, server_wait: float | None) -> float:
        """Seconds before try `attempt + 1`: the server's Retry-After if given, else jittered exponential."""
        if server_wait is not None:
            if server_wait > self.max_wait_s:
                with self._lock:
                    self.stats["capped_waits"] += 1
                    first = self.stats["capped_waits"] == 1
                (log.warning if first else log.debug)(
                    "endpoint asked to wait %.0f s (Retry-After); waiting max_wait_s = %.0f s instead%s",
                    server_wait,
                    self.max_wait_s,
                    " (raise max_wait_s to honour it; later cuts are logged at debug level)" if first else "",
                )
            return min(server_wait, self.max_wait_s)
        base = min(self.max_wait_s, self.backoff_s * 2 ** (attempt - 1))
        with self._lock:
            return base * (0.5 + self._rng.random())

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
        started = time.monotonic()
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._once(request)
            except _Transient as err:
                if attempt == self.max_attempts:
                    self._count("failures")
                    raise EndpointError(
                        f"gave up after {attempt} attempt(s) in {time.monotonic() - started:.1f} s: {err}"
                    ) from None
                pause = self._backoff(attempt, err.wait)
                self._count("retries")
                log.debug("retry %d/%d in %.1f s: %s", attempt, self.max_attempts - 1, pause, err)
                time.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    def _redact(self, text: str) -> str:
        """`text` without the key (as sent, and in any common key shape)."""
        key = self._key() if self.api_key_env and check_env_name(self.api_key_env) is None else None
        return redact(text, [key])

    def complete(
        self,
        prompts: Sequence[str],
        progress: bool = False,
        desc: str = "requests",
        on_answer: Callable[[int, str], None] | None = None,
    ) -> list[str]:
        """Answers in prompt order (requests run concurrently, `max_workers` at a time).

        Each answer is passed to `on_answer(index, text)` as soon as it arrives (in the calling thread). A request
        that fails for good raises `EndpointError` once the requests already running have finished and been
        handed over; the rest are never sent. A half-empty result is never returned, so it cannot be mistaken for
        (and cached as) a real one.
        """
        from tqdm.auto import tqdm

        self._url(), self._headers()  # a credential in base_url, or a missing key, fails before any request
        answers: list[str | None] = [None] * len(prompts)
        failure: BaseException | None = None
        with (
            ThreadPoolExecutor(max_workers=max(1, self.max_workers)) as pool,
            tqdm(total=len(prompts), desc=desc, disable=not progress) as bar,
        ):
            queue = iter(enumerate(prompts))
            running: dict[Future, int] = {}

            def submit() -> None:
                for index, prompt in queue:
                    running[pool.submit(self._ask, prompt)] = index
                    return

            for _ in range(max(1, self.max_workers)):
                submit()
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    index = running.pop(future)
                    try:
                        answers[index] = future.result()
                    except BaseException as err:  # noqa: BLE001 - kept, raised once the running requests end
                        failure = failure or err
                        continue
                    if on_answer is not None:
                        on_answer(index, answers[index])
                    bar.update(1)
                    if failure is None:
                        submit()
        if failure is not None:
            raise failure
        return answers  # type: ignore[return-value]
