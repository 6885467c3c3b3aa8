from training.rundir import RunDir, config_hash

BASE = {
    "seed": 0,
    "diversity": {"n": 10, "level": 0.5},
    "data": {"source": "pool.jsonl", "run_dir": "/a", "cache_dir": "/c"},
    "model": {"name_or_path": "m", "optimizer": {"lr": 1e-4}},
    "eval": {"progress": True},
    "logger": {"_target_": "WandbLogger"},
    "paths": {"root": "outputs"},
    "resume": True,
}


def changed(path: str, value):
    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    node = cfg
    *parents, leaf = path.split(".")
    for key in parents:
        node[key] = dict(node[key])
        node = node[key]
    node[leaf] = value
    return cfg


def test_hash_ignores_where_and_how_a_job_reports_but_not_what_it_computes():
    h = config_hash(BASE)
    for path, value in [
        ("data.run_dir", "/b"),
        ("data.cache_dir", "/d"),
        ("eval.progress", False),
        ("logger", {}),
        ("paths.root", "elsewhere"),
        ("resume", False),
    ]:
        assert config_hash(changed(path, value)) == h, path
    for path, value in [("seed", 1), ("diversity.level", 1.0), ("model.optimizer.lr", 1e-3), ("data.source", "x")]:
        assert config_hash(changed(path, value)) != h, path


def test_checkpoint_of_another_config_is_never_resumed(tmp_path):
    run = RunDir(tmp_path / "job")
    assert run.resumable_checkpoint("aaa") is None  # fresh: claims the folder for config "aaa"
    (run.checkpoint_dir / "last.ckpt").write_bytes(b"weights of aaa")
    assert run.resumable_checkpoint("aaa") == str(run.checkpoint_dir / "last.ckpt")
    assert run.resumable_checkpoint("bbb") is None  # changed config: stale weights are removed
    assert not (run.checkpoint_dir / "last.ckpt").exists()
    assert run.run_id("aaa") == RunDir(tmp_path / "job").run_id("aaa") != run.run_id("bbb")
