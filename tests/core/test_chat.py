"""The chat client retries what a retry can fix (429, 5xx, timeouts, dropped connections), honours Retry-After,
gives up after a bounded number of tries with one clear error, and never retries what it cannot fix."""

from __future__ import annotations

import time

import pytest
from flaky_server import flaky_chat_server

from core.chat import ChatClient, EndpointError, retry_after


def _client(url: str, **kw) -> ChatClient:
    return ChatClient(url, "scripted", **{"backoff_s": 0.01, "max_wait_s": 2.0, "timeout": 0.5, **kw})


def test_seeded_failures_are_retried_and_every_answer_is_right():
    prompts = [f"question {i}" for i in range(40)]
    with flaky_chat_server(lambda b: "echo " + b["messages"][-1]["content"], fail_rate=0.3, stall_s=0.7) as srv:
        client = _client(srv.url, max_workers=4)
        answers = client.complete(prompts)
    assert answers == [f"echo {p}" for p in prompts]
    assert set(srv.failures) == {"429", "500", "503", "drop", "stall"}  # every kind happened and was survived
    assert client.stats["retries"] == sum(srv.failures.values()) and client.stats["failures"] == 0
    assert client.stats["calls"] == srv.requests and max(srv.answered.values()) == 1


def test_retry_after_is_honoured():
    with flaky_chat_server(lambda b: "ok", fail_rate=1.0, retry_after="1", kinds=("429",)) as srv:
        client = _client(srv.url, max_attempts=2, max_workers=1)  # backoff alone would wait ~0.01 s
        start = time.monotonic()
        with pytest.raises(EndpointError, match="HTTP 429"):
            client.complete(["rate limited"])
    assert time.monotonic() - start >= 0.95 and srv.requests == 2
    assert retry_after("2") == 2.0 and retry_after("soon") is None and retry_after(None) is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)


def test_a_retry_after_longer_than_max_wait_is_cut_with_one_warning(caplog):
    with flaky_chat_server(lambda b: "ok", fail_rate=1.0, retry_after="30", kinds=("429",)) as srv:
        client = _client(srv.url, max_attempts=3, max_workers=1, max_wait_s=0.2)
        start = time.monotonic()
        with caplog.at_level("DEBUG", logger="core.chat"), pytest.raises(EndpointError, match="HTTP 429"):
            client.complete(["rate limited"])
    assert time.monotonic() - start < 5 and srv.requests == 3  # 2 waits of 0.2 s, not of 30 s
    assert client.stats["capped_waits"] == 2
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "Retry-After" in r.getMessage()]
    assert len(warnings) == 1 and "30 s" in warnings[0].getMessage() and "max_wait_s" in warnings[0].getMessage()
    with flaky_chat_server(lambda b: "ok", fail_rate=1.0, retry_after="0.1", kinds=("429",)) as srv:
        client = _client(srv.url, max_attempts=2, max_workers=1, max_wait_s=0.2)
        with pytest.raises(EndpointError):
            client.complete(["short wait"])
    assert client.stats["capped_waits"] == 0  # a Retry-After within max_wait_s is honoured as given


def test_attempts_are_bounded_and_the_final_error_says_what_happened():
    with flaky_chat_server(lambda b: "ok", fail_rate=1.0) as srv:
        client = _client(srv.url, max_attempts=3, max_workers=1)
        with pytest.raises(EndpointError, match=r"gave up after 3 attempt\(s\)") as err:
            client.complete(["x"])
    assert srv.requests == 3 and client.stats["failures"] == 1 and srv.url.split("/v1")[0] in str(err.value)


def test_a_client_error_is_not_retried():
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    calls = []

    class BadRequest(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            calls.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(400)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"no")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), BadRequest)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(EndpointError, match="HTTP 400"):
            _client(f"http://127.0.0.1:{server.server_address[1]}/v1").complete(["x"])
    finally:
        server.shutdown()
        server.server_close()
    assert len(calls) == 1


def test_answers_reach_on_answer_before_a_later_failure_raises():
    got = {}
    with flaky_chat_server(lambda b: "fine", fail_rate=0.0, die_after=5) as srv:
        client = _client(srv.url, max_attempts=2, max_workers=1)
        with pytest.raises(EndpointError, match="gave up"):
            client.complete([f"p{i}" for i in range(10)], on_answer=lambda i, a: got.__setitem__(i, a))
    assert got == dict.fromkeys(range(5), "fine") and sum(srv.answered.values()) == 5
    # then dead: a request that reaches it before its socket closes is dropped (a race under load), later ones refused
    assert srv.requests - 5 == srv.failures["drop"] <= 2


def test_a_credential_in_base_url_is_refused_before_any_request():
    with pytest.raises(EndpointError, match="api_key_env") as err:
        ChatClient("https://bob:s3cret-pass@api.example.com/v1", "m").complete(["hi"])
    assert "s3cret-pass" not in str(err.value)
    with pytest.raises(EndpointError, match="query parameter 'api_key'") as err:
        ChatClient("https://api.example.com/v1?api_key=abcdef123456", "m").complete(["hi"])
    assert "abcdef123456" not in str(err.value)
