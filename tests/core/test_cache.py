"""FeatureCache never trusts a damaged entry, cleans up after killed writers, and writes files under the umask."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.cache import MANIFEST, FeatureCache, atomic_dir, atomic_write
from diversity.selectors import Selection
from diversity.types import TypeAssignment

ROOT = Path(__file__).resolve().parents[2]


class Counter:
    """A compute function that counts its calls."""

    def __init__(self, value):
        self.value, self.calls = value, 0

    def __call__(self):
        self.calls += 1
        return self.value


def selection() -> Selection:
    return Selection(indices=np.array([1, 4, 7]), level=0.5, k=2, k_min=1, k_max=3, n_types=5, info={"a": 1})


def get_selection(cache: FeatureCache, compute: Counter) -> Selection:
    return cache.get_or_compute("selections", {"pool": "p"}, compute, Selection.save, Selection.load)


def selection_file(cache: FeatureCache) -> Path:
    """The JSON file `Selection.save` wrote into the entry (its name belongs to the selectors)."""
    entry = cache.entry("selections", {"pool": "p"})
    return next(p for p in entry.glob("*.json") if p.name not in (MANIFEST, "key.json"))


def types() -> TypeAssignment:
    return TypeAssignment.from_lists([[0, 1], [1], [2]], ["a", "b", "c"], meta={"extractor": "test"})


def get_types(cache: FeatureCache, compute: Counter) -> TypeAssignment:
    return cache.get_or_compute("types", {"pool": "p"}, compute, lambda v, p: v.save(p), TypeAssignment.load)


def test_intact_entry_is_reused(tmp_path):
    cache, compute = FeatureCache(tmp_path), Counter(selection())
    get_selection(cache, compute)
    again = get_selection(cache, compute)
    assert compute.calls == 1 and again.indices.tolist() == [1, 4, 7]
    assert (cache.entry("selections", {"pool": "p"}) / MANIFEST).exists()


def test_truncated_selection_is_discarded_with_a_warning_and_recomputed(tmp_path, caplog):
    cache, compute = FeatureCache(tmp_path), Counter(selection())
    get_selection(cache, compute)
    path = selection_file(cache)
    path.write_bytes(path.read_bytes()[:20])
    with caplog.at_level(logging.WARNING, logger="core.cache"):
        again = get_selection(cache, compute)
    assert compute.calls == 2 and again.indices.tolist() == [1, 4, 7]
    assert str(path.parent) in caplog.text and path.name in caplog.text
    assert json.loads(path.read_text())["indices"] == [1, 4, 7]  # the entry was rewritten whole


def test_edited_but_valid_selection_is_not_reused(tmp_path, caplog):
    cache, compute = FeatureCache(tmp_path), Counter(selection())
    get_selection(cache, compute)
    path = selection_file(cache)
    payload = json.loads(path.read_text())
    payload["indices"] = [1, 4, 8]
    path.write_text(json.dumps(payload))
    with caplog.at_level(logging.WARNING, logger="core.cache"):
        again = get_selection(cache, compute)
    assert compute.calls == 2 and again.indices.tolist() == [1, 4, 7]
    assert "changed after it was written" in caplog.text


def test_truncated_type_matrix_is_recomputed_not_a_traceback(tmp_path, caplog):
    cache, compute = FeatureCache(tmp_path), Counter(types())
    get_types(cache, compute)
    path = cache.entry("types", {"pool": "p"}) / "matrix.npz"
    path.write_bytes(path.read_bytes()[:30])
    with caplog.at_level(logging.WARNING, logger="core.cache"):
        again = get_types(cache, compute)
    assert compute.calls == 2 and again.matrix.toarray().tolist() == types().matrix.toarray().tolist()
    assert "matrix.npz" in caplog.text


def test_entries_without_manifest_or_code_version_are_stale(tmp_path, caplog):
    """Issue 21.5: an entry written before manifests (or before code versions) is recomputed, not trusted."""
    cache, compute = FeatureCache(tmp_path), Counter(selection())
    get_selection(cache, compute)
    entry = cache.entry("selections", {"pool": "p"})
    (entry / MANIFEST).unlink()
    with caplog.at_level(logging.INFO, logger="core.cache"):
        get_selection(cache, compute)
    assert compute.calls == 2 and "predates manifests" in caplog.text
    manifest = json.loads((entry / MANIFEST).read_text())
    assert manifest["code"]
    del manifest["code"]
    (entry / MANIFEST).write_text(json.dumps(manifest))
    get_selection(cache, compute)
    assert compute.calls == 3
    get_selection(cache, compute)
    assert compute.calls == 3


def test_temp_folder_of_a_killed_writer_is_cleaned_up(tmp_path):
    """A writer killed (SIGKILL) inside atomic_dir leaves its temp folder; the next writer removes it."""
    script = (
        "import os, signal, sys; from pathlib import Path; from core.cache import atomic_dir\n"
        f"with atomic_dir(Path({str(tmp_path / 'types' / 'abc')!r})) as tmp:\n"
        "    (tmp / 'matrix.npz').write_bytes(b'half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True)
    assert proc.returncode == -9
    leftovers = [p for p in (tmp_path / "types").iterdir() if p.name.startswith(".")]
    assert len(leftovers) == 1
    old_foreign = tmp_path / "types" / ".def.tmp~otherhost~123~x1y2"  # another machine's, two hours old
    old_foreign.mkdir()
    os.utime(old_foreign, (time.time() - 7200, time.time() - 7200))
    fresh_foreign = tmp_path / "types" / ".ghi.tmp~otherhost~123~x1y2"  # may still be writing
    fresh_foreign.mkdir()
    get_types(FeatureCache(tmp_path), Counter(types()))
    names = sorted(p.name for p in (tmp_path / "types").iterdir())
    assert names == [fresh_foreign.name, FeatureCache(tmp_path).entry("types", {"pool": "p"}).name]


def test_temp_folder_of_a_live_writer_is_kept(tmp_path):
    cache = FeatureCache(tmp_path)
    with atomic_dir(tmp_path / "types" / "abc") as mine:
        get_types(cache, Counter(types()))
        assert mine.is_dir()


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775)])
def test_outputs_follow_the_umask(tmp_path, umask, file_mode, dir_mode):
    old = os.umask(umask)
    try:
        with atomic_write(tmp_path / "metrics.json") as fh:
            fh.write("{}")
        with atomic_dir(tmp_path / "model") as tmp:
            (tmp / "weights").write_text("w")
    finally:
        os.umask(old)
    assert (tmp_path / "metrics.json").stat().st_mode & 0o777 == file_mode
    assert (tmp_path / "model").stat().st_mode & 0o777 == dir_mode


def test_one_setting_moves_every_cache(tmp_path, monkeypatch):
    """`paths.cache_dir` reached only the feature cache: converted models and distilled embedders went to
    `$MACRO2MICRO_CACHE` or ~/.cache whatever the config said. Each writer must ask for the root when it writes."""
    import sys
    import types

    import core.assets
    import core.cache as cache_module
    import diversity.embeddings

    monkeypatch.setattr(cache_module, "_cache_root", None)
    monkeypatch.setenv("MACRO2MICRO_CACHE", str(tmp_path / "env"))
    assert cache_module.cache_root() == tmp_path / "env" == FeatureCache().root
    cache_module.use_cache_root(tmp_path / "configured")
    assert cache_module.cache_root() == tmp_path / "configured" == FeatureCache().root
    # A GGUF conversion and a model2vec distillation, their heavy work replaced: where do they write?
    converted = []
    monkeypatch.setattr(core.assets, "_convert_gguf", lambda gguf, target: converted.append(target))
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    core.assets.resolve_model_path(str(gguf))
    fake = types.ModuleType("model2vec.distill")
    fake.distill = lambda **kwargs: types.SimpleNamespace(save_pretrained=lambda path: None)
    monkeypatch.setitem(sys.modules, "model2vec.distill", fake)
    distilled = diversity.embeddings._distilled_model2vec("/some/local/embedder")
    for target in (converted[0], distilled):
        assert target.parent == tmp_path / "configured" / "models", target
