"""A scripted OpenAI-compatible chat server that fails on purpose: the retry and resume tests' endpoint.

Like `helpers.chat_server`, `reply(body)` scripts the assistant's answer. On top of it, a seeded share of the
requests fails as hosted APIs do (HTTP 429 with `Retry-After`, 500, 503, a dropped connection, a stall past the
client's timeout), and `die_after` shuts the whole server down after that many answers, as an endpoint that
dies mid-run. Whether a request fails depends only on (seed, prompt, how often that prompt came before), so a
run is reproducible whatever the thread interleaving. `answered` counts, per prompt, the answers delivered.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAILURES = ("429", "500", "503", "drop", "stall")


@dataclass
class FlakyServer:
    url: str = ""
    answered: Counter = field(default_factory=Counter)  # prompt -> answers delivered
    failures: Counter = field(default_factory=Counter)  # failure kind -> count
    requests: int = 0
    dead: bool = False


def _fails(seed: int, prompt: str, nth: int, rate: float, kinds: tuple[str, ...] = FAILURES) -> str | None:
    """The failure of the `nth` request for `prompt` (None = answer it), by a seeded hash."""
    digest = hashlib.sha256(f"{seed}\0{nth}\0{prompt}".encode()).digest()
    if int.from_bytes(digest[:8], "big") / 2**64 >= rate:
        return None
    return kinds[digest[8] % len(kinds)]


@contextlib.contextmanager
def flaky_chat_server(
    reply: Callable[[dict], str],
    fail_rate: float = 0.2,
    seed: int = 0,
    die_after: int | None = None,
    stall_s: float = 1.0,
    retry_after: str = "0",
    kinds: tuple[str, ...] = FAILURES,
) -> Iterator[FlakyServer]:
    """Serve on 127.0.0.1 until the block ends (or `die_after` answers); yields the live `FlakyServer`."""
    state = FlakyServer()
    seen: Counter = Counter()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server API)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt = body["messages"][-1]["content"]
            with lock:
                state.requests += 1
                failure = "drop" if state.dead else _fails(seed, prompt, seen[prompt], fail_rate, kinds)
                seen[prompt] += 1
                if failure:
                    state.failures[failure] += 1
            if failure == "drop":
                self.close_connection = True
                self.connection.close()
                return
            if failure == "stall":
                time.sleep(stall_s)
                return
            if failure:
                data = json.dumps({"error": {"message": f"scripted {failure}"}}).encode()
                self.send_response(int(failure))
                self.send_header("Retry-After", retry_after) if failure == "429" else None
            else:
                data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply(body)}}]}).encode()
                self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            if not failure:
                with lock:
                    state.answered[prompt] += 1
                    if die_after is not None and sum(state.answered.values()) >= die_after and not state.dead:
                        state.dead = True
                        threading.Thread(target=stop, daemon=True).start()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    stopped = threading.Event()

    def stop() -> None:
        if not stopped.is_set():
            stopped.set()
            server.shutdown()
            server.server_close()

    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        stop()
