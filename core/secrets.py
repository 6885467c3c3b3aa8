"""Keep credentials out of configs, messages, logs and saved files.

A key typed into the config (`+eval.pairwise.judge.api_key=sk-...`) would be written to `config.yaml`,
`.hydra/`, the W&B config and every log. Keys belong in environment variables whose *name* is configured
(`api_key_env: OPENAI_API_KEY`). `find_secrets` names the config fields that hold a key, without their values;
`redact` blanks keys out of any text before it is shown or written; `scrub_file` rewrites a file Hydra already
wrote with the key in it.

Shapes treated as credentials: common key prefixes (`sk-`, `hf_`, `ghp_`, `AKIA`, `Bearer ...`), bare hex keys of 32+
digits (not inside a path: `snapshots/<sha>/` is a folder), and credentials inside a URL: a user-info part
(`https://user:pass@host`), a query or fragment parameter named like a key (`?api_key=`, `#token=`, ...), or a
32+-hex path segment of a web URL (`https://host/v1/<hex>/chat`; a local path's snapshot folder is left alone).
`check_url` refuses such a URL setting and names the environment variable to use instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

REDACTED = "<redacted>"

# Field names that hold a credential. `max_tokens`, `tokenizer` or `api_key_env` (a variable's NAME) do not match.
SECRET_FIELD = re.compile(
    r"(^|_)(api_?key|apikey|access_?key|secret(_?key)?|token|access_token|auth_token|password|passwd|credentials?)$",
    re.IGNORECASE,
)
# Shapes of common API keys; anchored on a non-alphanumeric boundary so paths like `disk-...` never match.
SECRET_VALUE = re.compile(
    r"(?<![A-Za-z0-9])("
    r"sk-[A-Za-z0-9_\-]{16,}"  # OpenAI, Anthropic (sk-ant-...), many OpenAI-compatible hosts
    r"|hf_[A-Za-z0-9]{20,}"  # Hugging Face
    r"|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"  # GitHub
    r"|xox[abprs]-[A-Za-z0-9\-]{10,}"  # Slack
    r"|AKIA[0-9A-Z]{16}"  # AWS access key id
    r"|AIza[0-9A-Za-z_\-]{30,}"  # Google
    r"|Bearer\s+[A-Za-z0-9._~+/\-]{8,}=*"  # an Authorization header value
    r"|(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*[0-9])[0-9a-fA-F]{32,}(?![A-Za-z0-9/])"  # bare hex key, not a folder
    r")"
)
_HEX_AFTER_SLASH = re.compile(r"/[0-9a-fA-F]{32,}")  # a hash as a path component (HF snapshots/<sha>)
_QUERY_KEYS = r"api[_-]?key|apikey|key|token|access[_-]?token|auth[_-]?token|secret|password|passwd|sig|signature"
# `scheme://user:pass@` or `scheme://token@` (the user-info part of a URL), and `?api_key=...` / `&token=...`
URL_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#@\s]+)@")
URL_QUERY_KEY = re.compile(rf"(?P<head>[?&;#](?:{_QUERY_KEYS})=)(?P<value>[^&#;\s\"']+)", re.IGNORECASE)
# A key as a path segment of a web URL (`https://host/v1/<32+ hex>/chat`): inside a URL it is not a local folder.
URL_HEX_SEGMENT = re.compile(
    r"(?P<head>\bhttps?://[^\s\"'/]+(?:/[^\s\"'/?#]*)*?/)"
    r"(?P<value>(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*[0-9])[0-9a-fA-F]{32,})(?=[/?#\s\"']|$)"
)
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _key_shaped(text: str) -> bool:
    """A key shape outside a path component (a 32+-hex folder name such as a snapshot sha is not a key)."""
    return any(not _HEX_AFTER_SLASH.match(text, m.start() - 1) for m in SECRET_VALUE.finditer(text))


def url_credentials(value: Any) -> list[str]:
    """What in `value` is a credential inside a URL: `user-info` and/or the names of key-like query parameters."""
    if not isinstance(value, str):
        return []
    found = ["user-info (user:password@)" for _ in URL_USERINFO.finditer(value)][:1]
    found += [f"query parameter '{m.group('head')[1:-1]}'" for m in URL_QUERY_KEY.finditer(value)]
    found += ["a key-shaped path segment" for _ in URL_HEX_SEGMENT.finditer(value)][:1]
    return found


def looks_like_secret(value: Any) -> bool:
    """True for a string shaped like a common API key, a bearer token or a URL with credentials in it."""
    return isinstance(value, str) and (_key_shaped(value) or bool(url_credentials(value)))


def check_url(url: str | None, field: str = "base_url", env_field: str = "api_key_env") -> str | None:
    """A problem with a URL setting that carries a credential (never echoing it), pointing to the env variable.

    A URL is saved with the run (`config.yaml`, W&B) and shown in every error about its endpoint, so a key
    belongs in an environment variable whose name `env_field` gives.
    """
    found = url_credentials(url)
    if not found and not (isinstance(url, str) and _key_shaped(url)):
        return None
    what = ", ".join(found) or "a key-shaped string"
    return (
        f"{field} holds a credential ({what}; value not shown): remove it from the URL, export the key in an "
        f"environment variable and give that variable's name as {env_field} (e.g. {env_field}=OPENAI_API_KEY)"
    )


def _is_set(value: Any) -> bool:
    return value not in (None, "", False) and not (isinstance(value, str) and value.strip() in ("", "???"))


def find_secrets(cfg: Any, prefix: str = "") -> list[str]:
    """Dotted paths of config entries that hold a credential (never the values themselves).

    A field named like a credential (api_key, token, password, secret ...) with a value, or any string shaped
    like an API key, counts. `*_env` fields must name an environment variable and so never count by name.
    """
    found: list[str] = []
    if isinstance(cfg, Mapping):
        items: Iterable[tuple[str, Any]] = ((str(k), v) for k, v in cfg.items())
    elif isinstance(cfg, (list, tuple)):
        items = ((str(i), v) for i, v in enumerate(cfg))
    else:
        return [prefix.rstrip(".")] if looks_like_secret(cfg) else []
    for key, value in items:
        path = f"{prefix}{key}"
        if isinstance(value, (Mapping, list, tuple)):
            found.extend(find_secrets(value, f"{path}."))
        elif looks_like_secret(value) or (
            SECRET_FIELD.search(key) and not key.endswith("_env") and _is_set(value) and not isinstance(value, bool)
        ):
            found.append(path)
    return found


def secret_values(cfg: Any, paths: Iterable[str]) -> list[str]:
    """The string values at `paths` (as found by `find_secrets`), for `redact`; never show them."""
    values = []
    for path in paths:
        node = cfg
        for part in path.split("."):
            node = node[int(part)] if isinstance(node, (list, tuple)) else node[part]
        if isinstance(node, (str, int, float)) and str(node):
            values.append(str(node))
    return values


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with every key-shaped string and every given secret replaced by `<redacted>`."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = URL_USERINFO.sub(lambda m: f"{m.group('head')}{REDACTED}@", text)
    text = URL_QUERY_KEY.sub(lambda m: f"{m.group('head')}{REDACTED}", text)
    text = URL_HEX_SEGMENT.sub(lambda m: f"{m.group('head')}{REDACTED}", text)
    return SECRET_VALUE.sub(lambda m: m.group(0) if _HEX_AFTER_SLASH.match(text, m.start() - 1) else REDACTED, text)


def check_env_name(name: str | None, field: str = "api_key_env") -> str | None:
    """A problem with `name` as an environment variable name, worded so that a pasted key is never echoed."""
    if name is None:
        return None
    if looks_like_secret(name) or not ENV_NAME.match(str(name)):
        return (
            f"{field} must be the NAME of an environment variable (e.g. OPENAI_API_KEY), but its value is not a "
            "variable name (it looks like a key itself; not shown): export the key and set the variable's name"
        )
    return None


def scrub_file(path: str | Path, secrets: Iterable[str]) -> bool:
    """Rewrite `path` with the secrets (and key-shaped strings) redacted; True if it held any."""
    from core.cache import atomic_write

    path = Path(path)
    if not path.is_file():
        return False
    text = path.read_text(encoding="utf-8", errors="replace")
    clean = redact(text, secrets)
    if clean == text:
        return False
    with atomic_write(path) as fh:
        fh.write(clean)
    return True
